// Overview: live message rates and queued messages (one sample per refresh, last 10 minutes),
// totals, and node health (memory and disk against their alarm thresholds, alarms, uptime,
// version, listeners). Data: GET /api/overview and, for monitoring users, GET /api/nodes.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { api } from '../api.js';
import { LiveChart, type Samples, type SeriesSpec } from '../components/chart.js';
import { Empty, ErrorBox, Loading, State, Tag } from '../components/ui.js';
import { fmtBytes, fmtDuration, fmtNum, fmtPercent, fmtRate, num } from '../format.js';
import { usePoll } from '../hooks.js';
import type { Abilities } from '../session.js';

interface Overview {
  product_name?: string;
  product_version?: string;
  rabbitmq_version?: string;
  management_version?: string;
  cluster_name?: string;
  node?: string;
  message_stats?: Record<string, unknown>;
  queue_totals?: Record<string, unknown>;
  object_totals?: Record<string, number>;
  listeners?: { node: string; protocol: string; ip_address: string; port: number }[];
}

interface NodeInfo {
  name: string;
  running?: boolean;
  uptime?: number;
  mem_used?: number;
  mem_limit?: number;
  mem_alarm?: boolean;
  disk_free?: number;
  disk_free_limit?: number;
  disk_free_alarm?: boolean;
  fd_used?: number;
  fd_total?: number;
  sockets_used?: number;
  sockets_total?: number;
}

const RATE_SERIES: SeriesSpec[] = [
  { key: 'publish', label: 'Publish', color: '#2563eb' },
  { key: 'confirm', label: 'Confirm', color: '#0d9488' },
  { key: 'deliver_get', label: 'Deliver', color: '#d97706' },
  { key: 'ack', label: 'Ack', color: '#7c3aed' },
];
const QUEUED_SERIES: SeriesSpec[] = [
  { key: 'messages_ready', label: 'Ready', color: '#2563eb' },
  { key: 'messages_unacknowledged', label: 'Unacked', color: '#dc2626' },
];

const MAX_SAMPLES = 120; // 10 minutes at the default 5 s refresh

// Kept across visits to the page, so coming back shows the last minutes rather than nothing.
const rates: Samples = { times: [], values: {} };
const queued: Samples = { times: [], values: {} };

function addSample(into: Samples, time: number, specs: SeriesSpec[], read: (key: string) => number): void {
  into.times.push(time);
  for (const s of specs) (into.values[s.key] ??= []).push(read(s.key));
  if (into.times.length > MAX_SAMPLES) {
    into.times.shift();
    for (const s of specs) into.values[s.key]?.shift();
  }
}

async function loadOverview(): Promise<Overview> {
  const o = await api<Overview>('/overview');
  const t = Date.now() / 1000;
  addSample(rates, t, RATE_SERIES, (k) => num(o.message_stats, `${k}_details.rate`) ?? 0);
  addSample(queued, t, QUEUED_SERIES, (k) => num(o.queue_totals, k) ?? 0);
  return o;
}

function Meter({ label, used, limit, alarm, invert = false, format }: {
  label: string; used: number | undefined; limit: number | undefined; alarm: boolean | undefined; invert?: boolean; format: (n: number) => string;
}): VNode {
  // Memory alarms when used reaches the limit; disk alarms when free space falls to the limit.
  const ratio = used !== undefined && limit !== undefined && limit > 0 ? (invert ? limit / Math.max(used, 1) : used / limit) : 0;
  const level = alarm === true ? 'bad' : ratio > 0.8 ? 'warn' : 'ok';
  return html`<div class=${`meter ${level}`} data-meter=${label.toLowerCase()}>
    <div class="meter-head"><span>${label}</span>${alarm === true ? html`<${Tag} kind="bad">alarm<//>` : null}</div>
    <div class="meter-bar"><div style=${`width:${Math.min(100, ratio * 100).toFixed(1)}%`}></div></div>
    <div class="meter-text">${used === undefined ? 'not reported' : limit === undefined
      ? `${format(used)} ${invert ? 'free' : 'used'} (no alarm threshold reported)`
      : invert
        ? `${format(used)} free, alarm below ${format(limit)}`
        : `${format(used)} of ${format(limit)} (${fmtPercent(used, limit)}) — alarm at the limit`}</div>
  </div>`;
}

function NodeHealth({ node }: { node: NodeInfo }): VNode {
  const alarms = [node.mem_alarm === true ? 'memory' : '', node.disk_free_alarm === true ? 'disk' : ''].filter((a) => a !== '');
  return html`<div class="node" data-node=${node.name}>
    <div class="node-head">
      <strong>${node.name}</strong>
      <${State} state=${node.running === false ? 'down' : 'running'} />
      ${alarms.length === 0 ? html`<${Tag} kind="ok">no alarms<//>` : alarms.map((a) => html`<${Tag} kind="bad">${a} alarm<//>`)}
      <span class="muted">up ${fmtDuration(node.uptime)}</span>
    </div>
    <div class="meters">
      <${Meter} label="Memory" used=${node.mem_used} limit=${node.mem_limit} alarm=${node.mem_alarm} format=${fmtBytes} />
      <${Meter} label="Disk" used=${node.disk_free} limit=${node.disk_free_limit} alarm=${node.disk_free_alarm} invert=${true} format=${fmtBytes} />
      ${node.fd_total === undefined ? null : html`<${Meter} label="File descriptors" used=${node.fd_used} limit=${node.fd_total} alarm=${false} format=${fmtNum} />`}
    </div>
  </div>`;
}

export function OverviewPage({ can }: { can: Abilities }): VNode {
  const overview = usePoll(loadOverview, []);
  const nodes = usePoll(() => (can.monitor ? api<NodeInfo[]>('/nodes') : Promise.resolve([] as NodeInfo[])), [can.monitor]);
  const o = overview.data;
  if (o === undefined) return overview.error === undefined ? html`<${Loading} />` : html`<${ErrorBox} error=${overview.error} />`;
  const totals = o.object_totals ?? {};
  const ms = o.message_stats ?? {};
  const qt = o.queue_totals ?? {};
  const version = `${o.product_name ?? 'RabbitMQ'} ${o.product_version ?? o.rabbitmq_version ?? ''}`;
  return html`<div class="page overview">
    <h1>Overview <span class="sub">${version} · ${o.cluster_name ?? ''}</span></h1>
    <${ErrorBox} error=${overview.error} />
    <div class="totals">
      ${[
        ['Connections', totals['connections'], 'connections'],
        ['Channels', totals['channels'], 'channels'],
        ['Exchanges', totals['exchanges'], 'exchanges'],
        ['Queues', totals['queues'], 'queues'],
        ['Consumers', totals['consumers'], 'queues'],
      ].map(([label, value, page]) => html`<a class="total" href=${`#/${String(page)}`} data-total=${String(label).toLowerCase()}>
        <span class="total-value">${fmtNum(value as number | undefined)}</span><span class="total-label">${label}</span></a>`)}
      ${[
        ['Ready', num(qt, 'messages_ready')],
        ['Unacked', num(qt, 'messages_unacknowledged')],
        ['Total messages', num(qt, 'messages')],
      ].map(([label, value]) => html`<div class="total" data-total=${String(label).toLowerCase()}>
        <span class="total-value">${fmtNum(value as number | undefined)}</span><span class="total-label">${label}</span></div>`)}
    </div>
    <div class="charts">
      <section class="card">
        <h2>Message rates</h2>
        <${LiveChart} id="chart-rates" series=${RATE_SERIES} samples=${rates} format=${fmtRate} />
        <table class="mini">
          <tr>${RATE_SERIES.map((s) => html`<th><i class="swatch" style=${`background:${s.color}`}></i>${s.label}</th>`)}</tr>
          <tr>${RATE_SERIES.map((s) => html`<td data-rate=${s.key}>${fmtRate(num(ms, `${s.key}_details.rate`) ?? 0)}</td>`)}</tr>
          <tr class="muted">${RATE_SERIES.map((s) => html`<td>${fmtNum(num(ms, s.key) ?? 0)} total</td>`)}</tr>
        </table>
      </section>
      <section class="card">
        <h2>Queued messages</h2>
        <${LiveChart} id="chart-queued" series=${QUEUED_SERIES} samples=${queued} format=${fmtNum} />
        <table class="mini">
          <tr>${QUEUED_SERIES.map((s) => html`<th><i class="swatch" style=${`background:${s.color}`}></i>${s.label}</th>`)}</tr>
          <tr>${QUEUED_SERIES.map((s) => html`<td>${fmtNum(num(qt, s.key) ?? 0)}</td>`)}</tr>
        </table>
      </section>
    </div>
    ${can.monitor ? html`<section class="card">
      <h2>Node</h2>
      <${ErrorBox} error=${nodes.error} />
      ${(nodes.data ?? []).map((n) => html`<${NodeHealth} node=${n} />`)}
    </section>` : null}
    <section class="card">
      <h2>Listeners</h2>
      ${(o.listeners ?? []).length === 0 ? html`<${Empty}>No listeners reported.<//>` : html`<div class="table-wrap"><table class="list">
        <thead><tr><th>Protocol</th><th>Bound to</th><th class="num">Port</th></tr></thead>
        <tbody>${(o.listeners ?? []).map((l) => html`<tr><td>${l.protocol}</td><td>${l.ip_address}</td><td class="num">${l.port}</td></tr>`)}</tbody>
      </table></div>`}
    </section>
  </div>`;
}
