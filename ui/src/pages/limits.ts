// Vhost limits: max-connections and max-queues per vhost (GET /api/vhost-limits,
// PUT/DELETE /api/vhost-limits/{vhost}/{name}).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { api, seg } from '../api.js';
import { ActionForm, Field, VhostSelect, text } from '../components/form.js';
import { SimpleTable } from '../components/simple-table.js';
import { ConfirmButton, ErrorBox, OutcomeLine, Section, useAction } from '../components/ui.js';
import { fmtNum } from '../format.js';
import { usePoll } from '../hooks.js';
import { useVhostNames } from '../model.js';

interface LimitsRow { vhost: string; value: Record<string, number> }
interface LimitRow { vhost: string; name: string; value: number }

export function LimitsPage(): VNode {
  const limits = usePoll(() => api<LimitsRow[]>('/vhost-limits'), []);
  const vhosts = useVhostNames();
  const [outcome, run] = useAction();
  const rows: LimitRow[] | undefined = limits.data?.flatMap((l) => Object.entries(l.value).map(([name, value]) => ({ vhost: l.vhost, name, value })));
  return html`<div class="page">
    <h1>Vhost limits</h1>
    <${ErrorBox} error=${limits.error} />
    <${SimpleTable} id="limits" rows=${rows} rowKey=${(l: LimitRow) => `${l.vhost}\u0000${l.name}`} filterText=${(l: LimitRow) => `${l.vhost} ${l.name}`}
      empty="No limits: every vhost may have any number of connections and queues. Set one below."
      columns=${[
        { label: 'Vhost', render: (l: LimitRow) => l.vhost },
        { label: 'Limit', render: (l: LimitRow) => l.name },
        { label: 'Value', numeric: true, render: (l: LimitRow) => (l.value < 0 ? 'unlimited' : fmtNum(l.value)) },
        { label: '', render: (l: LimitRow) => html`<${ConfirmButton} label="Remove" confirm="Yes, remove" onConfirm=${() => run(async () => {
          await api(`/vhost-limits/${seg(l.vhost)}/${seg(l.name)}`, { method: 'DELETE' });
          limits.reload();
          return `Limit ${l.name} on “${l.vhost}” removed.`;
        })} />` },
      ]} />
    <${OutcomeLine} outcome=${outcome} />
    <${Section} title="Set a limit">
      <${ActionForm} submit="Set limit" className="grid-form" onDone=${limits.reload} action=${async (d: FormData) => {
        const vhost = text(d, 'vhost');
        const name = text(d, 'name');
        await api(`/vhost-limits/${seg(vhost)}/${seg(name)}`, { method: 'PUT', body: { value: Number(text(d, 'value')) } });
        return `${name} on “${vhost}” set to ${text(d, 'value')}.`;
      }}>
        <${Field} label="Vhost"><${VhostSelect} vhosts=${vhosts} /><//>
        <${Field} label="Limit"><select name="name"><option value="max-connections">max-connections</option><option value="max-queues">max-queues</option></select><//>
        <${Field} label="Value" hint="-1 = unlimited, 0 = none allowed"><input name="value" type="number" min="-1" required class="short" /><//>
      <//>
    <//>
  </div>`;
}
