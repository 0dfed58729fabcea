// Stream filtering as RabbitMQ 3.13 defines it (amqplib; RabbitMQ 3.10 has no filtering, so these
// run against Warren only): publishers tag messages with an x-stream-filter-value header;
// consumers pass x-stream-filter (a string or an array) and x-stream-match-unfiltered. Warren
// filters per message, so a consumer gets exactly the matching messages, in stream order.

import { describe, expect, it } from 'vitest';
import { EXTERNAL, collector, rejection, sleep, useBroker, QUIET_MS } from '../support/harness.js';

const h = useBroker();

describe.skipIf(EXTERNAL)('x-stream-filter', () => {
  async function filledStream(): Promise<string> {
    const ch = await h.channel();
    const q = h.queue('st-filter');
    await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'stream' } });
    const pub = await (await h.connect()).createConfirmChannel();
    const tagged: [string, string | undefined][] = [
      ['apple-1', 'apple'],
      ['banana-1', 'banana'],
      ['plain-1', undefined],
      ['cherry-1', 'cherry'],
      ['apple-2', 'apple'],
      ['plain-2', undefined],
      ['banana-2', 'banana'],
    ];
    for (const [body, value] of tagged) {
      pub.sendToQueue(q, Buffer.from(body), value === undefined ? {} : { headers: { 'x-stream-filter-value': value } });
    }
    await pub.waitForConfirms();
    return q;
  }

  async function received(q: string, args: Record<string, unknown>, expected: number): Promise<string[]> {
    const ch = await h.channel();
    await ch.prefetch(50);
    const c = collector((m) => ch.ack(m));
    await ch.consume(q, c.onMessage, { arguments: { 'x-stream-offset': 'first', ...args } });
    await c.waitFor(expected);
    await sleep(QUIET_MS);
    return c.bodies();
  }

  it('one value, several values, unfiltered messages on request, no filter at all', async () => {
    const q = await filledStream();
    expect(await received(q, { 'x-stream-filter': 'apple' }, 2)).toEqual(['apple-1', 'apple-2']);
    expect(await received(q, { 'x-stream-filter': ['apple', 'banana'] }, 4)).toEqual(['apple-1', 'banana-1', 'apple-2', 'banana-2']);
    expect(await received(q, { 'x-stream-filter': 'cherry', 'x-stream-match-unfiltered': true }, 3)).toEqual(['plain-1', 'cherry-1', 'plain-2']);
    expect(await received(q, {}, 7)).toEqual(['apple-1', 'banana-1', 'plain-1', 'cherry-1', 'apple-2', 'plain-2', 'banana-2']);
    expect(await received(q, { 'x-stream-filter': 'durian' }, 0)).toEqual([]);
  });

  it('deliveries keep their offsets (gaps where others were filtered out); new messages are filtered too', async () => {
    const q = await filledStream();
    const ch = await h.channel();
    await ch.prefetch(50);
    const c = collector((m) => ch.ack(m));
    await ch.consume(q, c.onMessage, { arguments: { 'x-stream-offset': 'first', 'x-stream-filter': 'banana' } });
    await c.waitFor(2);
    const pub = await (await h.connect()).createConfirmChannel();
    pub.sendToQueue(q, Buffer.from('apple-3'), { headers: { 'x-stream-filter-value': 'apple' } });
    pub.sendToQueue(q, Buffer.from('banana-3'), { headers: { 'x-stream-filter-value': 'banana' } });
    await pub.waitForConfirms();
    await c.waitFor(3);
    expect(c.bodies()).toEqual(['banana-1', 'banana-2', 'banana-3']);
    expect(c.messages.map((m) => Number(m.properties.headers!['x-stream-offset']))).toEqual([1, 6, 8]);
    expect(c.messages[0]!.properties.headers!['x-stream-filter-value']).toBe('banana');
  });

  it('a filter that is not a string or an array of strings is 406', async () => {
    const ch = await h.channel();
    const q = h.queue('st-filter-bad');
    await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'stream' } });
    await ch.prefetch(5);
    expect(await rejection(ch.consume(q, () => {}, { arguments: { 'x-stream-filter': 5 } }))).toEqual(
      expect.objectContaining({
        code: 406,
        text: `PRECONDITION_FAILED - invalid arg 'x-stream-filter' for queue '${q}' in vhost '/': expected a string or an array of strings`,
      }),
    );
  });
});
