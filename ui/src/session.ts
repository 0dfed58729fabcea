// Who is logged in, and what their tags let the page show (RabbitMQ's model: administrator sees
// and changes everything; monitoring sees everything; policymaker manages policies; management
// sees its own vhosts). The API enforces all of it; the page only hides what would be refused.
import { api, setCredentials, type Credentials } from './api.js';

export interface User {
  name: string;
  tags: string[];
}

const STORAGE_KEY = 'warren.login';

export interface Abilities {
  /** May see every connection, channel and node (administrator, monitoring). */
  monitor: boolean;
  /** Users, vhosts, permissions, limits, definitions (administrator). */
  admin: boolean;
  /** Policies (administrator, policymaker). */
  policies: boolean;
}

export function abilities(user: User): Abilities {
  const has = (t: string): boolean => user.tags.includes(t);
  const admin = has('administrator');
  return { admin, monitor: admin || has('monitoring'), policies: admin || has('policymaker') };
}

export const MANAGEMENT_TAGS = ['administrator', 'monitoring', 'policymaker', 'management'];

/** RabbitMQ returns tags as a list (3.10) or, in older versions, a comma-separated string. */
export function normaliseTags(tags: unknown): string[] {
  if (Array.isArray(tags)) return tags.map(String).filter((t) => t !== '');
  if (typeof tags === 'string') return tags.split(',').map((t) => t.trim()).filter((t) => t !== '');
  return [];
}

/** Checks the credentials against the API; throws ApiError with the API's reason if refused. */
export async function login(creds: Credentials): Promise<User> {
  const who = await api<{ name: string; tags: unknown }>('/whoami', { as: creds });
  const user = { name: who.name, tags: normaliseTags(who.tags) };
  if (!user.tags.some((t) => MANAGEMENT_TAGS.includes(t))) {
    throw new Error(`User "${user.name}" has no management tag, so it cannot use this page. Ask an administrator to give it the "management" (or "monitoring"/"administrator") tag.`);
  }
  setCredentials(creds);
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(creds));
  return user;
}

export function storedCredentials(): Credentials | undefined {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (raw === null) return undefined;
    const parsed = JSON.parse(raw) as Partial<Credentials>;
    if (typeof parsed.username !== 'string' || typeof parsed.password !== 'string') return undefined;
    return { username: parsed.username, password: parsed.password };
  } catch {
    return undefined;
  }
}

export function logout(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  setCredentials(undefined);
}
