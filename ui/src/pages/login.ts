// The login form: a Warren user and password, checked against the API (GET /api/whoami with
// basic auth), exactly as RabbitMQ's UI logs in.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { login, type User } from '../session.js';
import { errorText } from '../components/ui.js';

export function LoginPage({ onLogin, reason }: { onLogin: (u: User) => void; reason: string | undefined }): VNode {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>(reason === undefined ? undefined : `Logged out: ${reason}`);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onLogin(await login({ username, password }));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="login">
    <form onSubmit=${submit} class="card">
      <h1>Warren</h1>
      <label>Username <input name="username" autocomplete="username" required value=${username}
        onInput=${(e: Event) => setUsername((e.target as HTMLInputElement).value)} /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" value=${password}
        onInput=${(e: Event) => setPassword((e.target as HTMLInputElement).value)} /></label>
      <button type="submit" class="primary" disabled=${busy}>Log in</button>
      ${error === undefined ? null : html`<div class="error" role="alert">${error}</div>`}
    </form>
  </div>`;
}
