// Data loading for pages: fetch on mount and re-fetch every refresh interval (5 s by default, as
// RabbitMQ's UI), pausing while the tab is hidden. Only one request per hook is in flight.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

const INTERVAL_KEY = 'warren.refreshMs';
export const REFRESH_CHOICES = [2000, 5000, 10000, 30000, 0];

export function refreshMs(): number {
  const stored = Number(localStorage.getItem(INTERVAL_KEY));
  return REFRESH_CHOICES.includes(stored) && localStorage.getItem(INTERVAL_KEY) !== null ? stored : 5000;
}

export function setRefreshMs(ms: number): void {
  localStorage.setItem(INTERVAL_KEY, String(ms));
  dispatchEvent(new Event('warren-refresh-interval'));
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Loads `load()` now, whenever `deps` change, and every refresh interval while `poll` is true.
 * Keeps the last good data while a refresh fails, and shows the error beside it.
 */
export function usePoll<T>(load: () => Promise<T>, deps: unknown[], poll = true): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [interval, setIntervalMs] = useState(refreshMs);
  const generation = useRef(0);
  const inFlight = useRef(false);
  const loadRef = useRef(load);
  loadRef.current = load;

  const run = useCallback((reset: boolean) => {
    if (inFlight.current && !reset) return;
    const mine = reset ? ++generation.current : generation.current;
    inFlight.current = true;
    setLoading(true);
    loadRef.current().then(
      (value) => {
        if (mine !== generation.current) return;
        setData(value);
        setError(undefined);
      },
      (err: unknown) => {
        if (mine !== generation.current) return;
        setError(err);
      },
    ).finally(() => {
      if (mine === generation.current) {
        inFlight.current = false;
        setLoading(false);
      }
    });
  }, []);

  useEffect(() => {
    setData(undefined);
    setError(undefined);
    run(true);
  }, deps);

  useEffect(() => {
    const onChange = (): void => setIntervalMs(refreshMs());
    addEventListener('warren-refresh-interval', onChange);
    return () => removeEventListener('warren-refresh-interval', onChange);
  }, []);

  useEffect(() => {
    if (!poll || interval === 0) return undefined;
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') run(false);
    }, interval);
    return () => clearInterval(timer);
  }, [poll, interval, run]);

  return { data, error, loading, reload: () => run(true) };
}

/** A value from localStorage that survives reloads (column choices, page sizes). */
export function useStored<T>(key: string, initial: T): [T, (v: T) => void] {
  const [value, setValue] = useState<T>(() => {
    try {
      const raw = localStorage.getItem(key);
      return raw === null ? initial : (JSON.parse(raw) as T);
    } catch {
      return initial;
    }
  });
  const set = (v: T): void => {
    setValue(v);
    localStorage.setItem(key, JSON.stringify(v));
  };
  return [value, set];
}
