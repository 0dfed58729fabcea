// A follower's link to the leader's replication port: proves the cluster secret, sends its log
// position, then installs a snapshot if the leader sends one and applies the record stream —
// everything that arrived while the previous batch was being written goes into the next one
// transaction — acknowledging each applied batch once it is on disk. Reconnects (after a pause)
// whenever the link breaks or the leader falls silent, until stopped.

import { closeSync, createWriteStream, fsyncSync, mkdirSync, openSync, rmSync, type WriteStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInflateRaw, type InflateRaw } from 'node:zlib';
import type { Logger } from '../log.js';
import type { LeaderInfo } from './coordinator.js';
import type { FollowerStore } from './follower-store.js';
import type { LogRecord } from './log-records.js';
import {
  F_HELLO,
  F_PING,
  F_RECORDS,
  F_REFUSED,
  F_SNAP_BEGIN,
  F_SNAP_CHUNK,
  F_SNAP_END,
  F_WELCOME,
  FrameReader,
  MAX_FRAME,
  ackFrame,
  frame,
  F_AUTH,
  F_INSTALLED,
  json,
  mac,
  macEquals,
  nonce,
  readRecords,
  type Frame,
} from './wire.js';

const HEARTBEAT_MS = 1000;
/** Frames queued for processing before the socket is paused. */
const QUEUE_HIGH_BYTES = 16 * 1024 * 1024;

export type FollowerLinkState = 'connecting' | 'snapshot' | 'streaming' | 'stopped';

export interface ReplicationClientOptions {
  self: string;
  secret: string;
  leader: LeaderInfo;
  store: FollowerStore;
  /** local address to connect from (the node's advertised host) */
  localAddress?: string;
  /** the leader is considered gone after this long without a frame */
  silenceLimitMs: number;
  logger: Logger;
  /** told after every applied batch and state change */
  onProgress?: () => void;
}

export class ReplicationClient {
  state: FollowerLinkState = 'connecting';
  /** snapshots installed (metrics) */
  snapshotsInstalled = 0;
  private socket: Socket | null = null;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private busy: Promise<void> = Promise.resolve();

  constructor(readonly options: ReplicationClientOptions) {}

  start(): void {
    this.connect();
  }

  get leaderId(): string {
    return this.options.leader.id;
  }

  private connect(): void {
    if (this.stopped) return;
    const { leader, logger } = this.options;
    this.state = 'connecting';
    const socket = connect({
      host: leader.host,
      port: leader.clusterPort,
      noDelay: true,
      ...(this.options.localAddress !== undefined ? { localAddress: this.options.localAddress } : {}),
    });
    this.socket = socket;
    const link = new Link(this, socket);
    socket.on('error', (err) => logger.debug({ err: err.message, leader: leader.id }, 'replication link error'));
    socket.on('close', () => {
      link.closed();
      if (this.socket === socket) this.socket = null;
      this.busy = this.busy.then(() => link.finished());
      if (!this.stopped) {
        this.state = 'connecting';
        this.options.onProgress?.();
        this.reconnectTimer = setTimeout(() => this.connect(), 500);
        this.reconnectTimer.unref();
      }
    });
  }

  /** Stops the link; resolves once no batch is being applied any more. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.state = 'stopped';
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.socket?.destroy();
    await this.busy;
  }
}

/** One connection's life: handshake, then frames processed in order. */
class Link {
  private readonly reader = new FrameReader();
  private readonly myNonce = nonce();
  private inflate: InflateRaw | null = null;
  private readonly queue: Frame[] = [];
  private queuedBytes = 0;
  private processing: Promise<void> | null = null;
  private snapshotFile: WriteStream | null = null;
  private lastHeard = Date.now();
  private readonly timer: NodeJS.Timeout;
  private isClosed = false;
  private leaderNonce = '';

  constructor(
    private readonly client: ReplicationClient,
    private readonly socket: Socket,
  ) {
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    this.timer = setInterval(() => this.onTimer(), HEARTBEAT_MS);
    this.timer.unref();
  }

  private get opts(): ReplicationClientOptions {
    return this.client.options;
  }

  private onSocketData(chunk: Buffer): void {
    this.lastHeard = Date.now();
    if (this.inflate !== null) {
      this.inflate.write(chunk);
      return;
    }
    this.reader.push(chunk);
    try {
      let f: Frame | null;
      while (this.inflate === null && (f = this.reader.next()) !== null) this.onHandshake(f);
    } catch (err) {
      this.fail((err as Error).message);
    }
  }

  private onHandshake(f: Frame): void {
    const o = this.opts;
    if (f.type === F_HELLO) {
      const hello = json<{ version: number; leader: string; epoch: number; nonce: string }>(f);
      if (hello.leader !== o.leader.id) throw new Error(`expected leader ${o.leader.id}, reached ${hello.leader}`);
      this.leaderNonce = String(hello.nonce);
      const position = o.store.position;
      this.socket.write(
        frame(F_AUTH, { node: o.self, nonce: this.myNonce, mac: mac(o.secret, 'follower', this.leaderNonce, this.myNonce, o.self), seq: position.seq, epoch: position.epoch }),
      );
      return;
    }
    if (f.type === F_REFUSED) throw new Error(`the leader refused this follower: ${json<{ reason: string }>(f).reason}`);
    if (f.type !== F_WELCOME) throw new Error(`unexpected frame type ${f.type} during the handshake`);
    const welcome = json<{ mac: string; snapshot: boolean }>(f);
    if (!macEquals(String(welcome.mac), mac(o.secret, 'leader', this.myNonce, this.leaderNonce, o.leader.id))) {
      throw new Error('the leader did not prove the cluster secret');
    }
    this.client.state = welcome.snapshot ? 'snapshot' : 'streaming';
    o.logger.info({ leader: o.leader.id, snapshot: welcome.snapshot, seq: o.store.position.seq }, 'following the leader');
    o.onProgress?.();
    this.reader.maxFrame = MAX_FRAME;
    const rest = this.reader.rest();
    const inflate = createInflateRaw();
    inflate.on('data', (chunk: Buffer) => this.onStreamData(chunk));
    inflate.on('error', (err) => this.fail(`bad compressed stream: ${err.message}`));
    this.inflate = inflate;
    if (rest.length > 0) inflate.write(rest);
  }

  private onStreamData(chunk: Buffer): void {
    this.reader.push(chunk);
    try {
      let f: Frame | null;
      while ((f = this.reader.next()) !== null) {
        if (f.type === F_PING) continue;
        this.queue.push(f);
        this.queuedBytes += f.payload.length;
      }
    } catch (err) {
      this.fail((err as Error).message);
      return;
    }
    if (this.queuedBytes > QUEUE_HIGH_BYTES) this.socket.pause();
    this.kick();
  }

  private kick(): void {
    if (this.processing !== null || this.queue.length === 0 || this.isClosed) return;
    this.processing = this.process().then(
      () => {
        this.processing = null;
        if (this.queuedBytes <= QUEUE_HIGH_BYTES / 2) this.socket.resume();
        this.kick();
      },
      (err: unknown) => {
        this.processing = null;
        this.fail((err as Error).message);
      },
    );
  }

  /** Processes what is queued: all RECORDS frames at the head go into one transaction. */
  private async process(): Promise<void> {
    const o = this.opts;
    const first = this.queue[0]!;
    if (first.type === F_RECORDS) {
      const records: LogRecord[] = [];
      while (this.queue.length > 0 && this.queue[0]!.type === F_RECORDS) {
        const f = this.queue.shift()!;
        this.queuedBytes -= f.payload.length;
        for (const r of readRecords(f)) records.push(r);
      }
      const seq = await o.store.apply(records);
      if (!this.isClosed) this.socket.write(ackFrame(seq));
      o.onProgress?.();
      return;
    }
    this.queue.shift();
    this.queuedBytes -= first.payload.length;
    if (first.type === F_SNAP_BEGIN) {
      rmSync(o.store.snapshotPath, { recursive: true, force: true });
      mkdirSync(o.store.snapshotPath, { recursive: true });
      this.snapshotFile = createWriteStream(join(o.store.snapshotPath, 'data.mdb'));
      return;
    }
    if (first.type === F_SNAP_CHUNK) {
      const file = this.snapshotFile;
      if (file === null) throw new Error('snapshot data without a beginning');
      if (!file.write(first.payload)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
      return;
    }
    if (first.type === F_SNAP_END) {
      const file = this.snapshotFile;
      if (file === null) throw new Error('snapshot end without a beginning');
      this.snapshotFile = null;
      await new Promise<void>((resolve, reject) => {
        file.once('error', reject);
        // Synced before the swap: the copy must be whole on disk before the old store goes.
        file.end(() => {
          try {
            const fd = openSync(join(o.store.snapshotPath, 'data.mdb'), 'r+');
            fsyncSync(fd);
            closeSync(fd);
            resolve();
          } catch (err) {
            reject(err as Error);
          }
        });
      });
      if (this.isClosed) return;
      await o.store.installSnapshot();
      this.client.snapshotsInstalled++;
      const position = o.store.position;
      o.logger.info({ leader: o.leader.id, seq: position.seq, epoch: position.epoch }, 'snapshot installed');
      this.client.state = 'streaming';
      if (!this.isClosed) this.socket.write(ackFrame(position.seq, F_INSTALLED));
      o.onProgress?.();
      return;
    }
    throw new Error(`unexpected frame type ${first.type} from the leader`);
  }

  private onTimer(): void {
    if (this.isClosed) return;
    const silent = Date.now() - this.lastHeard;
    if (silent > this.opts.silenceLimitMs) {
      this.fail(`no word from the leader for ${silent} ms`);
      return;
    }
    if (this.client.state === 'streaming' && this.processing === null) this.socket.write(ackFrame(this.opts.store.position.seq));
  }

  private fail(reason: string): void {
    if (this.isClosed) return;
    this.opts.logger.warn({ leader: this.opts.leader.id, reason }, 'replication link dropped');
    this.socket.destroy();
  }

  closed(): void {
    this.isClosed = true;
    clearInterval(this.timer);
    this.inflate?.destroy();
    this.snapshotFile?.destroy();
    this.queue.length = 0;
  }

  /** Resolves once the batch in progress (if any) has been written. */
  async finished(): Promise<void> {
    const p = this.processing;
    if (p !== null) await p.catch(() => {});
  }
}
