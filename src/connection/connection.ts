// One client connection: the protocol header, the handshake (start/start-ok, tune/tune-ok, open),
// routing frames to channels, heartbeats, and closing in both directions. This is the one place
// where hard errors are caught: they become connection.close with the failing method's ids, after
// which only close-ok (or close) is read and everything else is dropped.

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Broker } from '../broker/broker.js';
import type { ConnectionState, GatedConnection, ReadGate } from '../broker/resources.js';
import type { Queue, QueueOwner } from '../broker/queue/queue.js';
import type { User } from '../broker/users.js';
import type { VHost } from '../broker/vhost.js';
import type { Logger } from '../log.js';
import {
  AmqpException,
  ChannelError,
  ChannelException,
  CommandInvalid,
  ConnectionAccessRefused,
  ConnectionException,
  ConnectionForced,
  FrameError,
  InternalError,
  NotAllowed,
  NotImplemented,
  UnexpectedFrame,
} from '../protocol/errors.js';
import { erlangBinary } from '../protocol/erlang-format.js';
import { readU32 } from '../protocol/bytes.js';
import type { FieldTable } from '../protocol/field-table.js';
import { FrameParser, type BodyPieceSink } from '../protocol/frame-parser.js';
import { BodyAllowance } from '../protocol/command-assembler.js';
import { HEARTBEAT_FRAME } from '../protocol/frame-writer.js';
import {
  BASIC_ACK,
  BASIC_PUBLISH,
  CHANNEL_OPEN,
  CLASS_CONNECTION,
  CONNECTION_CLOSE,
  CONNECTION_CLOSE_OK,
  CONNECTION_OPEN,
  CONNECTION_OPEN_OK,
  CONNECTION_START,
  CONNECTION_START_OK,
  CONNECTION_TUNE,
  CONNECTION_TUNE_OK,
  CONNECTION_UPDATE_SECRET,
  CONNECTION_UPDATE_SECRET_OK,
  CONNECTION_BLOCKED,
  CONNECTION_UNBLOCKED,
  FRAME_BODY,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  FRAME_MIN_SIZE,
  METHOD_NAMES,
  decodeMethodArgs,
  type Method,
} from '../protocol/generated/amqp.js';
import { Channel } from './channel.js';
import { LOCALES, MECHANISMS, parseCredentials, serverProperties, validateNegotiated } from './handshake.js';
import { Outbound } from './outbound.js';
import { certificateLoginName, offersExternal, tlsDetails, type TlsDetails } from '../tls/connection-info.js';

const PROTOCOL_HEADER = Buffer.from('AMQP\x00\x00\x09\x01', 'latin1');
/** The pre-standard way to ask for 0-9-1 (class 1, instance 1, 0-9); RabbitMQ accepts it too. */
const LEGACY_0_9_1_HEADER = Buffer.from('AMQP\x01\x01\x00\x09', 'latin1');
/** How long to wait for close-ok after sending connection.close. */
const CLOSE_OK_TIMEOUT_MS = 3000;
/** After a framing error the socket closes this long after the close frame, close-ok or not. */
const FATAL_CLOSE_DELAY_MS = 3000;
/** Longest wait for a client to close its socket after close-ok (RabbitMQ's closing timeout). */
const HANG_UP_TIMEOUT_S = 30;
/** A failed handshake closes the socket silently after this pause (slows password guessing). */
const HANDSHAKE_FAILURE_DELAY_MS = 3000;

const enum State {
  AwaitingHeader,
  AwaitingStartOk,
  AwaitingTuneOk,
  AwaitingOpen,
  Open,
  /** we sent connection.close and wait for close-ok */
  Closing,
  Closed,
}

let nextConnectionId = 1;

export interface ClientCapabilities {
  consumerCancelNotify: boolean;
  connectionBlocked: boolean;
  authenticationFailureClose: boolean;
}

export class Connection implements QueueOwner, GatedConnection {
  readonly id = nextConnectionId++;
  readonly outbound: Outbound;
  readonly log: Logger;
  readonly channels = new Map<number, Channel>();
  /** the channel channelById() answered last (undefined once it leaves the table) */
  private recentChannel: Channel | undefined = undefined;
  readonly connectedAt = Date.now();
  readonly peer: string;
  /** TLS protocol, cipher and client certificate; null for a plain TCP connection */
  readonly tls: TlsDetails | null;
  /** SASL mechanisms offered in connection.start (EXTERNAL only with a verified client certificate) */
  private readonly mechanisms: string;
  user: User | null = null;
  vhost: VHost | null = null;
  clientProperties: FieldTable = {};
  /** SASL mechanism the client signed in with (for the management API) */
  authMechanism = '';
  capabilities: ClientCapabilities = {
    consumerCancelNotify: false,
    connectionBlocked: false,
    authenticationFailureClose: false,
  };
  channelMax: number;
  frameMax: number;
  heartbeatSec = 0;
  private state = State.AwaitingHeader;
  private headerBytes: Buffer | null = null;
  private readonly parser: FrameParser;
  /** memory this connection's channels may set aside for bodies still arriving (see command-assembler.ts) */
  readonly bodyAllowance = new BodyAllowance();
  /** after a framing error the byte stream cannot be trusted: ignore the rest */
  private discardInput = false;
  private lastReadAt = Date.now();
  private handshakeTimer: NodeJS.Timeout | null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  /** counters for metrics */
  bytesRead = 0;
  /** whether this connection is read: alarms and flow control pause it (see broker/resources.ts) */
  readonly gate: ReadGate;
  private resumeScheduled = false;
  /** socket reads (RabbitMQ's recv_cnt) */
  readsCount = 0;
  /** why the connection ended, for the log line when it goes */
  private closeReason: string | null = null;

  constructor(
    readonly broker: Broker,
    readonly socket: Socket,
    private readonly onClosed: (connection: Connection) => void,
  ) {
    const config = broker.config;
    this.channelMax = config.channelMax === 0 ? 65535 : config.channelMax;
    this.frameMax = config.frameMax;
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.tls = socket instanceof TLSSocket ? tlsDetails(socket) : null;
    this.mechanisms = offersExternal(this.tls) ? `${MECHANISMS} EXTERNAL` : MECHANISMS;
    this.log = broker.log.child({ conn: this.id, peer: this.peer });
    this.outbound = new Outbound(socket, broker.dispatcher);
    this.parser = new FrameParser(config.frameMax, this.onFrame, this.onBodyPiece);
    this.gate = broker.resources.gate(this);
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.teardown('socket closed'));
    socket.on('drain', () => this.guard('socket drain', this.onDrain));
    this.log.info('connection accepted');
    this.handshakeTimer = setTimeout(() => {
      this.closeReason = 'handshake timed out';
      this.log.warn({ timeoutMs: config.handshakeTimeoutMs }, 'handshake timed out; closing connection');
      this.guard('handshake timeout', this.destroy);
    }, config.handshakeTimeoutMs);
  }

  /**
   * Runs a timer or socket callback of this connection. A bug in it must not take the process
   * down: it is logged with its stack and closes this connection (541 INTERNAL_ERROR) only.
   */
  private guard(what: string, f: () => void): void {
    try {
      f();
    } catch (err) {
      this.internalError(err, what);
    }
  }

  /** An unexpected error: log the stack, close this connection with 541; never throws. */
  private internalError(err: unknown, where: string, channel = 0): void {
    this.log.error({ err, in: where, channel }, 'internal error; closing connection');
    try {
      this.closeWithError(new InternalError('an internal error occurred; see the broker log'));
    } catch (closeErr) {
      this.log.error({ err: closeErr }, 'closing after an internal error failed; dropping the connection');
      try {
        this.socket.destroy();
      } catch {
        // the socket is beyond help; teardown runs from its 'close' event
      }
    }
  }

  /**
   * Epoch ms of the socket read being processed (or of the resume that lets held input through):
   * the arrival time of the messages in it. Publishing takes it instead of reading the clock once
   * per message (a clock read showed as 3 % of a topic publish's CPU).
   */
  get inputAt(): number {
    return this.lastReadAt;
  }

  get isOpen(): boolean {
    return this.state === State.Open;
  }

  /** The state RabbitMQ's management API reports: running, blocking (alarm, not yet publishing), blocked, closing. */
  get managementState(): ConnectionState | 'closing' {
    if (this.state === State.Closing || this.state === State.Closed) return 'closing';
    return this.gate.state;
  }

  get userName(): string {
    return this.user?.name ?? '';
  }

  // ---- Input --------------------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    this.lastReadAt = Date.now();
    this.bytesRead += chunk.length;
    this.readsCount++;
    if (this.state === State.Closed || this.discardInput) return;
    try {
      if (this.state === State.AwaitingHeader) {
        const rest = this.readProtocolHeader(chunk);
        if (rest === null || rest.length === 0) return;
        chunk = rest;
      }
      this.processInput(chunk);
    } catch (err) {
      this.internalError(err, 'reading');
    }
  };

  /** Input held back while reading was paused (alarm, flow control) is processed now. */
  private readonly continueInput = (): void => {
    this.resumeScheduled = false;
    if (this.state === State.Closed || !this.gate.reading) return;
    if (!this.discardInput) {
      try {
        this.processInput(null);
      } catch (err) {
        this.internalError(err, 'reading');
      }
    }
    // The socket flows again only once the held input is parsed and did not pause reading anew:
    // chunks it emitted while the parser still held input were each joined onto the held bytes (a
    // copy of all of them per chunk — a quarter of the broker's CPU under flow control).
    if (!this.parser.isPaused && !this.tornDown) this.socket.resume();
  };

  /** Parses a chunk (or, with null, what the parser held while paused), then runs the dispatcher. */
  private processInput(chunk: Buffer | null): void {
    // Queues this input's publishes fall behind on hold this connection (flow control).
    const resources = this.broker.resources;
    resources.reader = this.gate;
    const dispatcher = this.broker.dispatcher;
    dispatcher.beginInput();
    try {
      if (chunk === null) this.parser.resume();
      else this.parser.push(chunk);
    } catch (err) {
      // Only framing errors come out of the parser itself: the byte stream cannot be trusted any
      // more. As RabbitMQ: say why, stop reading, close the socket shortly after.
      this.discardInput = true;
      if (err instanceof AmqpException) this.sendClose(err.replyCode, err.replyText, 0, 0, FATAL_CLOSE_DELAY_MS);
      else this.handleError(err, 0);
    } finally {
      resources.reader = null;
      // TLS hands on one 'data' event per TLS record, and clients that flush every frame
      // (amqp091-go and others) send a record per frame: running the dispatcher (and writing)
      // after each would mean three runs and writes per message. The rest of the records that
      // arrived with this one are handed on in this same I/O turn, so the run waits for
      // setImmediate. A TCP read holds everything that arrived: run at once.
      dispatcher.endInput(this.tls !== null);
    }
  }

  /** Consumes the 8-byte protocol header; returns the bytes after it, or null while incomplete/bad. */
  private readProtocolHeader(chunk: Buffer): Buffer | null {
    const have = this.headerBytes ? Buffer.concat([this.headerBytes, chunk]) : chunk;
    if (have.length < 8) {
      this.headerBytes = have;
      return null;
    }
    this.headerBytes = null;
    const header = have.subarray(0, 8);
    if (!header.equals(PROTOCOL_HEADER) && !header.equals(LEGACY_0_9_1_HEADER)) return this.refuseProtocol(header);
    this.state = State.AwaitingStartOk;
    this.outbound.writeMethod(0, {
      id: CONNECTION_START,
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: serverProperties(this.broker.config),
      mechanisms: Buffer.from(this.mechanisms),
      locales: Buffer.from(LOCALES),
    });
    this.outbound.flush();
    return have.subarray(8);
  }

  /** Anything but AMQP 0-9-1: answer with the header we speak and close, as the spec says. */
  private refuseProtocol(header: Buffer): null {
    this.log.info({ header: header.toString('hex') }, 'unsupported protocol header; closing');
    this.state = State.Closed;
    this.socket.end(PROTOCOL_HEADER);
    return null;
  }

  /** Called by the parser for every complete frame. Never throws. */
  private readonly onFrame = (type: number, channelId: number, buf: Buffer, start: number, end: number): void => {
    try {
      if (this.state === State.Closing) return this.onFrameWhileClosing(type, channelId, buf, start, end);
      if (this.state === State.Closed) return;
      switch (type) {
        case FRAME_METHOD:
          return this.onMethodFrame(channelId, buf, start, end);
        case FRAME_HEADER:
        case FRAME_BODY: {
          const channel = this.channelForContent(type, channelId, buf, start, end);
          if (type === FRAME_HEADER) channel.onHeaderFrame(buf, start, end);
          else channel.onBodyFrame(buf, start, end);
          return;
        }
        case FRAME_HEARTBEAT:
          if (channelId !== 0) throw new UnexpectedFrame(`type 8, all octets = ${erlangBinary(buf, start, end)}`);
          if (end > start) throw new FrameError(`type 8, all octets = ${erlangBinary(buf, start, end)}: unknown_frame`);
          return;
        default:
          throw new FrameError(`type ${type}, all octets = ${erlangBinary(buf, start, end)}: unknown_frame`);
      }
    } catch (err) {
      this.handleError(err, channelId);
    }
  };

  /**
   * Called by the parser for each piece of a body frame split across socket reads (large messages):
   * the channel copies it straight into the message body. Errors as for a whole body frame, raised
   * on the frame's first piece. Never throws.
   */
  private readonly onBodyPiece: BodyPieceSink = (channelId, buf, start, end, payloadSize, first, last) => {
    try {
      if (this.state === State.Closing || this.state === State.Closed) return;
      const channel = first ? this.channelForContent(FRAME_BODY, channelId, buf, start, end) : this.channelById(channelId);
      channel?.onBodyPiece(buf, start, end, payloadSize, first, last);
    } catch (err) {
      this.handleError(err, channelId);
    }
  };

  private decode(buf: Buffer, start: number, end: number): Method {
    if (end - start < 4) throw new FrameError(`cannot decode ${erlangBinary(buf, start, end)}`);
    const key = readU32(buf, start);
    let method: Method | undefined;
    try {
      method = decodeMethodArgs(key, buf, start + 4, end);
    } catch (err) {
      if (err instanceof FrameError) throw new FrameError(`cannot decode ${erlangBinary(buf, start + 4, end)}`).at(key);
      throw err;
    }
    if (method === undefined) {
      throw new NotImplemented(`unknown method: class ${key >>> 16}, method ${key & 0xffff}`).at(key);
    }
    return method;
  }

  private onMethodFrame(channelId: number, buf: Buffer, start: number, end: number): void {
    if (this.state !== State.Open && channelId !== 0) {
      throw new UnexpectedFrame(`type 1, all octets = ${erlangBinary(buf, start, end)}`);
    }
    if (channelId !== 0 && end - start >= 4) {
      const key = readU32(buf, start);
      if (key === BASIC_PUBLISH && this.publishFast(channelId, buf, start, end)) return;
      if (key === BASIC_ACK && this.channelById(channelId)?.ackFast(buf, start + 4, end) === true) return;
    }
    const method = this.decode(buf, start, end);
    if (channelId === 0) return this.onConnectionMethod(method);
    if (method.id >>> 16 === CLASS_CONNECTION) throw new CommandInvalid('unimplemented method').at(method.id);
    const existing = this.channelById(channelId);
    if (existing !== undefined) {
      if (method.id === CHANNEL_OPEN && !existing.closing) {
        throw new ChannelError(`second 'channel.open' seen`).at(method.id);
      }
      existing.onMethod(method);
      if (method.id === BASIC_PUBLISH) this.gate.onPublishMethod();
      return;
    }
    if (method.id !== CHANNEL_OPEN) throw new ChannelError(`expected 'channel.open'`).at(method.id);
    // The spec: usable channel numbers are 1..channel_max (RabbitMQ 3.10 accepts any number and
    // only counts open channels; numbers within the limit bound the count as well).
    if (channelId > this.channelMax) {
      throw new ChannelError(`channel ${channelId} is above the negotiated channel_max (${this.channelMax})`).at(method.id);
    }
    const channel = new Channel(this, channelId);
    this.channels.set(channelId, channel);
    channel.opened();
  }

  /**
   * basic.publish on an open channel, decoded by the channel's PublishDecoder (which reuses the
   * exchange and routing key of the previous publish when the bytes are the same). Returns false
   * when the general path must take the frame: no such channel (its errors are raised there), or
   * arguments the fast decoder does not accept (the general decoder reports them).
   */
  private publishFast(channelId: number, buf: Buffer, start: number, end: number): boolean {
    const channel = this.channelById(channelId);
    if (channel === undefined || channel.closing) return false;
    if (!channel.onPublishFrame(buf, start + 4, end)) return false;
    this.gate.onPublishMethod();
    return true;
  }

  /**
   * channels.get(id), remembering the answer: the three frames of a message, and most of a
   * connection's traffic, are for one channel, and a Map lookup per frame showed in publish
   * profiles. The remembered channel is forgotten whenever a channel leaves the table, so it is
   * always the one the table holds for its id.
   */
  private channelById(id: number): Channel | undefined {
    const recent = this.recentChannel;
    if (recent !== undefined && recent.id === id) return recent;
    const channel = this.channels.get(id);
    if (channel !== undefined) this.recentChannel = channel;
    return channel;
  }

  private channelForContent(type: number, channelId: number, buf: Buffer, start: number, end: number): Channel {
    if (channelId === 0) throw new UnexpectedFrame(`type ${type}, all octets = ${erlangBinary(buf, start, end)}`);
    const channel = this.state === State.Open ? this.channelById(channelId) : undefined;
    if (channel === undefined) throw new UnexpectedFrame('expected method frame, got non method frame instead');
    return channel;
  }

  private onFrameWhileClosing(type: number, channelId: number, buf: Buffer, start: number, end: number): void {
    if (type !== FRAME_METHOD || channelId !== 0 || end - start < 4) return;
    const key = buf.readUInt32BE(start);
    if (key === CONNECTION_CLOSE_OK) return this.destroy();
    if (key === CONNECTION_CLOSE) {
      this.outbound.writeMethod(0, { id: CONNECTION_CLOSE_OK });
      this.outbound.flush();
    }
  }

  // ---- Connection methods -------------------------------------------------------------------------

  private onConnectionMethod(method: Method): void {
    if (this.state !== State.Open) return this.onHandshakeMethod(method);
    switch (method.id) {
      case CONNECTION_CLOSE:
        this.closeReason = `client closed the connection: ${method.replyCode} ${method.replyText}`;
        this.outbound.writeMethod(0, { id: CONNECTION_CLOSE_OK });
        this.outbound.flush();
        this.state = State.Closed;
        this.teardown('client closed');
        this.awaitClientHangUp();
        return;
      case CONNECTION_UPDATE_SECRET:
        // Credentials are checked once at connect; accept the new secret for compatibility.
        this.outbound.writeMethod(0, { id: CONNECTION_UPDATE_SECRET_OK });
        return;
      default:
        throw new ChannelError('unexpected method in connection state running').at(method.id);
    }
  }

  /**
   * After close-ok to the client's connection.close the socket is the client's to close, as on
   * RabbitMQ: it reads close-ok before any end of stream (amqp091-go reports an end of stream
   * that comes first as error 501 from Close()). Everything the connection held is already freed;
   * a client that keeps the socket open is cut off after its heartbeat interval (at most 30 s).
   */
  private awaitClientHangUp(): void {
    const seconds = this.heartbeatSec > 0 && this.heartbeatSec < HANG_UP_TIMEOUT_S ? this.heartbeatSec : HANG_UP_TIMEOUT_S;
    const timer = setTimeout(() => this.socket.destroy(), seconds * 1000);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  /** start-ok, tune-ok, open in that order; anything else ends the handshake. */
  private onHandshakeMethod(method: Method): void {
    if (method.id === CONNECTION_START_OK && this.state === State.AwaitingStartOk) {
      return this.onStartOk(method.clientProperties, method.mechanism, method.response);
    }
    if (method.id === CONNECTION_TUNE_OK && this.state === State.AwaitingTuneOk) {
      return this.onTuneOk(method.channelMax, method.frameMax, method.heartbeat);
    }
    if (method.id === CONNECTION_OPEN && this.state === State.AwaitingOpen) return this.onOpen(method.virtualHost);
    if (method.id === CONNECTION_CLOSE) {
      this.outbound.writeMethod(0, { id: CONNECTION_CLOSE_OK });
      this.outbound.flush();
      return this.destroy();
    }
    this.failHandshake(`unexpected ${METHOD_NAMES.get(method.id) ?? 'method'} during the handshake`);
  }

  /**
   * A handshake that cannot go on: as RabbitMQ, no close frame (the client has not finished
   * negotiating); the socket closes after a pause that slows down password guessing.
   */
  private failHandshake(reason: string, fields: Record<string, unknown> = {}): void {
    this.closeReason = `handshake failed: ${reason}`;
    this.log.warn({ ...fields, reason }, 'handshake failed; closing connection');
    this.state = State.Closed;
    this.discardInput = true;
    this.closeTimer = setTimeout(() => this.guard('handshake failure', this.destroy), HANDSHAKE_FAILURE_DELAY_MS);
    this.closeTimer.unref();
  }

  private onStartOk(clientProperties: FieldTable, mechanism: string, response: Buffer): void {
    this.clientProperties = clientProperties;
    const caps = clientProperties['capabilities'];
    if (caps !== null && typeof caps === 'object' && !Array.isArray(caps) && !Buffer.isBuffer(caps)) {
      const table = caps as FieldTable;
      this.capabilities = {
        consumerCancelNotify: table['consumer_cancel_notify'] === true,
        connectionBlocked: table['connection.blocked'] === true,
        authenticationFailureClose: table['authentication_failure_close'] === true,
      };
    }
    if (!this.mechanisms.split(' ').includes(mechanism)) {
      return this.failHandshake(`unknown authentication mechanism '${mechanism}'`);
    }
    this.authMechanism = mechanism;
    let username: string;
    let user: User | undefined;
    if (mechanism === 'EXTERNAL') {
      // The verified client certificate names the user (as rabbitmq_auth_mechanism_ssl); no password.
      const fromCertificate = certificateLoginName(this.tls, this.broker.config.tlsCertLoginFrom);
      if (fromCertificate === null) return this.failHandshake('EXTERNAL login refused: no name found in the client certificate');
      username = fromCertificate;
      user = this.broker.users.get(username);
    } else {
      const credentials = parseCredentials(mechanism, response);
      if (credentials === undefined) return this.failHandshake(`malformed ${mechanism} response`);
      username = credentials.username;
      user = this.broker.users.authenticate(username, credentials.password);
    }
    if (!user || !this.mayConnectFrom(user.name)) {
      const reason = user ? 'user may only connect via localhost' : 'invalid credentials';
      if (!this.capabilities.authenticationFailureClose) {
        return this.failHandshake(`${mechanism} login refused: user '${username}' - ${reason}`);
      }
      this.log.warn({ user: username, mechanism, reason }, 'login refused');
      const err = new ConnectionAccessRefused(
        `Login was refused using authentication mechanism ${mechanism}. For details see the broker logfile.`,
      );
      this.sendClose(err.replyCode, err.replyText, 0, 0, CLOSE_OK_TIMEOUT_MS);
      return;
    }
    this.user = user;
    this.state = State.AwaitingTuneOk;
    const config = this.broker.config;
    this.outbound.writeMethod(0, {
      id: CONNECTION_TUNE,
      channelMax: config.channelMax,
      frameMax: config.frameMax,
      heartbeat: config.heartbeatSec,
    });
  }

  /** Loopback-only users (guest by default) may not connect from elsewhere, as on RabbitMQ. */
  private mayConnectFrom(userName: string): boolean {
    if (!this.broker.config.loopbackUsers.includes(userName)) return true;
    const addr = this.socket.remoteAddress ?? '';
    return addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1' || addr.startsWith('127.');
  }

  private onTuneOk(channelMax: number, frameMax: number, heartbeat: number): void {
    const config = this.broker.config;
    try {
      validateNegotiated('frame_max', FRAME_MIN_SIZE, config.frameMax, frameMax);
      validateNegotiated('channel_max', 1, config.channelMax, channelMax);
    } catch (err) {
      return this.failHandshake(err instanceof Error ? err.message : String(err));
    }
    this.frameMax = frameMax === 0 ? config.frameMax : frameMax;
    this.channelMax = channelMax === 0 ? 65535 : channelMax;
    this.parser.maxPayloadSize = this.frameMax;
    this.heartbeatSec = heartbeat;
    this.state = State.AwaitingOpen;
    this.startHeartbeats();
  }

  private onOpen(vhostName: string): void {
    let vhost: VHost;
    try {
      vhost = this.broker.openVhost(this.userName, vhostName);
    } catch (err) {
      if (err instanceof NotAllowed) err.at(CONNECTION_OPEN);
      throw err;
    }
    this.vhost = vhost;
    vhost.connections.add(this);
    this.state = State.Open;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.outbound.writeMethod(0, { id: CONNECTION_OPEN_OK, reserved1: '' });
    this.broker.stats.connectionsOpened++;
    this.log.info({ user: this.userName, vhost: vhostName, client: clientSummary(this.clientProperties) }, 'connection opened');
  }

  // ---- Heartbeats ---------------------------------------------------------------------------------

  private startHeartbeats(): void {
    if (this.heartbeatSec === 0) return;
    const intervalMs = this.heartbeatSec * 1000;
    this.heartbeatTimer = setInterval(() => this.guard('heartbeat', () => this.heartbeat(intervalMs)), intervalMs / 2);
    this.heartbeatTimer.unref();
  }

  /** Every half interval: drop a silent peer, or send a heartbeat if we have been quiet. */
  private heartbeat(intervalMs: number): void {
    const now = Date.now();
    // Not reading (alarm, flow control) is not the peer's silence: RabbitMQ pauses this check too.
    if (this.gate.reading && now - this.lastReadAt > 2 * intervalMs) {
      this.closeReason = 'missed heartbeats from client';
      this.log.warn({ heartbeatSec: this.heartbeatSec }, 'missed heartbeats from client; closing connection');
      this.destroy();
      return;
    }
    if (now - this.outbound.lastWriteAt >= intervalMs / 2) {
      this.outbound.writeRaw(HEARTBEAT_FRAME);
      this.outbound.flush();
    }
  }

  // ---- Errors and closing -------------------------------------------------------------------------

  /** The one catch for this connection: soft errors close a channel, the rest close the connection. */
  private handleError(err: unknown, channelId: number): void {
    if (err instanceof ChannelException && channelId !== 0) {
      const channel = this.channels.get(channelId);
      if (channel !== undefined) {
        channel.closeWithError(err);
        return;
      }
    }
    if (err instanceof ConnectionException || err instanceof ChannelException) {
      this.closeWithError(err);
      return;
    }
    this.internalError(err, 'frame', channelId);
  }

  /** Sends connection.close for an error and waits (briefly) for close-ok. */
  closeWithError(err: AmqpException): void {
    if (this.state === State.Closing || this.state === State.Closed) return;
    this.log.warn({ replyCode: err.replyCode, replyText: err.replyText }, 'closing connection on error');
    this.sendClose(err.replyCode, err.replyText, err.classId, err.methodId);
  }

  /** Server-initiated close (shutdown, management). */
  close(replyCode: number, replyText: string): void {
    if (this.state === State.Closing || this.state === State.Closed) return;
    if (this.state !== State.Open) {
      this.destroy();
      return;
    }
    this.sendClose(replyCode, replyText, 0, 0);
  }

  /** Shutdown: tell the client why and close. */
  forceClose(reason: string): void {
    const err = new ConnectionForced(reason);
    this.close(err.replyCode, err.replyText);
  }

  /** Sends connection.close and closes the socket on close-ok, or after closeAfterMs at the latest. */
  private sendClose(replyCode: number, replyText: string, classId: number, methodId: number, closeAfterMs = CLOSE_OK_TIMEOUT_MS): void {
    if (this.state === State.Closing || this.state === State.Closed) return;
    this.closeReason ??= `closed by the broker: ${replyCode} ${replyText}`;
    this.outbound.writeMethod(0, { id: CONNECTION_CLOSE, replyCode, replyText, classId, methodId });
    this.outbound.flush();
    this.state = State.Closing;
    this.releaseChannels();
    this.closeTimer = setTimeout(() => this.guard('close timeout', this.destroy), closeAfterMs);
    this.closeTimer.unref();
  }

  // ---- Resource control (GatedConnection: called by this connection's ReadGate) -------------------

  get wantsBlockedNotices(): boolean {
    return this.capabilities.connectionBlocked && this.state === State.Open;
  }

  sendBlocked(reason: string): void {
    this.log.info({ reason }, 'connection blocked: publishing paused by a resource alarm');
    this.outbound.writeMethod(0, { id: CONNECTION_BLOCKED, reason });
    this.outbound.flush();
  }

  sendUnblocked(): void {
    this.log.info('connection unblocked');
    if (this.state !== State.Open) return;
    this.outbound.writeMethod(0, { id: CONNECTION_UNBLOCKED });
    this.outbound.flush();
  }

  checkConsumerTimeouts(nowMs: number): void {
    if (this.state !== State.Open) return;
    for (const channel of this.channels.values()) channel.checkConsumerTimeout(nowMs);
    this.broker.dispatcher.run(); // the channel.close frames go out now
  }

  /** Stops at the frame being processed: the rest of the input waits in the parser. */
  pauseReading(): void {
    this.parser.pause();
    this.socket.pause();
  }

  /** Reads again: the held input is processed on the next turn (not inside the caller's stack), then the socket flows. */
  resumeReading(): void {
    this.lastReadAt = Date.now();
    if (this.tornDown) return;
    if (!this.resumeScheduled) {
      this.resumeScheduled = true;
      setImmediate(this.continueInput);
    }
  }

  private readonly onDrain = (): void => {
    for (const channel of this.channels.values()) channel.onConnectionDrained();
  };

  /** Closes the socket now. */
  readonly destroy = (): void => {
    this.state = State.Closed;
    this.socket.destroy();
    this.teardown('destroyed');
  };

  private readonly releaseChannels = (): void => {
    // Each channel on its own: one that fails to give back its messages does not strand the others'.
    for (const channel of this.channels.values()) {
      try {
        channel.release();
      } catch (err) {
        this.log.error({ err, channel: channel.id }, 'releasing a channel failed');
      }
    }
    this.channels.clear();
    this.recentChannel = undefined;
  };

  private tornDown = false;

  /**
   * Frees everything this connection holds; runs once, whichever way the connection ended. Runs
   * from the socket's 'close' event, where nothing may throw: each step is guarded on its own, so
   * a bug in one (requeueing, dead-lettering, dispatching) is logged and the others still run.
   */
  private teardown(reason: string): void {
    if (this.tornDown) return;
    this.tornDown = true;
    this.state = State.Closed;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.teardownStep('releasing channels', this.releaseChannels);
    this.teardownStep('releasing the read gate', () => this.broker.resources.release(this.gate));
    this.teardownStep('deleting exclusive queues', this.removeExclusiveQueues);
    this.teardownStep('counting', () => this.countClosed());
    this.log.info(
      { reason: this.closeReason ?? reason, user: this.userName, vhost: this.vhost?.name, client: clientSummary(this.clientProperties), durationMs: Date.now() - this.connectedAt },
      'connection closed',
    );
    this.teardownStep('unregistering', () => this.onClosed(this));
    this.teardownStep('dispatching', () => this.broker.dispatcher.run());
  }

  private teardownStep(what: string, f: () => void): void {
    try {
      f();
    } catch (err) {
      this.log.error({ err, in: what }, 'internal error while closing a connection; carrying on');
    }
  }

  /** Exclusive queues declared on this connection (deleted ones are swept out as it grows). */
  private readonly exclusiveQueues = new Set<Queue>();

  /** A channel declared (or redeclared) an exclusive queue of this connection. */
  ownsExclusiveQueue(queue: Queue): void {
    if (this.exclusiveQueues.has(queue)) return;
    // Keeps the set bounded by live queues: sweep deleted ones whenever the size doubles.
    const size = this.exclusiveQueues.size;
    if (size >= 64 && (size & (size - 1)) === 0) {
      for (const q of this.exclusiveQueues) if (q.deleted) this.exclusiveQueues.delete(q);
    }
    this.exclusiveQueues.add(queue);
  }

  /** On close: this connection's exclusive queues go, without looking at any other queue. */
  private readonly removeExclusiveQueues = (): void => {
    const vhost = this.vhost;
    if (vhost === null) return;
    vhost.connections.delete(this);
    for (const queue of this.exclusiveQueues) {
      try {
        if (!queue.deleted) vhost.removeQueue(queue);
      } catch (err) {
        this.log.error({ err, queue: queue.name }, 'deleting an exclusive queue failed');
      }
    }
    this.exclusiveQueues.clear();
  };

  /** The connection's byte and read/write counts live on in the broker's totals once it is gone. */
  private countClosed(): void {
    const stats = this.broker.stats;
    if (this.user !== null && this.vhost !== null) stats.connectionsClosed++;
    stats.closedConnectionBytesIn += this.bytesRead;
    stats.closedConnectionBytesOut += this.outbound.bytesWritten;
    stats.closedConnectionReads += this.readsCount;
    stats.closedConnectionWrites += this.outbound.writesCount;
    if (this.vhost !== null) {
      this.vhost.retired.recvOct += this.bytesRead;
      this.vhost.retired.sendOct += this.outbound.bytesWritten;
    }
  }

  /** A channel finished closing and its number may be reused. */
  channelClosed(channel: Channel): void {
    if (this.channels.get(channel.id) === channel) this.channels.delete(channel.id);
    if (this.recentChannel === channel) this.recentChannel = undefined;
  }
}

/** The client properties worth a log line: who the client is, not the whole table. */
function clientSummary(props: FieldTable): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ['connection_name', 'product', 'version', 'platform']) {
    const v = props[key];
    if (typeof v === 'string') out[key] = v.length > 200 ? v.slice(0, 200) : v;
    else if (Buffer.isBuffer(v)) out[key] = v.toString('utf8', 0, Math.min(v.length, 200));
  }
  return out;
}
