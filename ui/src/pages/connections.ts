// Connections: the paged list (GET /api/connections), one connection's details, client
// properties and channels, and closing it with a reason (DELETE /api/connections/{name} with an
// X-Reason header, which the client receives in connection.close).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { api, seg } from '../api.js';
import { ActionForm, Field, text } from '../components/form.js';
import { PagedTable, type Column } from '../components/paged-table.js';
import { ArgsTable, ErrorBox, KeyValues, Loading, Section, State, Tag } from '../components/ui.js';
import { fmtBytes, fmtNum, fmtTime, num } from '../format.js';
import { usePoll } from '../hooks.js';
import { href, navigate } from '../router.js';
import { ChannelTable, type ChannelRow } from './channels.js';

export interface ConnectionRow {
  name: string;
  user?: string;
  vhost?: string;
  host?: string;
  port?: number;
  peer_host?: string;
  peer_port?: number;
  state?: string;
  channels?: number;
  protocol?: string;
  ssl?: boolean;
  auth_mechanism?: string;
  timeout?: number;
  frame_max?: number;
  channel_max?: number;
  connected_at?: number;
  client_properties?: Record<string, unknown>;
  recv_oct?: number;
  send_oct?: number;
  recv_oct_details?: { rate: number };
  send_oct_details?: { rate: number };
}

function clientName(c: ConnectionRow): string {
  const p = c.client_properties ?? {};
  const product = typeof p['product'] === 'string' ? p['product'] : '';
  const version = typeof p['version'] === 'string' ? p['version'] : '';
  return `${product} ${version}`.trim();
}

const COLUMNS: Column<ConnectionRow>[] = [
  { key: 'name', label: 'Name', sort: 'name', render: (c) => html`<a href=${href('connections', c.name)}>${c.name}</a>
    ${typeof c.client_properties?.['connection_name'] === 'string' ? html`<div class="muted">${c.client_properties['connection_name']}</div>` : null}` },
  { key: 'vhost', label: 'Vhost', sort: 'vhost', render: (c) => c.vhost ?? '' },
  { key: 'user', label: 'User', sort: 'user', render: (c) => c.user ?? '' },
  { key: 'client', label: 'Client', render: clientName },
  { key: 'state', label: 'State', sort: 'state', render: (c) => html`<${State} state=${c.state} />` },
  { key: 'tls', label: 'TLS', render: (c) => (c.ssl ? html`<${Tag} kind="ok">TLS<//>` : ''), shown: false },
  { key: 'protocol', label: 'Protocol', render: (c) => c.protocol ?? '', shown: false },
  { key: 'channels', label: 'Channels', sort: 'channels', numeric: true, render: (c) => fmtNum(c.channels) },
  { key: 'recv', label: 'From client', sort: 'recv_oct_details.rate', numeric: true, render: (c) => `${fmtBytes(num(c, 'recv_oct_details.rate') ?? 0)}/s` },
  { key: 'send', label: 'To client', sort: 'send_oct_details.rate', numeric: true, render: (c) => `${fmtBytes(num(c, 'send_oct_details.rate') ?? 0)}/s` },
  { key: 'connected', label: 'Connected at', sort: 'connected_at', render: (c) => fmtTime(c.connected_at), shown: false },
];

export function ConnectionsPage(): VNode {
  return html`<div class="page">
    <h1>Connections</h1>
    <${PagedTable} id="connections" endpoint="/connections" columns=${COLUMNS} rowKey=${(c: ConnectionRow) => c.name}
      empty="No clients are connected. Point an AMQP client at this broker's AMQP port and it appears here." />
  </div>`;
}

export function ConnectionPage({ name }: { name: string }): VNode {
  const conn = usePoll(() => api<ConnectionRow>(`/connections/${seg(name)}`), [name]);
  const channels = usePoll(() => api<ChannelRow[]>(`/connections/${seg(name)}/channels`), [name]);
  const c = conn.data;
  if (c === undefined) return conn.error === undefined ? html`<${Loading} />` : html`<div class="page"><h1>Connection ${name}</h1><${ErrorBox} error=${conn.error} /></div>`;
  return html`<div class="page connection" data-connection=${name}>
    <h1>Connection <span class="name">${name}</span> <${State} state=${c.state} /></h1>
    <${ErrorBox} error=${conn.error} />
    <div class="two-col">
      <section class="card"><h2>Details</h2><${KeyValues} rows=${[
        ['User', c.user ?? ''],
        ['Vhost', c.vhost ?? ''],
        ['Client address', `${c.peer_host ?? ''}:${c.peer_port ?? ''}`],
        ['Protocol', `${c.protocol ?? ''}${c.ssl ? ' over TLS' : ''}`],
        ['Authentication', c.auth_mechanism ?? ''],
        ['Heartbeat', c.timeout === undefined ? '–' : `${c.timeout} s`],
        ['Frame max', fmtBytes(c.frame_max)],
        ['Channel max', fmtNum(c.channel_max)],
        ['Connected at', fmtTime(c.connected_at)],
        ['From client', `${fmtBytes(num(c, 'recv_oct_details.rate') ?? 0)}/s (${fmtBytes(c.recv_oct)} in total)`],
        ['To client', `${fmtBytes(num(c, 'send_oct_details.rate') ?? 0)}/s (${fmtBytes(c.send_oct)} in total)`],
      ]} /></section>
      <section class="card"><h2>Client properties</h2><${ArgsTable} args=${c.client_properties} /></section>
    </div>
    <${Section} title=${`Channels (${fmtNum(c.channels ?? 0)})`}>
      <${ErrorBox} error=${channels.error} />
      <${ChannelTable} rows=${channels.data ?? []} />
    <//>
    <${Section} title="Close this connection" id="close">
      <${ActionForm} submit="Force close" className="inline-form" onDone=${() => navigate('connections')} action=${async (d: FormData) => {
        const reason = text(d, 'reason');
        await api(`/connections/${seg(name)}`, { method: 'DELETE', headers: reason === '' ? {} : { 'X-Reason': reason } });
        return 'Connection closed.';
      }}>
        <${Field} label="Reason" hint="the client receives it with reply code 320 CONNECTION_FORCED"><input name="reason" value="Closed via management UI" /><//>
      <//>
    <//>
  </div>`;
}

