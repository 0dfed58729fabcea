// A well-behaved amqplib connection that keeps publishing to and consuming from its own exclusive
// queue while a test throws hostile input at the broker on other connections. The test calls
// publish() between its hostile steps; at the end, allReceived() waits until every message sent has
// come back (bounded), which shows the broker kept serving other clients throughout.

import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { waitFor } from './wait.js';

export class Bystander {
  sent = 0;
  received = 0;

  private constructor(
    readonly connection: ChannelModel,
    /** its channel, also free for the test's own well-behaved operations */
    readonly channel: Channel,
    private readonly queue: string,
  ) {}

  static async start(url: string): Promise<Bystander> {
    const connection = await amqp.connect(url);
    const channel = await connection.createChannel();
    const q = await channel.assertQueue('bystander', { exclusive: true });
    const b = new Bystander(connection, channel, q.queue);
    await channel.consume(q.queue, () => b.received++, { noAck: true });
    return b;
  }

  /** Sends three messages to its queue (not awaited: they come back through the consumer). */
  publish(): void {
    for (let i = 0; i < 3; i++) {
      this.channel.sendToQueue(this.queue, Buffer.from(`m${this.sent}`));
      this.sent++;
    }
  }

  /** Waits until everything sent has been received. */
  async allReceived(): Promise<void> {
    await waitFor(() => this.received === this.sent, `bystander to receive ${this.sent} messages (got ${this.received})`);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
