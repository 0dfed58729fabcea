// The leader's replication port: authenticates followers, sends each a snapshot of the store when
// its position is not in the leader's log (a new follower, one far behind, or one whose log went a
// different way under an earlier leader), then streams committed log records from its position on,
// and feeds their acknowledgements to the in-sync set. One session per follower; sending follows
// the socket's pace (no buffering beyond one batch), reading records from the log as it goes.

import { createReadStream, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { constants as zlibConstants, createDeflateRaw, type DeflateRaw } from 'node:zlib';
import type { Logger } from '../log.js';
import type { FollowerProgress, InSyncSet } from './in-sync-set.js';
import type { LogPosition } from './log-records.js';
import type { ReplicationLog } from './replication-log.js';
import { copyStore } from './snapshot.js';
import {
  F_ACK,
  F_AUTH,
  F_HELLO,
  F_INSTALLED,
  F_PING,
  F_REFUSED,
  F_SNAP_BEGIN,
  F_SNAP_CHUNK,
  F_SNAP_END,
  F_WELCOME,
  FrameReader,
  MAX_FRAME,
  WIRE_VERSION,
  frame,
  frameHeader,
  json,
  mac,
  macEquals,
  nonce,
  readAck,
  recordsFrame,
  type Frame,
} from './wire.js';

/** Bytes of records per RECORDS frame. */
const BATCH_BYTES = 1024 * 1024;
const SNAPSHOT_CHUNK = 1024 * 1024;
const PING_MS = 1000;

export interface ReplicationServerOptions {
  self: string;
  epoch: number;
  secret: string;
  log: ReplicationLog;
  isr: InSyncSet;
  /** where snapshots are written before they are sent */
  snapshotDir: string;
  /** the leader's store folder (what a snapshot copies) */
  storePath: string;
  /** a follower silent this long (no acknowledgement or heartbeat) is disconnected */
  silenceLimitMs: number;
  logger: Logger;
}

export interface FollowerStatus {
  id: string;
  state: 'handshake' | 'snapshot' | 'streaming';
  ackedSeq: number;
  lagRecords: number;
  lagBytes: number;
  lagMs: number;
  address: string;
}

export class ReplicationServer {
  private readonly server: Server;
  private readonly sessions = new Set<FollowerSession>();
  private snapshotSeq = 0;
  /** snapshots sent (metrics) */
  snapshotsSent = 0;

  constructor(readonly options: ReplicationServerOptions) {
    this.server = createServer({ noDelay: true }, (socket) => {
      const session = new FollowerSession(this, socket);
      this.sessions.add(session);
      socket.once('close', () => this.sessions.delete(session));
    });
  }

  /** New records are committed: every streaming follower gets them. */
  pumpAll(): void {
    for (const s of this.sessions) s.pump();
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new Error(`cluster port ${port} on ${host} is already in use: stop the other process or choose another --cluster-port`) : err),
      );
      this.server.listen({ host, port }, () => {
        this.server.on('error', (err) => this.options.logger.error({ err }, 'replication listener error'));
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
      });
    });
  }

  /** Lowest record some streaming (or snapshotting) follower still needs from the log. */
  neededFrom(): number {
    let min = Number.MAX_SAFE_INTEGER;
    for (const s of this.sessions) {
      const need = s.neededFrom();
      if (need !== null) min = Math.min(min, need);
    }
    return min;
  }

  status(): FollowerStatus[] {
    const now = Date.now();
    return [...this.sessions].filter((s) => s.nodeId !== '').map((s) => s.status(now));
  }

  /** A fresh copy of the store, for one follower. */
  async makeSnapshot(): Promise<{ dir: string; file: string; position: LogPosition }> {
    const dir = join(this.options.snapshotDir, `snapshot-${process.pid}-${++this.snapshotSeq}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const position = this.options.log.head;
    await copyStore(this.options.storePath, dir);
    this.snapshotsSent++;
    return { dir, file: join(dir, 'data.mdb'), position };
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

class FollowerSession {
  nodeId = '';
  private state: 'handshake' | 'snapshot' | 'streaming' = 'handshake';
  private readonly reader = new FrameReader();
  private readonly myNonce = nonce();
  private deflate: DeflateRaw | null = null;
  private progress: FollowerProgress | null = null;
  /** next record to send */
  private nextSeq = 0;
  /** while a snapshot is being made/sent: the oldest record the follower will need after it */
  private snapshotFrom: number | null = null;
  private pumping = false;
  private lastHeard = Date.now();
  private readonly timer: NodeJS.Timeout;
  private sentBytes = 0;
  /** bytes sent up to the last acknowledged batch */
  private ackedBytes = 0;
  /** (seq, cumulative bytes sent through it) of batches not yet acknowledged */
  private inflight: number[] = [];
  private readonly address: string;
  private closed = false;

  constructor(
    private readonly server: ReplicationServer,
    private readonly socket: Socket,
  ) {
    const o = server.options;
    this.address = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.onClose());
    socket.write(frame(F_HELLO, { version: WIRE_VERSION, leader: o.self, epoch: o.epoch, nonce: this.myNonce }));
    this.timer = setInterval(() => this.onTimer(), PING_MS);
    this.timer.unref();
  }

  private get opts(): ReplicationServerOptions {
    return this.server.options;
  }

  neededFrom(): number | null {
    if (this.snapshotFrom !== null) return this.snapshotFrom;
    if (this.state === 'streaming') return (this.progress?.ackedSeq ?? 0) + 1;
    return null;
  }

  status(now: number): FollowerStatus {
    const acked = this.progress?.ackedSeq ?? 0;
    const committed = this.opts.log.committedSeq;
    return {
      id: this.nodeId,
      state: this.state,
      ackedSeq: acked,
      lagRecords: Math.max(0, committed - acked),
      lagBytes: Math.max(0, this.sentBytes - this.ackedBytes),
      lagMs: this.progress === null ? 0 : this.opts.isr.lagMs(this.progress, now),
      address: this.address,
    };
  }

  private onData(chunk: Buffer): void {
    this.lastHeard = Date.now();
    this.reader.push(chunk);
    try {
      let f: Frame | null;
      while (!this.closed && (f = this.reader.next()) !== null) this.onFrame(f);
    } catch (err) {
      this.fail((err as Error).message);
    }
  }

  private onFrame(f: Frame): void {
    if (this.state === 'handshake') {
      if (f.type !== F_AUTH) throw new Error(`expected AUTH, got frame type ${f.type}`);
      const auth = json<{ node: string; nonce: string; mac: string; seq: number; epoch: number }>(f);
      const expected = mac(this.opts.secret, 'follower', this.myNonce, String(auth.nonce), String(auth.node));
      if (typeof auth.mac !== 'string' || !macEquals(auth.mac, expected)) {
        this.socket.end(frame(F_REFUSED, { reason: 'wrong cluster secret' }));
        this.opts.logger.warn({ peer: this.address }, 'replication connection refused: wrong secret');
        this.closed = true;
        return;
      }
      if (auth.node === this.opts.self) {
        this.socket.end(frame(F_REFUSED, { reason: 'a node cannot follow itself' }));
        this.closed = true;
        return;
      }
      this.nodeId = auth.node;
      const position: LogPosition = { seq: Number(auth.seq), epoch: Number(auth.epoch) };
      const streamable = this.opts.log.holds(position) && position.seq >= this.opts.log.firstSeq - 1;
      this.reader.maxFrame = MAX_FRAME;
      this.socket.write(frame(F_WELCOME, { mac: mac(this.opts.secret, 'leader', String(auth.nonce), this.myNonce, this.opts.self), snapshot: !streamable }));
      this.startDeflate();
      this.progress = this.opts.isr.followerConnected(auth.node, streamable ? position.seq : 0);
      this.opts.logger.info({ node: auth.node, peer: this.address, seq: position.seq, epoch: position.epoch, snapshot: !streamable }, 'follower connected');
      if (streamable) this.startStreaming(position.seq + 1);
      else void this.sendSnapshot();
      return;
    }
    if (f.type === F_INSTALLED) {
      // The follower installed the snapshot; its head is where streaming resumes.
      const seq = readAck(f);
      if (this.progress === null || this.state !== 'snapshot') throw new Error('snapshot installed without one being sent');
      this.snapshotFrom = null;
      this.progress.ackedSeq = seq;
      this.inflight = [];
      this.ackedBytes = this.sentBytes;
      this.startStreaming(seq + 1);
      return;
    }
    if (f.type === F_ACK) {
      const seq = readAck(f);
      if (this.progress === null || this.state !== 'streaming') return;
      this.opts.isr.followerAcked(this.progress, seq);
      const inflight = this.inflight;
      let cut = 0;
      while (cut < inflight.length && inflight[cut]! <= seq) {
        this.ackedBytes = inflight[cut + 1]!;
        cut += 2;
      }
      if (cut > 0) this.inflight = inflight.slice(cut);
      return;
    }
    throw new Error(`unexpected frame type ${f.type} from a follower`);
  }

  private startDeflate(): void {
    const deflate = createDeflateRaw({ level: 1 });
    deflate.on('error', (err) => this.fail(err.message));
    deflate.pipe(this.socket);
    deflate.on('drain', () => this.pump());
    this.deflate = deflate;
  }

  private startStreaming(from: number): void {
    this.state = 'streaming';
    if (this.progress !== null) this.progress.streaming = true;
    this.nextSeq = from;
    this.pump();
  }

  /** Sends committed records while the socket keeps up (one batch per drain). */
  pump(): void {
    if (this.state !== 'streaming' || this.pumping || this.closed) return;
    const deflate = this.deflate;
    if (deflate === null) return;
    this.pumping = true;
    try {
      let sent = false;
      while (!deflate.writableNeedDrain && this.nextSeq <= this.opts.log.committedSeq) {
        const records = this.opts.log.read(this.nextSeq, BATCH_BYTES);
        if (records === null) {
          this.opts.logger.warn({ node: this.nodeId, seq: this.nextSeq }, 'follower needs records no longer in the log: sending a snapshot');
          this.state = 'snapshot';
          void this.sendSnapshot();
          return;
        }
        if (records.length === 0) break;
        let bytes = 0;
        for (const part of recordsFrame(records)) {
          deflate.write(part);
          bytes += part.length;
        }
        this.sentBytes += bytes;
        const last = records[records.length - 1]!.seq;
        this.inflight.push(last, this.sentBytes);
        this.nextSeq = last + 1;
        sent = true;
      }
      if (sent) deflate.flush(zlibConstants.Z_SYNC_FLUSH);
    } finally {
      this.pumping = false;
    }
  }

  private async sendSnapshot(): Promise<void> {
    this.state = 'snapshot';
    if (this.progress !== null) this.progress.streaming = false;
    this.snapshotFrom = this.opts.log.committedSeq;
    let snap: { dir: string; file: string; position: LogPosition } | null = null;
    try {
      snap = await this.server.makeSnapshot();
      if (this.closed) return;
      this.snapshotFrom = Math.min(this.snapshotFrom, snap.position.seq);
      const deflate = this.deflate!;
      const stream = createReadStream(snap.file, { highWaterMark: SNAPSHOT_CHUNK });
      let size = 0;
      deflate.write(frame(F_SNAP_BEGIN, { seq: snap.position.seq, epoch: snap.position.epoch }));
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (this.closed) {
          stream.destroy();
          return;
        }
        deflate.write(frameHeader(F_SNAP_CHUNK, chunk.length));
        if (!deflate.write(chunk)) await new Promise<void>((resolve) => deflate.once('drain', () => resolve()));
        size += chunk.length;
      }
      deflate.write(frame(F_SNAP_END, { bytes: size }));
      deflate.flush(zlibConstants.Z_SYNC_FLUSH);
      this.opts.logger.info({ node: this.nodeId, bytes: size, seq: snap.position.seq }, 'snapshot sent');
    } catch (err) {
      this.fail(`snapshot failed: ${(err as Error).message}`);
    } finally {
      if (snap !== null) rmSync(snap.dir, { recursive: true, force: true });
    }
  }

  private onTimer(): void {
    if (this.closed) return;
    const silent = Date.now() - this.lastHeard;
    // A snapshot install can take a while; the follower acknowledges it when done.
    if (silent > this.opts.silenceLimitMs && this.state !== 'snapshot') {
      this.fail(`no word from the follower for ${silent} ms`);
      return;
    }
    if (this.deflate !== null && this.state === 'streaming' && !this.deflate.writableNeedDrain) {
      this.deflate.write(frame(F_PING));
      this.deflate.flush(zlibConstants.Z_SYNC_FLUSH);
    }
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.opts.logger.warn({ node: this.nodeId || undefined, peer: this.address, reason }, 'replication connection dropped');
    this.destroy();
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onClose(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.deflate?.destroy();
    if (this.progress !== null) this.opts.isr.followerDisconnected(this.progress);
  }
}
