// Permissions: configure/write/read regular expressions per user and vhost (GET /api/permissions,
// PUT/DELETE /api/permissions/{vhost}/{user}), and topic permissions on routing keys
// (/api/topic-permissions).
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { api, seg } from '../api.js';
import { ActionForm, Field, VhostSelect, text } from '../components/form.js';
import { SimpleTable } from '../components/simple-table.js';
import { ConfirmButton, ErrorBox, OutcomeLine, Section, useAction } from '../components/ui.js';
import { usePoll } from '../hooks.js';
import { useVhostNames } from '../model.js';

interface PermissionRow { user: string; vhost: string; configure: string; write: string; read: string }
interface TopicPermissionRow { user: string; vhost: string; exchange: string; write: string; read: string }

const regex = (s: string): VNode => html`<code>${s === '' ? '(none)' : s}</code>`;

export function PermissionsPage(): VNode {
  const perms = usePoll(() => api<PermissionRow[]>('/permissions'), []);
  const topic = usePoll(() => api<TopicPermissionRow[]>('/topic-permissions'), []);
  const users = usePoll(() => api<{ name: string }[]>('/users'), [], false);
  const vhosts = useVhostNames();
  const [outcome, run] = useAction();
  const userNames = (users.data ?? []).map((u) => u.name);
  return html`<div class="page">
    <h1>Permissions</h1>
    <${ErrorBox} error=${perms.error} />
    <${SimpleTable} id="permissions" rows=${perms.data} rowKey=${(p: PermissionRow) => `${p.vhost}\u0000${p.user}`}
      filterText=${(p: PermissionRow) => `${p.user} ${p.vhost}`}
      empty="No permissions: no user can use any vhost. Grant some below."
      columns=${[
        { label: 'User', render: (p: PermissionRow) => p.user },
        { label: 'Vhost', render: (p: PermissionRow) => p.vhost },
        { label: 'Configure', render: (p: PermissionRow) => regex(p.configure) },
        { label: 'Write', render: (p: PermissionRow) => regex(p.write) },
        { label: 'Read', render: (p: PermissionRow) => regex(p.read) },
        { label: '', render: (p: PermissionRow) => html`<${ConfirmButton} label="Clear" confirm="Yes, clear" onConfirm=${() => run(async () => {
          await api(`/permissions/${seg(p.vhost)}/${seg(p.user)}`, { method: 'DELETE' });
          perms.reload();
          return `Permissions of “${p.user}” on “${p.vhost}” cleared.`;
        })} />` },
      ]} />
    <${OutcomeLine} outcome=${outcome} />
    <${Section} title="Set permissions">
      <${ActionForm} submit="Set permissions" className="grid-form" onDone=${perms.reload} action=${async (d: FormData) => {
        const user = text(d, 'user');
        const vhost = text(d, 'vhost');
        await api(`/permissions/${seg(vhost)}/${seg(user)}`, { method: 'PUT', body: { configure: text(d, 'configure'), write: text(d, 'write'), read: text(d, 'read') } });
        return `Permissions of “${user}” on “${vhost}” set.`;
      }}>
        <${Field} label="User"><select name="user">${userNames.map((u) => html`<option value=${u}>${u}</option>`)}</select><//>
        <${Field} label="Vhost"><${VhostSelect} vhosts=${vhosts} /><//>
        <${Field} label="Configure regexp"><input name="configure" value=".*" /><//>
        <${Field} label="Write regexp"><input name="write" value=".*" /><//>
        <${Field} label="Read regexp"><input name="read" value=".*" /><//>
      <//>
    <//>
    <${Section} title="Topic permissions" open=${false}>
      <${ErrorBox} error=${topic.error} />
      <${SimpleTable} id="topic-permissions" rows=${topic.data} rowKey=${(p: TopicPermissionRow) => `${p.vhost}\u0000${p.user}\u0000${p.exchange}`}
        filterText=${(p: TopicPermissionRow) => `${p.user} ${p.vhost} ${p.exchange}`}
        empty="No topic permissions: routing keys on topic exchanges are not restricted."
        columns=${[
          { label: 'User', render: (p: TopicPermissionRow) => p.user },
          { label: 'Vhost', render: (p: TopicPermissionRow) => p.vhost },
          { label: 'Exchange', render: (p: TopicPermissionRow) => p.exchange },
          { label: 'Write', render: (p: TopicPermissionRow) => regex(p.write) },
          { label: 'Read', render: (p: TopicPermissionRow) => regex(p.read) },
          { label: '', render: (p: TopicPermissionRow) => html`<${ConfirmButton} label="Clear" confirm="Yes, clear" onConfirm=${() => run(async () => {
            await api(`/topic-permissions/${seg(p.vhost)}/${seg(p.user)}/${seg(p.exchange)}`, { method: 'DELETE' });
            topic.reload();
            return 'Topic permission cleared.';
          })} />` },
        ]} />
      <${ActionForm} submit="Set topic permission" className="grid-form" onDone=${topic.reload} action=${async (d: FormData) => {
        await api(`/topic-permissions/${seg(text(d, 'vhost'))}/${seg(text(d, 'user'))}`, { method: 'PUT', body: { exchange: text(d, 'exchange'), write: text(d, 'write'), read: text(d, 'read') } });
        return 'Topic permission set.';
      }}>
        <${Field} label="User"><select name="user">${userNames.map((u) => html`<option value=${u}>${u}</option>`)}</select><//>
        <${Field} label="Vhost"><${VhostSelect} vhosts=${vhosts} /><//>
        <${Field} label="Exchange"><input name="exchange" value="amq.topic" /><//>
        <${Field} label="Write regexp"><input name="write" value=".*" /><//>
        <${Field} label="Read regexp"><input name="read" value=".*" /><//>
      <//>
    <//>
  </div>`;
}
