// Channels: the paged list (GET /api/channels): mode (confirm / transactional), prefetch,
// unacked and unconfirmed counts, message rates.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { PagedTable, type Column } from '../components/paged-table.js';
import { Empty, State, Tag } from '../components/ui.js';
import { fmtNum, fmtRate, num } from '../format.js';
import { href } from '../router.js';

export interface ChannelRow {
  name: string;
  number?: number;
  vhost?: string;
  user?: string;
  state?: string;
  confirm?: boolean;
  transactional?: boolean;
  prefetch_count?: number;
  global_prefetch_count?: number;
  messages_unacknowledged?: number;
  messages_unconfirmed?: number;
  consumer_count?: number;
  connection_details?: { name?: string; peer_host?: string; peer_port?: number };
  message_stats?: Record<string, unknown>;
}

function mode(c: ChannelRow): VNode | string {
  if (c.confirm === true) return html`<${Tag} title="publisher confirms">C<//>`;
  if (c.transactional === true) return html`<${Tag} title="transactional">T<//>`;
  return '';
}

const COLUMNS: Column<ChannelRow>[] = [
  { key: 'name', label: 'Channel', sort: 'name', render: (c) => c.connection_details?.name === undefined ? c.name
    : html`<a href=${href('connections', c.connection_details.name)}>${c.name}</a>` },
  { key: 'vhost', label: 'Vhost', sort: 'vhost', render: (c) => c.vhost ?? '' },
  { key: 'user', label: 'User', sort: 'user', render: (c) => c.user ?? '' },
  { key: 'mode', label: 'Mode', render: mode },
  { key: 'state', label: 'State', sort: 'state', render: (c) => html`<${State} state=${c.state} />` },
  { key: 'consumers', label: 'Consumers', sort: 'consumer_count', numeric: true, render: (c) => fmtNum(c.consumer_count) },
  { key: 'prefetch', label: 'Prefetch', sort: 'prefetch_count', numeric: true, render: (c) => fmtNum(c.prefetch_count) },
  { key: 'unacked', label: 'Unacked', sort: 'messages_unacknowledged', numeric: true, render: (c) => fmtNum(c.messages_unacknowledged) },
  { key: 'unconfirmed', label: 'Unconfirmed', sort: 'messages_unconfirmed', numeric: true, render: (c) => fmtNum(c.messages_unconfirmed) },
  { key: 'publish', label: 'Publish', sort: 'message_stats.publish_details.rate', numeric: true, render: (c) => fmtRate(num(c, 'message_stats.publish_details.rate') ?? 0) },
  { key: 'confirm', label: 'Confirm', sort: 'message_stats.confirm_details.rate', numeric: true, render: (c) => fmtRate(num(c, 'message_stats.confirm_details.rate') ?? 0) },
  { key: 'deliver', label: 'Deliver / get', sort: 'message_stats.deliver_get_details.rate', numeric: true, render: (c) => fmtRate(num(c, 'message_stats.deliver_get_details.rate') ?? 0) },
  { key: 'ack', label: 'Ack', sort: 'message_stats.ack_details.rate', numeric: true, render: (c) => fmtRate(num(c, 'message_stats.ack_details.rate') ?? 0) },
];

/** The channels of one connection (not paged: a connection has at most channel_max of them). */
export function ChannelTable({ rows }: { rows: ChannelRow[] }): VNode {
  if (rows.length === 0) return html`<${Empty}>This connection has no open channels.<//>`;
  const cols = COLUMNS.filter((c) => c.key !== 'vhost' && c.key !== 'user');
  return html`<div class="table-wrap"><table class="list">
    <thead><tr>${cols.map((c) => html`<th class=${c.numeric ? 'num' : ''}>${c.label}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${cols.map((c) => html`<td class=${c.numeric ? 'num' : ''}>${c.render(r)}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

export function ChannelsPage(): VNode {
  return html`<div class="page">
    <h1>Channels</h1>
    <${PagedTable} id="channels" endpoint="/channels" columns=${COLUMNS} rowKey=${(c: ChannelRow) => c.name}
      empty="No open channels. Clients open channels on their connections to publish and consume." />
  </div>`;
}
