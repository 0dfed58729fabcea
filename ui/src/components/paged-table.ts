// A listing backed by the API's server-side pagination (page, page_size, name, use_regex, sort,
// sort_reverse), as RabbitMQ's UI does: the browser only ever holds one page, so 10,000 queues
// cost the same as ten. Sort by clicking a header, filter by name (plain or regex), choose columns.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, pageParams, type Page } from '../api.js';
import { fmtNum } from '../format.js';
import { usePoll, useStored } from '../hooks.js';
import { Empty, ErrorBox } from './ui.js';

export interface Column<T> {
  key: string;
  label: string;
  /** The API field to sort on (RabbitMQ accepts dotted paths); no sort when absent. */
  sort?: string;
  render: (row: T) => VNode | string;
  numeric?: boolean;
  /** Shown until the user chooses otherwise. */
  shown?: boolean;
}

const PAGE_SIZES = [20, 50, 100, 500];

export function PagedTable<T>({ id, endpoint, columns, rowKey, empty, defaultSort = 'name', extraParams = '' }: {
  id: string;
  endpoint: string;
  columns: Column<T>[];
  rowKey: (row: T) => string;
  empty: VNode | string;
  defaultSort?: string;
  extraParams?: string;
}): VNode {
  const [pageSize, setPageSize] = useStored(`warren.${id}.pageSize`, 100);
  const [shown, setShown] = useStored<string[]>(`warren.${id}.columns`, columns.filter((c) => c.shown !== false).map((c) => c.key));
  const [page, setPage] = useState(1);
  const [nameInput, setNameInput] = useState('');
  const [name, setName] = useState('');
  const [useRegex, setUseRegex] = useState(false);
  const [sort, setSort] = useState(defaultSort);
  const [sortReverse, setSortReverse] = useState(false);

  // Filter as you type, without a request per keystroke.
  useEffect(() => {
    const t = setTimeout(() => {
      setName(nameInput);
      setPage(1);
    }, 250);
    return () => clearTimeout(t);
  }, [nameInput]);

  const query = pageParams({ page, pageSize, name, useRegex, sort, sortReverse });
  const { data, error } = usePoll(
    () => api<Page<T>>(`${endpoint}?${query}${extraParams}`),
    [endpoint, query, extraParams],
  );

  const visible = columns.filter((c) => shown.includes(c.key));
  const onSort = (c: Column<T>): void => {
    if (c.sort === undefined) return;
    if (sort === c.sort) setSortReverse(!sortReverse);
    else {
      setSort(c.sort);
      setSortReverse(c.numeric === true); // biggest first for numbers, A→Z for names
    }
    setPage(1);
  };
  const toggleColumn = (key: string): void =>
    setShown(shown.includes(key) ? shown.filter((k) => k !== key) : columns.map((c) => c.key).filter((k) => k === key || shown.includes(k)));

  const pageCount = data?.page_count ?? 1;
  const filtered = name !== '';

  return html`<div class="paged" data-table=${id}>
    <div class="toolbar">
      <label class="filter">Filter
        <input type="search" name="filter" placeholder="name" value=${nameInput}
          onInput=${(e: Event) => setNameInput((e.target as HTMLInputElement).value)} />
      </label>
      <label class="check"><input type="checkbox" name="regex" checked=${useRegex}
        onChange=${(e: Event) => { setUseRegex((e.target as HTMLInputElement).checked); setPage(1); }} /> Regex</label>
      <span class="count" data-count=${data?.filtered_count}>${data === undefined ? '' : filtered
        ? `${fmtNum(data.filtered_count)} of ${fmtNum(data.total_count)} match`
        : `${fmtNum(data.total_count)} in total`}</span>
      <details class="columns">
        <summary>Columns</summary>
        <div class="column-list">${columns.map((c) => html`<label class="check">
          <input type="checkbox" checked=${shown.includes(c.key)} onChange=${() => toggleColumn(c.key)} /> ${c.label}</label>`)}</div>
      </details>
    </div>
    <${ErrorBox} error=${error} />
    ${data !== undefined && data.items.length === 0
      ? html`<${Empty}>${filtered ? `Nothing matches “${name}”${useRegex ? ' (as a regular expression)' : ''}. Clear the filter to see everything.` : empty}<//>`
      : html`<div class="table-wrap"><table class="list">
        <thead><tr>${visible.map((c) => html`<th class=${[c.numeric ? 'num' : '', c.sort !== undefined ? 'sortable' : '', sort === c.sort ? (sortReverse ? 'desc' : 'asc') : ''].join(' ')}
          onClick=${() => onSort(c)} aria-sort=${sort === c.sort ? (sortReverse ? 'descending' : 'ascending') : undefined}>${c.label}</th>`)}</tr></thead>
        <tbody>${(data?.items ?? []).map((row) => html`<tr key=${rowKey(row)}>${visible.map((c) => html`<td class=${c.numeric ? 'num' : ''} data-col=${c.key}>${c.render(row)}</td>`)}</tr>`)}</tbody>
      </table></div>`}
    <div class="pager">
      <button type="button" disabled=${page <= 1} onClick=${() => setPage(page - 1)}>‹ Previous</button>
      <span>Page <input type="number" min="1" max=${pageCount} value=${page} class="page-input"
        onChange=${(e: Event) => setPage(Math.min(Math.max(1, Number((e.target as HTMLInputElement).value) || 1), pageCount))} /> of ${fmtNum(pageCount)}</span>
      <button type="button" disabled=${page >= pageCount} onClick=${() => setPage(page + 1)}>Next ›</button>
      <label>Per page <select value=${pageSize} onChange=${(e: Event) => { setPageSize(Number((e.target as HTMLSelectElement).value)); setPage(1); }}>
        ${PAGE_SIZES.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
    </div>
  </div>`;
}
