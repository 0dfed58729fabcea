// Stream consumer groups (Warren's addition; amqplib): consumers sharing x-stream-consumer-name
// share a stored position (the highest offset they acknowledged); a named consumer without
// x-stream-offset resumes after it; with x-single-active-consumer only the oldest member receives
// and the next takes over where the group got to. Two groups on one stream keep two positions.

import { describe, expect, it } from 'vitest';
import { EXTERNAL, collector, rejection, sleep, useBroker, QUIET_MS, type Channel } from '../support/harness.js';

const h = useBroker();

async function streamWith(n: number): Promise<string> {
  const ch = await h.channel();
  const q = h.queue('st-group');
  await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  const pub = await (await h.connect()).createConfirmChannel();
  for (let i = 0; i < n; i++) pub.sendToQueue(q, Buffer.from(`m${i}`));
  await pub.waitForConfirms();
  return q;
}

/** A group member that acks the first `acks` deliveries it gets and leaves the rest unacked. */
async function member(q: string, group: string, opts: { acks: number; single?: boolean; offset?: unknown; prefetch?: number }) {
  const ch = await h.channel();
  await ch.prefetch(opts.prefetch ?? 100);
  let acked = 0;
  const c = collector((m) => {
    if (acked < opts.acks) {
      acked++;
      ch.ack(m);
    }
  });
  const args: Record<string, unknown> = { 'x-stream-consumer-name': group };
  if (opts.single) args['x-single-active-consumer'] = true;
  if (opts.offset !== undefined) args['x-stream-offset'] = opts.offset;
  const { consumerTag } = await ch.consume(q, c.onMessage, { arguments: args });
  return { ch, c, cancel: () => (ch as Channel).cancel(consumerTag) };
}

describe.skipIf(EXTERNAL)('consumer groups', () => {
  it('two groups read the same stream at different positions, and each resumes where it stopped', async () => {
    const q = await streamWith(10);
    const a = await member(q, 'billing', { acks: 6, offset: 'first' });
    const b = await member(q, 'audit', { acks: 3, offset: 'first' });
    await a.c.waitFor(10);
    await b.c.waitFor(10);
    // Let the acks reach the broker before leaving.
    await a.ch.checkQueue(q);
    await b.ch.checkQueue(q);
    await a.cancel();
    await b.cancel();
    const a2 = await member(q, 'billing', { acks: 100 });
    const b2 = await member(q, 'audit', { acks: 100 });
    await a2.c.waitFor(4);
    await b2.c.waitFor(7);
    await sleep(QUIET_MS);
    expect(a2.c.bodies()).toEqual(['m6', 'm7', 'm8', 'm9']);
    expect(b2.c.bodies()).toEqual(['m3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
    // A new group starts at next; an explicit offset wins over the stored position.
    const fresh = await member(q, 'new-group', { acks: 100 });
    const rewound = await member(q, 'billing', { acks: 100, offset: 8 });
    await rewound.c.waitFor(2);
    await sleep(QUIET_MS);
    expect(fresh.c.messages).toEqual([]);
    expect(rewound.c.bodies()).toEqual(['m8', 'm9']);
  });

  it('single active consumer: only the oldest member receives; the next takes over from the group position', async () => {
    const q = await streamWith(8);
    // prefetch 3, acks the first 3: it gets m0–m5 and leaves m3–m5 unacked.
    const first = await member(q, 'workers', { acks: 3, single: true, offset: 'first', prefetch: 3 });
    const second = await member(q, 'workers', { acks: 100, single: true, offset: 'first' });
    await first.c.waitFor(6);
    await sleep(QUIET_MS);
    expect(first.c.bodies()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    expect(second.c.messages).toEqual([]);
    await first.ch.close(); // m3–m5 were not acked: the next member gets them again
    await second.c.waitFor(5);
    expect(second.c.bodies()).toEqual(['m3', 'm4', 'm5', 'm6', 'm7']);
  });

  it('bad group arguments are 406', async () => {
    const q = await streamWith(0);
    for (const [args, text] of [
      [{ 'x-stream-consumer-name': '' }, `invalid arg 'x-stream-consumer-name' for queue '${q}' in vhost '/': expected a non-empty string`],
      [{ 'x-single-active-consumer': true }, `invalid arg 'x-single-active-consumer' for queue '${q}' in vhost '/': a single active consumer needs a group name in x-stream-consumer-name`],
      [{ 'x-stream-consumer-name': 'g', 'x-single-active-consumer': 'yes' }, `invalid arg 'x-single-active-consumer' for queue '${q}' in vhost '/': expected a boolean`],
    ] as const) {
      const ch = await h.channel();
      await ch.prefetch(5);
      expect(await rejection(ch.consume(q, () => {}, { arguments: args }))).toEqual(expect.objectContaining({ code: 406, text: `PRECONDITION_FAILED - ${text}` }));
    }
  });
});
