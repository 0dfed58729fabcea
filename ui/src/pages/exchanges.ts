// Exchanges: the paged list (GET /api/exchanges) and a form to declare one
// (PUT /api/exchanges/{vhost}/{name}).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ActionForm, Field, VhostSelect, checked, text } from '../components/form.js';
import { PagedTable, type Column } from '../components/paged-table.js';
import { Section, Tag } from '../components/ui.js';
import { fmtRate, num } from '../format.js';
import { exchangePath, parseArguments, useVhostNames, type ExchangeRow } from '../model.js';
import { href } from '../router.js';

const COLUMNS: Column<ExchangeRow>[] = [
  { key: 'vhost', label: 'Vhost', sort: 'vhost', render: (e) => e.vhost },
  { key: 'name', label: 'Name', sort: 'name', render: (e) => html`<a href=${href('exchanges', e.vhost, e.name === '' ? 'amq.default' : e.name)}>${e.name === '' ? '(AMQP default)' : e.name}</a>` },
  { key: 'type', label: 'Type', sort: 'type', render: (e) => e.type },
  { key: 'features', label: 'Features', render: (e) => html`<span class="features">
    ${e.durable ? html`<${Tag} title="durable">D<//>` : null}${e.auto_delete ? html`<${Tag} title="auto-delete">AD<//>` : null}
    ${e.internal ? html`<${Tag} title="internal">I<//>` : null}${e.arguments?.['alternate-exchange'] === undefined ? null : html`<${Tag} title=${`alternate-exchange: ${String(e.arguments['alternate-exchange'])}`}>AE<//>`}</span>` },
  { key: 'policy', label: 'Policy', sort: 'policy', render: (e) => e.policy ?? '' },
  { key: 'in', label: 'Rate in', sort: 'message_stats.publish_in_details.rate', numeric: true, render: (e) => fmtRate(num(e, 'message_stats.publish_in_details.rate') ?? 0) },
  { key: 'out', label: 'Rate out', sort: 'message_stats.publish_out_details.rate', numeric: true, render: (e) => fmtRate(num(e, 'message_stats.publish_out_details.rate') ?? 0) },
];

const TYPES = ['direct', 'fanout', 'topic', 'headers', 'x-delayed-message'];

export function ExchangesPage(): VNode {
  const [version, setVersion] = useState(0);
  const vhosts = useVhostNames();
  return html`<div class="page">
    <h1>Exchanges</h1>
    <${PagedTable} key=${version} id="exchanges" endpoint="/exchanges" columns=${COLUMNS}
      rowKey=${(e: ExchangeRow) => `${e.vhost}\u0000${e.name}`} empty="No exchanges in the vhosts you can see." />
    <${Section} title="Add an exchange" open=${false}>
      <${ActionForm} submit="Add exchange" className="grid-form" onDone=${() => setVersion(version + 1)} action=${async (d: FormData) => {
        const vhost = text(d, 'vhost');
        const name = text(d, 'name');
        await api(exchangePath(vhost, name), { method: 'PUT', body: {
          type: text(d, 'type'), durable: checked(d, 'durable'), auto_delete: checked(d, 'auto_delete'), internal: checked(d, 'internal'),
          arguments: parseArguments(text(d, 'arguments')),
        } });
        return `Exchange “${name}” declared in vhost “${vhost}”.`;
      }}>
        <${Field} label="Vhost"><${VhostSelect} vhosts=${vhosts} /><//>
        <${Field} label="Name"><input name="name" required /><//>
        <${Field} label="Type"><select name="type">${TYPES.map((t) => html`<option value=${t}>${t}</option>`)}</select><//>
        <${Field} label="Options"><span><label class="check"><input type="checkbox" name="durable" checked /> Durable</label>
          <label class="check"><input type="checkbox" name="auto_delete" /> Auto-delete</label>
          <label class="check"><input type="checkbox" name="internal" /> Internal</label></span><//>
        <${Field} label="Arguments" hint="one per line: alternate-exchange = my-ae"><textarea name="arguments" rows="2"></textarea><//>
      <//>
    <//>
  </div>`;
}
