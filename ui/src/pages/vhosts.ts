// Vhosts: list with message counts (GET /api/vhosts), add (PUT /api/vhosts/{name}), delete
// (DELETE /api/vhosts/{name}: its queues, exchanges and messages go too).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { api, seg } from '../api.js';
import { ActionForm, Field, text } from '../components/form.js';
import { SimpleTable } from '../components/simple-table.js';
import { ConfirmButton, ErrorBox, OutcomeLine, Section, useAction } from '../components/ui.js';
import { fmtNum } from '../format.js';
import { usePoll } from '../hooks.js';
import type { VhostRow } from '../model.js';

export function VhostsPage(): VNode {
  const vhosts = usePoll(() => api<VhostRow[]>('/vhosts'), []);
  const [outcome, run] = useAction();
  return html`<div class="page">
    <h1>Virtual hosts</h1>
    <${ErrorBox} error=${vhosts.error} />
    <${SimpleTable} id="vhosts" rows=${vhosts.data} rowKey=${(v: VhostRow) => v.name} filterText=${(v: VhostRow) => v.name}
      empty="No vhosts. Add one below: clients connect to a vhost."
      columns=${[
        { label: 'Name', render: (v: VhostRow) => v.name },
        { label: 'Description', render: (v: VhostRow) => v.description ?? '' },
        { label: 'Ready', numeric: true, render: (v: VhostRow) => fmtNum(v.messages_ready ?? 0) },
        { label: 'Unacked', numeric: true, render: (v: VhostRow) => fmtNum(v.messages_unacknowledged ?? 0) },
        { label: 'Total', numeric: true, render: (v: VhostRow) => fmtNum(v.messages ?? 0) },
        { label: '', render: (v: VhostRow) => html`<${ConfirmButton} label="Delete" confirm=${`Yes, delete ${v.name} and everything in it`} onConfirm=${() => run(async () => {
          await api(`/vhosts/${seg(v.name)}`, { method: 'DELETE' });
          vhosts.reload();
          return `Vhost “${v.name}” deleted.`;
        })} />` },
      ]} />
    <${OutcomeLine} outcome=${outcome} />
    <${Section} title="Add a vhost">
      <${ActionForm} submit="Add vhost" className="grid-form" onDone=${vhosts.reload} action=${async (d: FormData) => {
        const name = text(d, 'name');
        const description = text(d, 'description');
        await api(`/vhosts/${seg(name)}`, { method: 'PUT', body: description === '' ? {} : { description } });
        return `Vhost “${name}” added. Give users permissions on it so they can connect.`;
      }}>
        <${Field} label="Name"><input name="name" required /><//>
        <${Field} label="Description"><input name="description" /><//>
      <//>
    <//>
  </div>`;
}
