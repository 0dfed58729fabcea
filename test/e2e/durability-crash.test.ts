// The crash test CI runs. bin/warren runs as a child process on one data folder for several rounds;
// in each, a publisher (confirm channel, persistent messages numbered in their body, about 200
// unconfirmed at a time) and a consumer (manual acks, prefetch 50) work concurrently until the
// broker is killed with SIGKILL at a random moment. After the last round the broker starts once
// more and the queue is drained. Then:
//   - none lost: every confirmed message was acked by the consumer at some point, or is still in
//     the queue at the end;
//   - no message is delivered twice unless the later delivery says redelivered;
//   - nothing is delivered that was not published, and every body arrives intact;
//   - within one broker lifetime the single consumer sees messages in queue (publish) order.
// Acks are fire-and-forget: a message counts as acked only when its ack was written before the
// kill; one whose ack did not reach the broker comes back, and must then be flagged redelivered.
// Nacked messages (if any) are reported, as are the counts, for the CI log.

import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import { sleep, waitFor } from '../support/harness.js';
import { useChildBrokers } from '../support/child-brokers.js';

const ROUNDS = 5;
const WINDOW = 200;
const PREFETCH = 50;
const QUEUE = 'crash-test';

const { live, folders, clients, start, connect } = useChildBrokers();

/** Body: the sequence number, a colon, then a filler that depends on it (so damage shows). */
function body(seq: number): Buffer {
  return Buffer.from(`${seq}:${'abcdefghijklmnopqrstuvwxyz'.repeat(4).slice(0, seq % 100)}`);
}

function parse(content: Buffer): number | null {
  const text = content.toString();
  const seq = Number(text.slice(0, text.indexOf(':')));
  return Number.isInteger(seq) && seq > 0 && content.equals(body(seq)) ? seq : null;
}

interface Delivery {
  round: number;
  redelivered: boolean;
}

describe('crash test: SIGKILL while publishing and consuming', () => {
  it(`${ROUNDS} rounds, then a final drain: nothing confirmed is lost, nothing is duplicated unflagged`, { timeout: 90_000 }, async () => {
    const dataDir = tempDir('warren-crash-');
    folders.push(dataDir);

    let nextSeq = 1;
    const published = new Set<number>();
    const confirmed = new Set<number>();
    const nacked = new Set<number>();
    const acked = new Set<number>();
    const deliveries = new Map<number, Delivery[]>();
    const damaged: string[] = [];
    const outOfOrder: string[] = [];
    const killTimes: number[] = [];
    const perRound: string[] = [];

    /** Records a delivery; returns its sequence number, or null for a damaged body. */
    const record = (content: Buffer, redelivered: boolean, round: number, lastSeq: { value: number }): number | null => {
      const seq = parse(content);
      if (seq === null) {
        damaged.push(content.toString().slice(0, 40));
        return null;
      }
      const list = deliveries.get(seq) ?? [];
      list.push({ round, redelivered });
      deliveries.set(seq, list);
      if (seq <= lastSeq.value) outOfOrder.push(`round ${round}: ${seq} after ${lastSeq.value}`);
      lastSeq.value = seq;
      return seq;
    };

    for (let round = 1; round <= ROUNDS; round++) {
      const broker = await start(dataDir);
      const pubConn = await connect(broker);
      const conConn = await connect(broker);
      const pub = await pubConn.createConfirmChannel();
      pub.on('error', () => {});
      await pub.assertQueue(QUEUE, { durable: true });
      const con = await conConn.createChannel();
      con.on('error', () => {});
      await con.prefetch(PREFETCH);

      let killed = false;
      const counts = { published: 0, confirmed: 0, delivered: 0, acked: 0 };
      const lastSeq = { value: 0 };
      await con.consume(
        QUEUE,
        (msg) => {
          if (msg === null) return;
          const seq = record(msg.content, msg.fields.redelivered, round, lastSeq);
          counts.delivered++;
          if (killed) return; // read from the socket after the kill: an ack would go nowhere
          try {
            con.ack(msg);
          } catch {
            return; // the channel is already gone: not acked
          }
          if (seq !== null) {
            acked.add(seq);
            counts.acked++;
          }
        },
        { noAck: false },
      );

      // Publisher: keeps about WINDOW messages unconfirmed until the broker dies.
      let outstanding = 0;
      let wake: (() => void) | null = null;
      const wakeUp = (): void => {
        const w = wake;
        wake = null;
        w?.();
      };
      const publishing = (async () => {
        while (!killed) {
          if (outstanding >= WINDOW) {
            await new Promise<void>((r) => {
              wake = r;
              setTimeout(wakeUp, 50);
            });
            continue;
          }
          const seq = nextSeq++;
          try {
            pub.publish('', QUEUE, body(seq), { persistent: true }, (err) => {
              outstanding--;
              if (err === null || err === undefined) {
                confirmed.add(seq);
                counts.confirmed++;
              } else if ((err as Error).message === 'message nacked') nacked.add(seq);
              wakeUp();
            });
          } catch {
            break; // the channel is closed: this one was never sent
          }
          published.add(seq);
          outstanding++;
          counts.published++;
          if (seq % 20 === 0) await new Promise((r) => setImmediate(r));
        }
      })();

      const killAfter = 300 + Math.floor(Math.random() * 1200);
      killTimes.push(killAfter);
      await sleep(killAfter);
      killed = true;
      await broker.kill();
      live.delete(broker);
      wakeUp();
      await publishing;
      await waitFor(() => clients.open.size === 0, 'the clients to see the broker gone');
      perRound.push(
        `round ${round}: killed after ${killAfter} ms; published ${counts.published}, confirmed ${counts.confirmed}, delivered ${counts.delivered}, acked ${counts.acked}`,
      );
    }

    // Final drain: everything still in the queue.
    const broker = await start(dataDir);
    const conn = await connect(broker);
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    const { messageCount: remaining } = await ch.checkQueue(QUEUE);
    await ch.prefetch(500);
    const finalSeqs = new Set<number>();
    let finalDeliveries = 0;
    const lastSeq = { value: 0 };
    await ch.consume(
      QUEUE,
      (msg) => {
        if (msg === null) return;
        const seq = record(msg.content, msg.fields.redelivered, ROUNDS + 1, lastSeq);
        if (seq !== null) finalSeqs.add(seq);
        finalDeliveries++;
        ch.ack(msg);
      },
      { noAck: false },
    );
    await waitFor(() => finalDeliveries >= remaining, `${remaining} messages in the final drain (have ${finalDeliveries})`, 30_000);
    await sleep(200);
    const { messageCount: left } = await ch.checkQueue(QUEUE);
    await conn.close();
    expect(await broker.stop()).toBe(0);
    live.delete(broker);

    // ---- Verdict ---------------------------------------------------------------------------------
    let deliveryCount = 0;
    let redeliveredCount = 0;
    const unflaggedDuplicates: string[] = [];
    const phantoms: number[] = [];
    for (const [seq, list] of deliveries) {
      deliveryCount += list.length;
      redeliveredCount += list.filter((d) => d.redelivered).length;
      if (!published.has(seq)) phantoms.push(seq);
      for (let i = 1; i < list.length; i++) {
        if (!list[i]!.redelivered) {
          unflaggedDuplicates.push(`${seq}: delivered in round ${list[i - 1]!.round} and again unflagged in round ${list[i]!.round}`);
        }
      }
    }
    const lost = [...confirmed].filter((seq) => !acked.has(seq) && !finalSeqs.has(seq)).sort((a, b) => a - b);

    console.log(
      [
        `crash test: ${ROUNDS} rounds, kills at ${killTimes.join(', ')} ms`,
        ...perRound,
        `published ${published.size}, confirmed ${confirmed.size}, nacked ${nacked.size}, delivered ${deliveryCount} (${deliveries.size} distinct), redelivered ${redeliveredCount}, acked ${acked.size}, remaining ${remaining} (drained ${finalDeliveries})`,
        `lost ${lost.length}, unflagged duplicates ${unflaggedDuplicates.length}, out of order ${outOfOrder.length}, damaged ${damaged.length}, phantoms ${phantoms.length}`,
        ...(nacked.size > 0 ? [`nacked: ${[...nacked].slice(0, 50).join(', ')}`] : []),
      ].join('\n'),
    );

    expect(confirmed.size, 'the publisher got confirms at all').toBeGreaterThan(0);
    expect(acked.size, 'the consumer acked at all').toBeGreaterThan(0);
    expect(lost.slice(0, 20), `${lost.length} confirmed messages were lost`).toEqual([]);
    expect(unflaggedDuplicates.slice(0, 20), `${unflaggedDuplicates.length} duplicates without redelivered`).toEqual([]);
    expect(phantoms.slice(0, 20)).toEqual([]);
    expect(damaged.slice(0, 20)).toEqual([]);
    expect(outOfOrder.slice(0, 20), `${outOfOrder.length} deliveries out of queue order`).toEqual([]);
    expect(finalDeliveries).toBe(remaining);
    expect(left).toBe(0);
  });
});
