// The `expiration` message property: milliseconds as a string, parsed the way RabbitMQ parses it
// (Erlang's string:to_integer: optional sign, leading digits, nothing left over) so the same
// values are accepted and the same reply texts name the problem.

/** Largest TTL RabbitMQ 3.10 accepts, in ms (ten years; measured on the property and the queue arguments). */
export const MAX_EXPIRY_MS = 315_360_000_000;

export type ExpirationParse = { ok: true; ms: number } | { ok: false; reason: string };

export function parseExpirationProperty(value: string): ExpirationParse {
  const m = /^([+-]?)(\d+)/.exec(value);
  if (m === null) return { ok: false, reason: 'no_integer' };
  const rest = value.slice(m[0].length);
  const n = Number(m[2]) * (m[1] === '-' ? -1 : 1);
  if (rest !== '') return { ok: false, reason: `{leftover_string,"${rest.replace(/["\\]/g, '\\$&')}"}` };
  if (n < 0) return { ok: false, reason: `{value_negative,${n}}` };
  if (n > MAX_EXPIRY_MS) return { ok: false, reason: `{value_too_large,${n}}` };
  return { ok: true, ms: n };
}

/** The TTL a valid expiration property asks for (publish has already refused invalid ones). */
export function expirationMs(value: string): number | undefined {
  const parsed = parseExpirationProperty(value);
  return parsed.ok ? parsed.ms : undefined;
}
