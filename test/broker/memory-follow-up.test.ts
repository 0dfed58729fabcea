// The memory gauge's follow-up collection: a round of trims after a collection for released bodies
// that gave back far less than was released owes one more collection and round of trims (V8 frees
// dead buffers on background threads; the next collection finishes what is still pending), and
// only one: a follow-up round owes none itself, so memory still in use never loops collections.
// Here the shortfall is real memory in use: a consumer holds every delivery unacked, so the
// queue's bodies are released to the unacked ledger, not freed. The 100 MB flood is published and
// delivered within about a second, between two of the gauge's ticks: the gauge must still see its
// peak (it used to sample the peak at ticks only, and then owed no collection at all).

import { describe, expect, it } from 'vitest';
import { publishConfirmed } from '../support/amqp.js';
import { logRecords, outputLines, usePerTestChildBroker } from '../support/per-test-child-broker.js';
import { waitFor } from '../support/wait.js';

const BODY_BYTES = 4096;
const FLOOD_BYTES = 100e6;

const warren = usePerTestChildBroker();

/** The gauge's debug lines (JSON) with this message. */
const gaugeLines = (message: string): Record<string, unknown>[] => logRecords(warren.broker, message);
const COLLECTION = 'full garbage collection to give released message memory back';
const ROUND_END = 'memory given back to the system after a full garbage collection';

describe('memory gauge: a collection whose trims gave back too little (bin/warren)', () => {
  it('owes exactly one follow-up collection, which owes none itself', { timeout: 120_000 }, async () => {
    await warren.start('warren-mem-follow-up-', ['--log-level', 'debug']);
    const conn = await warren.clients.connect();
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('held', { durable: false });
    const count = Math.floor(FLOOD_BYTES / BODY_BYTES);
    await publishConfirmed(ch, 'held', Buffer.alloc(BODY_BYTES, 7), count);

    // Every message is delivered and none acked: the queue's bodies are released, all still in use.
    const reader = await conn.createChannel();
    let got = 0;
    await reader.consume('held', () => {
      got++;
    });
    await waitFor(() => got === count, `the ${count} deliveries (have ${got})`, 60_000);

    // The regular collection's round ends owing a follow-up; the follow-up's round ends owing none.
    // On a loaded machine the flood may be delivered over more than one tick, and a second regular
    // collection may come within the first one's round: its round then judges both releases
    // together (carriedMiB), so the sequence is one or more regular collections, then one follow-up.
    const followUpRoundEnded = (): boolean => gaugeLines(ROUND_END).some((r) => r.followUp === true);
    await waitFor(followUpRoundEnded, 'the follow-up round of trims', 60_000).catch((err: Error) => {
      const lines = outputLines(warren.broker).filter((l) => l.includes('garbage collection'));
      throw new Error(`${err.message}; gauge:\n${lines.join('\n')}`);
    });
    const collections = gaugeLines(COLLECTION);
    const rounds = gaugeLines(ROUND_END);
    const kinds = collections.map((c) => c.followUp);
    expect(kinds.at(-1)).toBe(true);
    expect(kinds.slice(0, -1).length).toBeGreaterThanOrEqual(1);
    expect(kinds.slice(0, -1).every((k) => k === false)).toBe(true);
    // Round ends are logged in order; the one before the follow-up's owed it, for the whole flood.
    const followUpAt = rounds.findIndex((r) => r.followUp === true);
    expect(followUpAt).toBeGreaterThanOrEqual(1);
    expect(rounds[followUpAt - 1]).toMatchObject({ followUp: false, followUpOwed: true });
    expect(rounds[followUpAt - 1]!.releasedMiB as number).toBeGreaterThanOrEqual(64);
    expect(rounds[followUpAt]).toMatchObject({ followUp: true, followUpOwed: false });
    const collectionsSoFar = collections.length;

    // Nothing more is owed: one more tick interval past the gauge's minimum between collections
    // (5 s) brings no further collection. Checked by a round trip the broker answers after its ticks.
    const quietSince = Date.now();
    await waitFor(() => Date.now() - quietSince > 6500, 'a quiet spell of 6.5 s', 10_000);
    await ch.checkQueue('held');
    expect(gaugeLines(COLLECTION)).toHaveLength(collectionsSoFar);
    await reader.close();
  });
});
