// A small client-side table for short lists (users, vhosts, permissions, policies, limits): the
// API returns them whole; the filter box narrows what is shown.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { Empty } from './ui.js';

export interface SimpleColumn<T> {
  label: string;
  render: (row: T) => VNode | string;
  numeric?: boolean;
}

export function SimpleTable<T>({ id, rows, columns, rowKey, empty, filterText }: {
  id: string;
  rows: T[] | undefined;
  columns: SimpleColumn<T>[];
  rowKey: (row: T) => string;
  empty: VNode | string;
  filterText: (row: T) => string;
}): VNode {
  const [filter, setFilter] = useState('');
  if (rows === undefined) return html`<div class="loading">Loading…</div>`;
  if (rows.length === 0) return html`<${Empty}>${empty}<//>`;
  const needle = filter.toLowerCase();
  const shown = needle === '' ? rows : rows.filter((r) => filterText(r).toLowerCase().includes(needle));
  return html`<div data-table=${id}>
    ${rows.length > 10 ? html`<div class="toolbar"><label class="filter">Filter <input type="search" value=${filter}
      onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} /></label>
      <span class="count">${shown.length} of ${rows.length}</span></div>` : null}
    <div class="table-wrap"><table class="list">
      <thead><tr>${columns.map((c) => html`<th class=${c.numeric ? 'num' : ''}>${c.label}</th>`)}</tr></thead>
      <tbody>${shown.map((r) => html`<tr key=${rowKey(r)}>${columns.map((c) => html`<td class=${c.numeric ? 'num' : ''}>${c.render(r)}</td>`)}</tr>`)}</tbody>
    </table></div>
  </div>`;
}
