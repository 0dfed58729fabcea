// Users: list (GET /api/users), add and edit (PUT /api/users/{name} with password and tags),
// delete (DELETE /api/users/{name}). Editing without a new password sends the stored hash back,
// since RabbitMQ's API clears a password that a PUT leaves out.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { ActionForm, Field, text } from '../components/form.js';
import { SimpleTable } from '../components/simple-table.js';
import { ConfirmButton, ErrorBox, OutcomeLine, Section, Tag, useAction } from '../components/ui.js';
import { usePoll } from '../hooks.js';
import { normaliseTags, type User } from '../session.js';

interface UserRow {
  name: string;
  tags: unknown;
  password_hash?: string;
  hashing_algorithm?: string;
}

const KNOWN_TAGS = ['administrator', 'monitoring', 'policymaker', 'management', 'impersonator'];

function UserForm({ existing, onDone }: { existing: UserRow | undefined; onDone: () => void }): VNode {
  const current = existing === undefined ? [] : normaliseTags(existing.tags);
  return html`<${ActionForm} key=${existing?.name ?? 'new'} submit=${existing === undefined ? 'Add user' : 'Update user'} className="grid-form" onDone=${onDone}
    action=${async (d: FormData) => {
      const name = existing?.name ?? text(d, 'name');
      const password = text(d, 'password');
      const tags = [...KNOWN_TAGS.filter((t) => d.get(`tag-${t}`) !== null), ...text(d, 'other_tags').split(',').map((t) => t.trim()).filter((t) => t !== '')];
      const body: Record<string, unknown> = { tags: tags.join(',') };
      if (password !== '') body['password'] = password;
      else if (existing !== undefined) {
        body['password_hash'] = existing.password_hash ?? '';
        if (existing.hashing_algorithm !== undefined) body['hashing_algorithm'] = existing.hashing_algorithm;
      } else throw new Error('Give the new user a password.');
      await api(`/users/${seg(name)}`, { method: 'PUT', body });
      return existing === undefined ? `User “${name}” added. Give it permissions on a vhost so it can connect.` : `User “${name}” updated.`;
    }}>
    ${existing === undefined ? html`<${Field} label="Name"><input name="name" required autocomplete="off" /><//>` : html`<${Field} label="Name"><strong>${existing.name}</strong><//>`}
    <${Field} label="Password" hint=${existing === undefined ? undefined : 'leave empty to keep the current password'}><input name="password" type="password" autocomplete="new-password" /><//>
    <${Field} label="Tags"><span class="tag-choices">${KNOWN_TAGS.map((t) => html`<label class="check"><input type="checkbox" name=${`tag-${t}`} defaultChecked=${current.includes(t)} /> ${t}</label>`)}</span><//>
    <${Field} label="Other tags" hint="comma-separated"><input name="other_tags" defaultValue=${current.filter((t) => !KNOWN_TAGS.includes(t)).join(', ')} /><//>
  <//>`;
}

export function UsersPage({ me }: { me: User }): VNode {
  const users = usePoll(() => api<UserRow[]>('/users'), []);
  const [editing, setEditing] = useState<UserRow | undefined>(undefined);
  const [outcome, run] = useAction();
  return html`<div class="page">
    <h1>Users</h1>
    <${ErrorBox} error=${users.error} />
    <${SimpleTable} id="users" rows=${users.data} rowKey=${(u: UserRow) => u.name} filterText=${(u: UserRow) => u.name}
      empty="No users. Add one below; without users nobody can log in."
      columns=${[
        { label: 'Name', render: (u: UserRow) => u.name },
        { label: 'Tags', render: (u: UserRow) => html`<span class="features">${normaliseTags(u.tags).map((t) => html`<${Tag} kind=${t === 'administrator' ? 'warn' : 'neutral'}>${t}<//>`)}</span>` },
        { label: 'Password', render: (u: UserRow) => (u.password_hash === '' ? html`<span class="muted">none (cannot log in with a password)</span>` : '●●●●') },
        { label: '', render: (u: UserRow) => html`<span class="row-actions">
          <button type="button" onClick=${() => setEditing(u)}>Edit</button>
          ${u.name === me.name ? null : html`<${ConfirmButton} label="Delete" confirm=${`Yes, delete ${u.name}`} onConfirm=${() => run(async () => {
            await api(`/users/${seg(u.name)}`, { method: 'DELETE' });
            users.reload();
            return `User “${u.name}” deleted; its connections were closed.`;
          })} />`}</span>` },
      ]} />
    <${OutcomeLine} outcome=${outcome} />
    ${editing === undefined ? null : html`<${Section} title=${`Edit user ${editing.name}`}>
      <${UserForm} existing=${editing} onDone=${() => { setEditing(undefined); users.reload(); }} />
      <button type="button" class="link" onClick=${() => setEditing(undefined)}>Cancel</button>
    <//>`}
    <${Section} title="Add a user" id="add-user"><${UserForm} existing=${undefined} onDone=${users.reload} /><//>
  </div>`;
}
