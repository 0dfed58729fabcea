// Waiting in tests without fixed sleeps: poll a condition until it holds, bounded in time. The one
// place these helpers live; every test imports them from here.

/** Resolves after ms. Only for pacing a loop or for QUIET_MS checks, never to "let things settle". */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How long a test waits to be sure that something does NOT happen. */
export const QUIET_MS = 150;

export type Truthy<T> = Exclude<T, undefined | null | false | 0 | ''>;

/** Polls until check() is truthy and returns that value; throws "timed out waiting for WHAT" after timeoutMs. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 5000): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
