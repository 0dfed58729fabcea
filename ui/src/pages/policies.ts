// Policies and operator policies: list, add/edit (PUT /api/policies/{vhost}/{name} with pattern,
// apply-to, priority and definition), delete. The definition is typed as key = value lines.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { ActionForm, Field, VhostSelect, text } from '../components/form.js';
import { SimpleTable } from '../components/simple-table.js';
import { ArgsTable, ConfirmButton, ErrorBox, OutcomeLine, Section, useAction } from '../components/ui.js';
import { fmtValue } from '../format.js';
import { usePoll } from '../hooks.js';
import { parseArguments, useVhostNames } from '../model.js';

interface PolicyRow { vhost: string; name: string; pattern: string; 'apply-to': string; priority: number; definition: Record<string, unknown> }

const KEYS_HINT = 'message-ttl, expires, max-length, max-length-bytes, overflow, dead-letter-exchange, dead-letter-routing-key, alternate-exchange, delivery-limit, queue-mode';

function PolicyList({ kind }: { kind: 'policies' | 'operator-policies' }): VNode {
  const policies = usePoll(() => api<PolicyRow[]>(`/${kind}`), [kind]);
  const vhosts = useVhostNames();
  const [editing, setEditing] = useState<PolicyRow | undefined>(undefined);
  const [outcome, run] = useAction();
  const label = kind === 'policies' ? 'policy' : 'operator policy';
  const Label = kind === 'policies' ? 'Policy' : 'Operator policy';
  return html`<div data-kind=${kind}>
    <${ErrorBox} error=${policies.error} />
    <${SimpleTable} id=${kind} rows=${policies.data} rowKey=${(p: PolicyRow) => `${p.vhost}\u0000${p.name}`} filterText=${(p: PolicyRow) => `${p.name} ${p.pattern}`}
      empty=${`No ${label === 'policy' ? 'policies' : 'operator policies'}. A ${label} sets TTLs, limits and dead-lettering for every queue whose name matches its pattern: add one below.`}
      columns=${[
        { label: 'Vhost', render: (p: PolicyRow) => p.vhost },
        { label: 'Name', render: (p: PolicyRow) => p.name },
        { label: 'Pattern', render: (p: PolicyRow) => html`<code>${p.pattern}</code>` },
        { label: 'Apply to', render: (p: PolicyRow) => p['apply-to'] },
        { label: 'Definition', render: (p: PolicyRow) => html`<${ArgsTable} args=${p.definition} />` },
        { label: 'Priority', numeric: true, render: (p: PolicyRow) => String(p.priority) },
        { label: '', render: (p: PolicyRow) => html`<span class="row-actions"><button type="button" onClick=${() => setEditing(p)}>Edit</button>
          <${ConfirmButton} label="Delete" confirm="Yes, delete" onConfirm=${() => run(async () => {
            await api(`/${kind}/${seg(p.vhost)}/${seg(p.name)}`, { method: 'DELETE' });
            policies.reload();
            return `${Label} “${p.name}” deleted.`;
          })} /></span>` },
      ]} />
    <${OutcomeLine} outcome=${outcome} />
    <${Section} title=${editing === undefined ? `Add a ${label}` : `Edit ${label} ${editing.name}`}>
      <${ActionForm} key=${editing === undefined ? 'new' : `${editing.vhost}/${editing.name}`} submit=${editing === undefined ? `Add ${label}` : `Update ${label}`} className="grid-form"
        onDone=${() => { setEditing(undefined); policies.reload(); }} action=${async (d: FormData) => {
          const vhost = text(d, 'vhost');
          const name = text(d, 'name');
          await api(`/${kind}/${seg(vhost)}/${seg(name)}`, { method: 'PUT', body: {
            pattern: text(d, 'pattern'), 'apply-to': text(d, 'apply_to'), priority: Number(text(d, 'priority')) || 0,
            definition: parseArguments(text(d, 'definition')),
          } });
          return `${Label} “${name}” set.`;
        }}>
        <${Field} label="Vhost"><${VhostSelect} vhosts=${vhosts} value=${editing?.vhost} /><//>
        <${Field} label="Name"><input name="name" required defaultValue=${editing?.name ?? ''} /><//>
        <${Field} label="Pattern" hint="regular expression on queue/exchange names"><input name="pattern" required defaultValue=${editing?.pattern ?? ''} /><//>
        <${Field} label="Apply to"><select name="apply_to">
          ${['all', 'queues', 'exchanges', 'classic_queues'].map((a) => html`<option value=${a} selected=${a === (editing?.['apply-to'] ?? 'all')}>${a}</option>`)}</select><//>
        <${Field} label="Priority"><input name="priority" type="number" defaultValue=${String(editing?.priority ?? 0)} class="short" /><//>
        <${Field} label="Definition" hint=${`key = value per line; keys: ${KEYS_HINT}`}><textarea name="definition" rows="3">${
          Object.entries(editing?.definition ?? {}).map(([k, v]) => `${k} = ${fmtValue(v)}`).join('\n')}</textarea><//>
      <//>
    <//>
  </div>`;
}

export function PoliciesPage(): VNode {
  return html`<div class="page">
    <h1>Policies</h1>
    <${PolicyList} kind="policies" />
    <h2>Operator policies</h2>
    <p class="muted">Operator policies cap what user policies and queue arguments ask for; the lower value wins.</p>
    <${PolicyList} kind="operator-policies" />
  </div>`;
}
