// One queue: depth and rates, consumers, bindings, get/peek messages, purge, delete, dead-letter
// replay (with the x-death summary of what would be replayed) and moving messages elsewhere.
// Every button is one documented API call (see the call next to it).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { ActionForm, Field, checked, text } from '../components/form.js';
import { DeathSummary, MessageView, type Death, type GotMessage } from '../components/message.js';
import { ArgsTable, ConfirmButton, Empty, ErrorBox, KeyValues, Loading, OutcomeLine, Section, State, Tag, useAction } from '../components/ui.js';
import { fmtBytes, fmtNum, fmtRate, num } from '../format.js';
import { usePoll } from '../hooks.js';
import { exchangePathName, parseArguments, queueFeatures, queuePath, type BindingRow, type QueueRow } from '../model.js';
import { href, navigate } from '../router.js';
import type { Abilities } from '../session.js';
import { describeReplay, inspectDeadLetters, replayDeadLetters, type DeadLetter } from '../dead-letters.js';
import { oldestAge } from './queues.js';

interface ConsumerDetail {
  consumer_tag: string;
  channel_details?: { name?: string; connection_name?: string; peer_host?: string; peer_port?: number; user?: string };
  ack_required?: boolean;
  prefetch_count?: number;
  exclusive?: boolean;
  active?: boolean;
  activity_status?: string;
  arguments?: Record<string, unknown>;
}

type QueueDetail = QueueRow & { consumer_details?: ConsumerDetail[] };

const ACK_MODES: [string, string][] = [
  ['ack_requeue_true', 'Peek (leave them in the queue)'],
  ['ack_requeue_false', 'Get and remove (ack)'],
  ['reject_requeue_true', 'Reject, requeue'],
  ['reject_requeue_false', 'Reject, no requeue (dead-letters them)'],
];

function getMessages(vhost: string, name: string, count: number, ackmode: string): Promise<GotMessage[]> {
  return api<GotMessage[]>(`${queuePath(vhost, name)}/get`, {
    method: 'POST',
    body: { count, ackmode, encoding: 'auto', truncate: 50000 },
  });
}

function GetMessages({ vhost, name, onChange }: { vhost: string; name: string; onChange: () => void }): VNode {
  const [messages, setMessages] = useState<GotMessage[] | undefined>(undefined);
  return html`<div>
    <${ActionForm} submit="Get messages" className="inline-form" onDone=${onChange} action=${async (d: FormData) => {
      const got = await getMessages(vhost, name, Math.max(1, Number(text(d, 'count')) || 1), text(d, 'ackmode'));
      setMessages(got);
      return got.length === 0 ? 'The queue is empty.' : `${got.length} message${got.length === 1 ? '' : 's'}.`;
    }}>
      <${Field} label="Mode"><select name="ackmode">${ACK_MODES.map(([v, l]) => html`<option value=${v}>${l}</option>`)}</select><//>
      <${Field} label="Messages"><input name="count" type="number" min="1" value="1" class="short" /><//>
    <//>
    ${(messages ?? []).map((m, i) => html`<${MessageView} message=${m} index=${i} key=${i} />`)}
  </div>`;
}

/** Groups the first messages of a dead-letter queue by where they would be replayed to. */
function summarise(letters: DeadLetter[]): Death[] {
  const byKey = new Map<string, Death>();
  for (const m of letters) {
    const first = m.x_death[m.x_death.length - 1];
    if (first === undefined) continue;
    const key = `${first.queue}\u0000${first.reason}\u0000${first.exchange}\u0000${(first['routing-keys'] ?? []).join(',')}`;
    const seen = byKey.get(key);
    if (seen === undefined) byKey.set(key, { ...first, count: 1 });
    else seen.count = (seen.count ?? 0) + 1;
  }
  return [...byKey.values()];
}

function DeadLetterReplay({ vhost, name, depth, onChange }: { vhost: string; name: string; depth: number; onChange: () => void }): VNode {
  const peek = usePoll(() => inspectDeadLetters(vhost, name, 100), [vhost, name, depth], false);
  const summary = summarise(peek.data ?? []);
  const sampled = (peek.data ?? []).length;
  return html`<div class="replay">
    <p class="muted">Republishes dead-lettered messages to where they first died from (the exchange and routing keys of their
      first x-death entry). Each message leaves this queue in the same commit that stores it in its targets.</p>
    <${ErrorBox} error=${peek.error} />
    ${peek.data === undefined ? null : summary.length === 0
      ? html`<${Empty}>${sampled === 0 ? 'This queue is empty: nothing to replay.' : 'The first messages of this queue carry no x-death header: they were not dead-lettered, so there is nowhere to replay them to. Use “Move messages” instead.'}<//>`
      : html`<div><strong>x-death summary</strong> <span class="muted">(first ${fmtNum(sampled)} message${sampled === 1 ? '' : 's'}, by first death; count = messages)</span>
        <${DeathSummary} deaths=${summary} /></div>`}
    <${ActionForm} submit="Replay" className="inline-form" onDone=${() => { peek.reload(); onChange(); }} action=${async (d: FormData) => {
      const count = text(d, 'count') === '' ? undefined : Number(text(d, 'count'));
      const reason = text(d, 'reason');
      const result = await replayDeadLetters(vhost, name, { ...(count === undefined ? {} : { count }), ...(reason === '' ? {} : { reason }) });
      return describeReplay(result, 'Replayed');
    }}>
      <${Field} label="How many" hint="empty = all"><input name="count" type="number" min="1" class="short" /><//>
      <${Field} label="Only reason"><select name="reason"><option value="">any</option>
        ${['rejected', 'expired', 'maxlen', 'delivery_limit'].map((r) => html`<option value=${r}>${r}</option>`)}</select><//>
    <//>
  </div>`;
}

function MoveMessages({ vhost, name, onChange }: { vhost: string; name: string; onChange: () => void }): VNode {
  return html`<${ActionForm} submit="Move messages" className="inline-form" onDone=${onChange} action=${async (d: FormData) => {
    const target = text(d, 'target');
    const count = text(d, 'count') === '' ? undefined : Number(text(d, 'count'));
    const result = await replayDeadLetters(vhost, name, { toExchange: '', routingKey: target, ...(count === undefined ? {} : { count }) });
    return describeReplay(result, `Moved to “${target}”:`);
  }}>
    <${Field} label="To queue" hint="in the same vhost; each message leaves this queue in the commit that stores it there"><input name="target" required /><//>
    <${Field} label="How many" hint="empty = all"><input name="count" type="number" min="1" class="short" /><//>
  <//>`;
}

function Bindings({ vhost, name }: { vhost: string; name: string }): VNode {
  const bindings = usePoll(() => api<BindingRow[]>(`${queuePath(vhost, name)}/bindings`), [vhost, name]);
  const [outcome, run] = useAction();
  return html`<div>
    <${ErrorBox} error=${bindings.error} />
    <div class="table-wrap"><table class="list bindings">
      <thead><tr><th>From exchange</th><th>Routing key</th><th>Arguments</th><th></th></tr></thead>
      <tbody>${(bindings.data ?? []).map((b) => html`<tr>
        <td>${b.source === '' ? html`<span class="muted">(default exchange)</span>` : html`<a href=${href('exchanges', vhost, b.source)}>${b.source}</a>`}</td>
        <td><code>${b.routing_key}</code></td><td><${ArgsTable} args=${b.arguments} empty="" /></td>
        <td>${b.source === '' ? null : html`<${ConfirmButton} label="Unbind" confirm="Yes, unbind" onConfirm=${() => run(async () => {
          await api(`/bindings/${seg(vhost)}/e/${seg(b.source)}/q/${seg(name)}/${seg(b.properties_key)}`, { method: 'DELETE' });
          bindings.reload();
          return `Unbound from “${b.source}”.`;
        })} />`}</td></tr>`)}</tbody>
    </table></div>
    <${OutcomeLine} outcome=${outcome} />
    <h4>Add a binding to this queue</h4>
    <${ActionForm} submit="Bind" className="inline-form" onDone=${bindings.reload} action=${async (d: FormData) => {
      const source = text(d, 'source');
      await api(`/bindings/${seg(vhost)}/e/${seg(exchangePathName(source))}/q/${seg(name)}`, {
        method: 'POST', body: { routing_key: text(d, 'routing_key'), arguments: parseArguments(text(d, 'arguments')) },
      });
      return `Bound to “${source}”.`;
    }}>
      <${Field} label="From exchange"><input name="source" required /><//>
      <${Field} label="Routing key"><input name="routing_key" /><//>
      <${Field} label="Arguments" hint="name = value per line"><textarea name="arguments" rows="1"></textarea><//>
    <//>
  </div>`;
}

function Consumers({ consumers }: { consumers: ConsumerDetail[] }): VNode {
  if (consumers.length === 0) return html`<${Empty}>No consumers. Messages wait here until a client subscribes (basic.consume).<//>`;
  return html`<div class="table-wrap"><table class="list">
    <thead><tr><th>Channel</th><th>Consumer tag</th><th>Ack required</th><th>Exclusive</th><th class="num">Prefetch</th><th>Active</th><th>Arguments</th></tr></thead>
    <tbody>${consumers.map((c) => html`<tr>
      <td>${c.channel_details?.connection_name === undefined ? c.channel_details?.name ?? '' : html`<a href=${href('connections', c.channel_details.connection_name)}>${c.channel_details.name ?? ''}</a>`}</td>
      <td><code>${c.consumer_tag}</code></td><td>${c.ack_required ? 'yes' : 'no'}</td><td>${c.exclusive ? 'yes' : 'no'}</td>
      <td class="num">${fmtNum(c.prefetch_count)}</td><td><${State} state=${c.active === false ? 'waiting' : c.activity_status ?? 'up'} /></td>
      <td><${ArgsTable} args=${c.arguments} empty="" /></td></tr>`)}</tbody>
  </table></div>`;
}

export function QueuePage({ vhost, name, can }: { vhost: string; name: string; can: Abilities }): VNode {
  const q = usePoll(() => api<QueueDetail>(queuePath(vhost, name)), [vhost, name]);
  const [outcome, run] = useAction();
  const data = q.data;
  if (data === undefined) return q.error === undefined ? html`<${Loading} />` : html`<div class="page"><h1>Queue ${name}</h1><${ErrorBox} error=${q.error} /></div>`;
  const stats = data.message_stats ?? {};
  const dlx = data.arguments?.['x-dead-letter-exchange'] ?? data.effective_policy_definition?.['dead-letter-exchange'];
  return html`<div class="page queue" data-queue=${name}>
    <h1>Queue <span class="name">${name}</span> <span class="sub">in vhost ${vhost}</span> <${State} state=${data.state} /></h1>
    <${ErrorBox} error=${q.error} />
    <div class="totals">
      ${[
        ['Ready', data.messages_ready, 'ready'],
        ['Unacked', data.messages_unacknowledged, 'unacked'],
        ['Total', data.messages, 'messages'],
        ['Consumers', data.consumers, 'consumers'],
      ].map(([label, value, key]) => html`<div class="total" data-total=${key}><span class="total-value">${fmtNum(value as number | undefined)}</span><span class="total-label">${label}</span></div>`)}
      <div class="total" data-total="oldest"><span class="total-value">${oldestAge(data)}</span><span class="total-label">Oldest message</span></div>
    </div>
    <div class="two-col">
      <section class="card"><h2>Details</h2><${KeyValues} rows=${[
        ['Type', data.type ?? 'classic'],
        ['Features', html`<span class="features">${queueFeatures(data).map(([s, t]) => html`<${Tag} title=${t}>${s}<//>`)}</span>`],
        ['Policy', data.policy ?? html`<span class="muted">none</span>`],
        ['Operator policy', data.operator_policy ?? html`<span class="muted">none</span>`],
        ['Effective policy', html`<${ArgsTable} args=${data.effective_policy_definition} />`],
        ['Arguments', html`<${ArgsTable} args=${data.arguments} />`],
        ['Message bytes', fmtBytes(data.message_bytes)],
        ['Memory', fmtBytes(data.memory)],
      ]} /></section>
      <section class="card"><h2>Rates</h2><${KeyValues} rows=${[
        ['Publish', fmtRate(num(stats, 'publish_details.rate') ?? 0)],
        ['Deliver / get', fmtRate(num(stats, 'deliver_get_details.rate') ?? 0)],
        ['Redelivered', fmtRate(num(stats, 'redeliver_details.rate') ?? 0)],
        ['Ack', fmtRate(num(stats, 'ack_details.rate') ?? 0)],
        ['Published (total)', fmtNum(num(stats, 'publish') ?? 0)],
        ['Dead-letters to', dlx === undefined ? html`<span class="muted">no dead-letter exchange</span>` : html`<code>${String(dlx) === '' ? '(default exchange)' : String(dlx)}</code>`],
      ]} /></section>
    </div>
    <${Section} title=${`Consumers (${fmtNum(data.consumers ?? 0)})`} id="consumers"><${Consumers} consumers=${data.consumer_details ?? []} /><//>
    <${Section} title="Bindings" id="bindings"><${Bindings} vhost=${vhost} name=${name} /><//>
    <${Section} title="Get messages" id="get"><${GetMessages} vhost=${vhost} name=${name} onChange=${q.reload} /><//>
    <${Section} title="Replay dead-lettered messages" id="replay" open=${false}><${DeadLetterReplay} vhost=${vhost} name=${name} depth=${data.messages ?? 0} onChange=${q.reload} /><//>
    <${Section} title="Move messages" id="move" open=${false}><${MoveMessages} vhost=${vhost} name=${name} onChange=${q.reload} /><//>
    <${Section} title="Purge and delete" id="danger" open=${false}>
      <div class="danger-zone">
        <${ConfirmButton} label="Purge messages" confirm=${`Yes, purge ${fmtNum(data.messages_ready ?? 0)} ready messages`} onConfirm=${() => run(async () => {
          await api(`${queuePath(vhost, name)}/contents`, { method: 'DELETE' });
          q.reload();
          return 'Queue purged: its ready messages are gone.';
        })} />
        <${ActionForm} submit="Delete queue" className="inline-form" onDone=${() => navigate('queues')} action=${async (d: FormData) => {
          const params = new URLSearchParams();
          if (checked(d, 'if_empty')) params.set('if-empty', 'true');
          if (checked(d, 'if_unused')) params.set('if-unused', 'true');
          const qs = params.toString();
          await api(`${queuePath(vhost, name)}${qs === '' ? '' : `?${qs}`}`, { method: 'DELETE' });
          return `Queue “${name}” deleted.`;
        }}>
          <label class="check"><input type="checkbox" name="if_empty" /> only if empty</label>
          <label class="check"><input type="checkbox" name="if_unused" /> only if unused</label>
        <//>
      </div>
      <${OutcomeLine} outcome=${outcome} />
    <//>
    ${can.admin ? null : html`<p class="muted">Some actions need the administrator tag or permissions on this vhost; the API says so when it refuses.</p>`}
  </div>`;
}
