// One exchange: details, bindings from it and to it, add/remove bindings, publish a message
// (POST /api/exchanges/{vhost}/{name}/publish), delete.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { api, seg } from '../api.js';
import { ActionForm, Field, checked, text } from '../components/form.js';
import { ArgsTable, ConfirmButton, Empty, ErrorBox, KeyValues, Loading, OutcomeLine, Section, useAction } from '../components/ui.js';
import { fmtRate, num } from '../format.js';
import { usePoll } from '../hooks.js';
import { exchangePath, exchangePathName, parseArguments, type BindingRow, type ExchangeRow } from '../model.js';
import { href, navigate } from '../router.js';

function BindingTable({ vhost, rows, side, onChange }: { vhost: string; rows: BindingRow[]; side: 'source' | 'destination'; onChange: () => void }): VNode {
  const [outcome, run] = useAction();
  if (rows.length === 0) {
    return html`<${Empty}>${side === 'source' ? 'Nothing is bound to this exchange: messages published here go nowhere (or to its alternate exchange). Add a binding below.' : 'This exchange receives from no other exchange.'}<//>`;
  }
  return html`<div class="table-wrap"><table class="list bindings">
    <thead><tr><th>${side === 'source' ? 'To' : 'From'}</th><th>Routing key</th><th>Arguments</th><th></th></tr></thead>
    <tbody>${rows.map((b) => {
      const other = side === 'source' ? b.destination : b.source;
      const type = side === 'source' ? b.destination_type : 'exchange';
      const link = type === 'queue' ? href('queues', vhost, other) : href('exchanges', vhost, exchangePathName(other));
      return html`<tr><td><span class="muted">${type}</span> <a href=${link}>${other}</a></td><td><code>${b.routing_key}</code></td>
        <td><${ArgsTable} args=${b.arguments} empty="" /></td>
        <td><${ConfirmButton} label="Unbind" confirm="Yes, unbind" onConfirm=${() => run(async () => {
          await api(`/bindings/${seg(vhost)}/e/${seg(exchangePathName(b.source))}/${b.destination_type === 'queue' ? 'q' : 'e'}/${seg(b.destination)}/${seg(b.properties_key)}`, { method: 'DELETE' });
          onChange();
          return 'Binding removed.';
        })} /></td></tr>`;
    })}</tbody>
  </table><${OutcomeLine} outcome=${outcome} /></div>`;
}

function PublishForm({ vhost, name }: { vhost: string; name: string }): VNode {
  return html`<${ActionForm} submit="Publish message" className="grid-form publish-form" action=${async (d: FormData) => {
    const properties: Record<string, unknown> = { delivery_mode: checked(d, 'persistent') ? 2 : 1 };
    const headers = parseArguments(text(d, 'headers'));
    if (Object.keys(headers).length > 0) properties['headers'] = headers;
    for (const line of text(d, 'properties').split('\n')) {
      const eq = line.indexOf('=');
      if (line.trim() === '') continue;
      if (eq <= 0) throw new Error(`Property line “${line.trim()}” is not “name = value”.`);
      const key = line.slice(0, eq).trim();
      const value = line.slice(eq + 1).trim();
      properties[key] = key === 'priority' || key === 'timestamp' ? Number(value) : value;
    }
    const result = await api<{ routed: boolean }>(`${exchangePath(vhost, name)}/publish`, {
      method: 'POST',
      body: { properties, routing_key: text(d, 'routing_key'), payload: text(d, 'payload'), payload_encoding: text(d, 'encoding') },
    });
    if (!result.routed) throw new Error('Message published but not routed: no binding matched its routing key, so it was dropped.');
    return 'Message published and routed.';
  }}>
    <${Field} label="Routing key"><input name="routing_key" /><//>
    <${Field} label="Delivery"><label class="check"><input type="checkbox" name="persistent" checked /> Persistent (delivery mode 2)</label><//>
    <${Field} label="Headers" hint="name = value per line"><textarea name="headers" rows="2"></textarea><//>
    <${Field} label="Properties" hint="content_type = application/json, correlation_id, message_id, priority, expiration…"><textarea name="properties" rows="2"></textarea><//>
    <${Field} label="Payload"><textarea name="payload" rows="4"></textarea><//>
    <${Field} label="Payload encoding"><select name="encoding"><option value="string">string</option><option value="base64">base64</option></select><//>
  <//>`;
}

export function ExchangePage({ vhost, name }: { vhost: string; name: string }): VNode {
  const realName = name === 'amq.default' ? '' : name;
  const ex = usePoll(() => api<ExchangeRow>(exchangePath(vhost, realName)), [vhost, name]);
  const source = usePoll(() => api<BindingRow[]>(`${exchangePath(vhost, realName)}/bindings/source`), [vhost, name]);
  const destination = usePoll(() => api<BindingRow[]>(`${exchangePath(vhost, realName)}/bindings/destination`), [vhost, name]);
  const [outcome, run] = useAction();
  const data = ex.data;
  if (data === undefined) return ex.error === undefined ? html`<${Loading} />` : html`<div class="page"><h1>Exchange ${name}</h1><${ErrorBox} error=${ex.error} /></div>`;
  const builtIn = realName === '' || realName.startsWith('amq.');
  const reload = (): void => { source.reload(); destination.reload(); };
  return html`<div class="page exchange" data-exchange=${name}>
    <h1>Exchange <span class="name">${realName === '' ? '(AMQP default)' : realName}</span> <span class="sub">${data.type} · vhost ${vhost}</span></h1>
    <${ErrorBox} error=${ex.error} />
    <section class="card"><${KeyValues} rows=${[
      ['Type', data.type],
      ['Durable', data.durable ? 'yes' : 'no'],
      ['Auto-delete', data.auto_delete ? 'yes' : 'no'],
      ['Internal', data.internal ? 'yes' : 'no'],
      ['Policy', data.policy ?? html`<span class="muted">none</span>`],
      ['Arguments', html`<${ArgsTable} args=${data.arguments} />`],
      ['Rate in / out', `${fmtRate(num(data, 'message_stats.publish_in_details.rate') ?? 0)} / ${fmtRate(num(data, 'message_stats.publish_out_details.rate') ?? 0)}`],
    ]} /></section>
    ${realName === '' ? html`<p class="muted">The default exchange routes to the queue named by the routing key; it cannot be bound.</p>` : html`
    <${Section} title="Bindings from this exchange">
      <${ErrorBox} error=${source.error} />
      <${BindingTable} vhost=${vhost} rows=${source.data ?? []} side="source" onChange=${reload} />
      <h4>Add a binding from this exchange</h4>
      <${ActionForm} submit="Bind" className="inline-form" onDone=${reload} action=${async (d: FormData) => {
        const kind = text(d, 'kind');
        const dest = text(d, 'destination');
        await api(`/bindings/${seg(vhost)}/e/${seg(realName)}/${kind}/${seg(kind === 'e' ? exchangePathName(dest) : dest)}`, {
          method: 'POST', body: { routing_key: text(d, 'routing_key'), arguments: parseArguments(text(d, 'arguments')) },
        });
        return `Bound to ${kind === 'q' ? 'queue' : 'exchange'} “${dest}”.`;
      }}>
        <${Field} label="To"><select name="kind"><option value="q">queue</option><option value="e">exchange</option></select><//>
        <${Field} label="Name"><input name="destination" required /><//>
        <${Field} label="Routing key"><input name="routing_key" /><//>
        <${Field} label="Arguments" hint="name = value per line"><textarea name="arguments" rows="1"></textarea><//>
      <//>
    <//>
    <${Section} title="Bindings to this exchange" open=${false}>
      <${ErrorBox} error=${destination.error} />
      <${BindingTable} vhost=${vhost} rows=${destination.data ?? []} side="destination" onChange=${reload} />
    <//>`}
    <${Section} title="Publish a message" id="publish"><${PublishForm} vhost=${vhost} name=${realName} /><//>
    ${builtIn ? null : html`<${Section} title="Delete this exchange" open=${false}>
      <${ConfirmButton} label="Delete exchange" confirm=${`Yes, delete “${realName}”`} onConfirm=${() => run(async () => {
        await api(exchangePath(vhost, realName), { method: 'DELETE' });
        navigate('exchanges');
        return 'Exchange deleted.';
      })} />
      <${OutcomeLine} outcome=${outcome} />
    <//>`}
  </div>`;
}
