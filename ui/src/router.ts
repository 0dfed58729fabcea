// Hash routing (#/queues/%2F/orders), as RabbitMQ's UI does: every page has an address that can be
// bookmarked and reloaded, and the server only ever serves one index.html.
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** First path segment: "", "queues", "exchanges", … */
  page: string;
  /** The remaining segments, decoded. */
  params: string[];
}

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#\/?/, '');
  const parts = path === '' ? [] : path.split('/').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { page: parts[0] ?? '', params: parts.slice(1) };
}

/** "#/queues/%2F/orders" for href("queues", "/", "orders"). */
export function href(...parts: string[]): string {
  return `#/${parts.map((p) => encodeURIComponent(p)).join('/')}`;
}

export function navigate(...parts: string[]): void {
  location.hash = href(...parts);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(parseHash(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
