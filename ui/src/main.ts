// Entry point of the management web UI: login, the navigation bar (what shows depends on the
// user's tags) and the page for the current #/address.
import { html } from 'htm/preact';
import { render, type VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { setCredentials, setUnauthorizedHandler } from './api.js';
import { LoginPage } from './pages/login.js';
import { OverviewPage } from './pages/overview.js';
import { QueuesPage } from './pages/queues.js';
import { QueuePage } from './pages/queue.js';
import { ExchangesPage } from './pages/exchanges.js';
import { ExchangePage } from './pages/exchange.js';
import { ConnectionsPage, ConnectionPage } from './pages/connections.js';
import { ChannelsPage } from './pages/channels.js';
import { UsersPage } from './pages/users.js';
import { VhostsPage } from './pages/vhosts.js';
import { PermissionsPage } from './pages/permissions.js';
import { PoliciesPage } from './pages/policies.js';
import { LimitsPage } from './pages/limits.js';
import { DefinitionsPage } from './pages/definitions.js';
import { href, useRoute, type Route } from './router.js';
import { abilities, login, logout, storedCredentials, type Abilities, type User } from './session.js';
import { REFRESH_CHOICES, refreshMs, setRefreshMs } from './hooks.js';
import { Loading } from './components/ui.js';
import './style.css';

interface NavItem {
  page: string;
  label: string;
  allowed: (a: Abilities) => boolean;
}

const NAV: NavItem[] = [
  { page: '', label: 'Overview', allowed: () => true },
  { page: 'connections', label: 'Connections', allowed: () => true },
  { page: 'channels', label: 'Channels', allowed: () => true },
  { page: 'exchanges', label: 'Exchanges', allowed: () => true },
  { page: 'queues', label: 'Queues', allowed: () => true },
  { page: 'users', label: 'Users', allowed: (a) => a.admin },
  { page: 'vhosts', label: 'Vhosts', allowed: (a) => a.admin },
  { page: 'permissions', label: 'Permissions', allowed: (a) => a.admin },
  { page: 'policies', label: 'Policies', allowed: (a) => a.policies },
  { page: 'limits', label: 'Limits', allowed: (a) => a.admin },
  { page: 'definitions', label: 'Definitions', allowed: (a) => a.admin },
];

function pageFor(route: Route, user: User, can: Abilities): VNode {
  const [a = '', b = ''] = route.params;
  const item = NAV.find((n) => n.page === route.page);
  if (item !== undefined && !item.allowed(can)) {
    return html`<div class="error">User “${user.name}” (tags: ${user.tags.join(', ') || 'none'}) cannot use this page.</div>`;
  }
  switch (route.page) {
    case '': return html`<${OverviewPage} can=${can} />`;
    case 'queues': return route.params.length >= 2 ? html`<${QueuePage} vhost=${a} name=${b} can=${can} />` : html`<${QueuesPage} />`;
    case 'exchanges': return route.params.length >= 2 ? html`<${ExchangePage} vhost=${a} name=${b} />` : html`<${ExchangesPage} />`;
    case 'connections': return route.params.length >= 1 ? html`<${ConnectionPage} name=${a} />` : html`<${ConnectionsPage} />`;
    case 'channels': return html`<${ChannelsPage} />`;
    case 'users': return html`<${UsersPage} me=${user} />`;
    case 'vhosts': return html`<${VhostsPage} />`;
    case 'permissions': return html`<${PermissionsPage} />`;
    case 'policies': return html`<${PoliciesPage} />`;
    case 'limits': return html`<${LimitsPage} />`;
    case 'definitions': return html`<${DefinitionsPage} />`;
    default: return html`<div class="empty">There is no page “${route.page}”. <a href="#/">Go to the overview.</a></div>`;
  }
}

function App(): VNode {
  const route = useRoute();
  const [user, setUser] = useState<User | undefined>(undefined);
  const [restoring, setRestoring] = useState(() => storedCredentials() !== undefined);
  const [loggedOutReason, setLoggedOutReason] = useState<string | undefined>(undefined);
  const [interval, setIntervalMs] = useState(refreshMs);

  useEffect(() => {
    setUnauthorizedHandler((reason) => {
      logout();
      setUser(undefined);
      setLoggedOutReason(reason);
    });
    const creds = storedCredentials();
    if (creds === undefined) return;
    login(creds).then(setUser, () => logout()).finally(() => setRestoring(false));
  }, []);

  if (restoring) return html`<${Loading} />`;
  if (user === undefined) {
    return html`<${LoginPage} reason=${loggedOutReason} onLogin=${(u: User) => { setLoggedOutReason(undefined); setUser(u); }} />`;
  }
  const can = abilities(user);
  return html`<div class="shell">
    <header class="top">
      <a class="brand" href="#/">Warren</a>
      <nav>${NAV.filter((n) => n.allowed(can)).map((n) => html`<a href=${n.page === '' ? '#/' : href(n.page)}
        class=${route.page === n.page ? 'active' : ''}>${n.label}</a>`)}</nav>
      <div class="who">
        <label title="How often pages refresh">Refresh <select value=${interval} onChange=${(e: Event) => {
          const ms = Number((e.target as HTMLSelectElement).value);
          setRefreshMs(ms);
          setIntervalMs(ms);
        }}>${REFRESH_CHOICES.map((ms) => html`<option value=${ms}>${ms === 0 ? 'off' : `${ms / 1000} s`}</option>`)}</select></label>
        <span class="user" data-user=${user.name}>${user.name}</span>
        <button type="button" class="link" onClick=${() => { logout(); setCredentials(undefined); setUser(undefined); }}>Log out</button>
      </div>
    </header>
    <main>${pageFor(route, user, can)}</main>
  </div>`;
}

const root = document.getElementById('app');
if (root !== null) render(html`<${App} />`, root);
