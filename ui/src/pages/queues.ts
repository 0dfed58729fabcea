// Queues: the paged, sortable, filterable list (GET /api/queues with page/name/use_regex/sort),
// column choice, and a form to declare a queue (PUT /api/queues/{vhost}/{name}).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ActionForm, Field, VhostSelect, checked, text } from '../components/form.js';
import { PagedTable, type Column } from '../components/paged-table.js';
import { Section, State, Tag } from '../components/ui.js';
import { fmtDuration, fmtNum, fmtRate, num } from '../format.js';
import { parseArguments, queueFeatures, queuePath, useVhostNames, type QueueRow } from '../model.js';
import { href } from '../router.js';

/**
 * Age of the message at the head of the queue: Warren reports it (warren_head_message_age_ms);
 * RabbitMQ only has the head message's timestamp property (seconds), when the publisher set one.
 */
export function oldestAge(q: QueueRow): string {
  if (typeof q.warren_head_message_age_ms === 'number') return fmtDuration(q.warren_head_message_age_ms);
  const ts = q.head_message_timestamp;
  if (typeof ts !== 'number') return '–';
  return fmtDuration(Date.now() - ts * 1000);
}

const COLUMNS: Column<QueueRow>[] = [
  { key: 'vhost', label: 'Vhost', sort: 'vhost', render: (q) => q.vhost },
  { key: 'name', label: 'Name', sort: 'name', render: (q) => html`<a href=${href('queues', q.vhost, q.name)} class="queue-link">${q.name}</a>` },
  { key: 'type', label: 'Type', render: (q) => q.type ?? 'classic', shown: false },
  { key: 'features', label: 'Features', render: (q) => html`<span class="features">${queueFeatures(q).map(([s, t]) => html`<${Tag} title=${t}>${s}<//>`)}</span>` },
  { key: 'policy', label: 'Policy', sort: 'policy', render: (q) => q.policy ?? '' },
  { key: 'state', label: 'State', sort: 'state', render: (q) => html`<${State} state=${q.state} />` },
  { key: 'ready', label: 'Ready', sort: 'messages_ready', numeric: true, render: (q) => fmtNum(q.messages_ready) },
  { key: 'unacked', label: 'Unacked', sort: 'messages_unacknowledged', numeric: true, render: (q) => fmtNum(q.messages_unacknowledged) },
  { key: 'messages', label: 'Total', sort: 'messages', numeric: true, render: (q) => fmtNum(q.messages) },
  { key: 'consumers', label: 'Consumers', sort: 'consumers', numeric: true, render: (q) => fmtNum(q.consumers) },
  { key: 'oldest', label: 'Oldest message', sort: 'warren_head_message_age_ms', render: oldestAge, numeric: true },
  { key: 'incoming', label: 'Incoming', sort: 'message_stats.publish_details.rate', numeric: true, render: (q) => fmtRate(num(q, 'message_stats.publish_details.rate') ?? 0) },
  { key: 'deliver', label: 'Deliver / get', sort: 'message_stats.deliver_get_details.rate', numeric: true, render: (q) => fmtRate(num(q, 'message_stats.deliver_get_details.rate') ?? 0) },
  { key: 'ack', label: 'Ack', sort: 'message_stats.ack_details.rate', numeric: true, render: (q) => fmtRate(num(q, 'message_stats.ack_details.rate') ?? 0) },
  { key: 'args', label: 'Arguments', render: (q) => html`<code class="args-inline">${Object.keys(q.arguments ?? {}).length === 0 ? '' : JSON.stringify(q.arguments)}</code>`, shown: false },
];

export function AddQueueForm({ onDone }: { onDone: () => void }): VNode {
  const vhosts = useVhostNames();
  return html`<${ActionForm} submit="Add queue" onDone=${onDone} className="grid-form" action=${async (d: FormData) => {
    const vhost = text(d, 'vhost');
    const name = text(d, 'name');
    await api(queuePath(vhost, name), {
      method: 'PUT',
      body: { durable: checked(d, 'durable'), auto_delete: checked(d, 'auto_delete'), arguments: parseArguments(text(d, 'arguments')) },
    });
    return `Queue “${name}” declared in vhost “${vhost}”.`;
  }}>
    <${Field} label="Vhost"><${VhostSelect} vhosts=${vhosts} /><//>
    <${Field} label="Name"><input name="name" required /><//>
    <${Field} label="Options"><span><label class="check"><input type="checkbox" name="durable" checked /> Durable</label>
      <label class="check"><input type="checkbox" name="auto_delete" /> Auto-delete</label></span><//>
    <${Field} label="Arguments" hint="one per line: x-message-ttl = 60000, x-dead-letter-exchange = dlx, x-max-length = 1000"><textarea name="arguments" rows="3"></textarea><//>
  <//>`;
}

export function QueuesPage(): VNode {
  const [version, setVersion] = useState(0);
  return html`<div class="page">
    <h1>Queues</h1>
    <${PagedTable} key=${version} id="queues" endpoint="/queues" columns=${COLUMNS}
      rowKey=${(q: QueueRow) => `${q.vhost}\u0000${q.name}`}
      empty="No queues yet. Clients declare them, or add one below." />
    <${Section} title="Add a queue" open=${false}><${AddQueueForm} onDone=${() => setVersion(version + 1)} /><//>
  </div>`;
}
