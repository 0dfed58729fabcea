// One node of a replicated Warren cluster (bin/warren --cluster). etcd decides who leads; this
// module follows what etcd says:
//
//   follower  keeps a copy of the leader's store (FollowerStore + ReplicationClient), forwards its
//             client ports to the leader (LeaderProxy), and — only while it is in the in-sync set
//             (or the cluster is new) — campaigns for leadership.
//   leader    won the election and found itself in the in-sync set: resets the set to itself,
//             starts the ordinary broker on its copy of the store (recovery as after a crash) with
//             the store's writes logged and replicated, and serves followers (ReplicationServer).
//
// A leader whose lease is lost, whose election key is gone, whose fenced write is refused, or whose
// disk stops committing steps down at once: the confirm gate closes, clients are disconnected, and
// the node starts over as a follower (with a new lease if the old one is gone). A graceful stop
// of the leader waits (bounded) for its in-sync followers to have everything, then resigns so that
// a follower takes over without waiting for the lease to expire.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { BrokerConfig } from '../config.js';
import { startBroker, type RunningBroker } from '../index.js';
import type { Logger } from '../log.js';
import { clusterFamilies } from './cluster-metrics.js';
import { addClusterRoutes } from './cluster-routes.js';
import { Coordinator, type ClusterView, type LeaderInfo, type NodeInfo } from './coordinator.js';
import { EtcdClient, EtcdError, type LeaderKey } from './etcd-client.js';
import { FollowerStore } from './follower-store.js';
import { InSyncSet } from './in-sync-set.js';
import { LeaderProxy } from './proxy.js';
import { acceptProxyProtocol } from './proxy-protocol.js';
import { ReplicationClient } from './replication-client.js';
import { ReplicationLog } from './replication-log.js';
import { ReplicationServer, type FollowerStatus } from './replication-server.js';
import { EtcdSession } from './session.js';

export type NodeRole = 'starting' | 'follower' | 'leader' | 'stopping' | 'stopped';

const TICK_MS = 200;
/** How often old replication log records are dropped. */
const TRIM_MS = 2000;
const VIEW_REFRESH_MS = 2000;
/** How long a graceful leader stop waits for in-sync followers to have every record. */
const HANDOVER_WAIT_MS = 10_000;

export interface ClusterStatus {
  node: string;
  role: NodeRole;
  leader: LeaderInfo | null;
  isr: string[];
  nodes: NodeInfo[];
  epoch: number;
  /** leader: its followers' replication state */
  followers: FollowerStatus[];
  /** follower: its link to the leader and position */
  link: { state: string; seq: number; epoch: number; snapshotsInstalled: number } | null;
  /** leader changes this node has seen */
  failovers: number;
  /** records committed on this node (leader) or applied (follower) */
  seq: number;
  logBytes: number;
  /** the oldest log record held (older positions need a snapshot) */
  logFirstSeq: number;
  leaseValidMs: number;
  snapshotsSent: number;
}

function readNodeId(dataDir: string): string {
  const file = join(dataDir, 'cluster-node-id');
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (id !== '') return id;
  }
  // A new id with every new data folder: a node whose data is gone is a new node, never a member
  // of the in-sync set it once belonged to.
  mkdirSync(dataDir, { recursive: true });
  const id = randomBytes(6).toString('hex');
  writeFileSync(file, `${id}\n`);
  return id;
}

/** host[:port] → parts (IPv6 in brackets). */
function parseAdvertise(value: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(value) ?? /^([^:]+)(?::(\d+))?$/.exec(value);
  if (m === null) return { host: value, port: defaultPort };
  return { host: m[1]!, port: m[2] === undefined ? defaultPort : Number(m[2]) };
}

export class ClusterNode {
  role: NodeRole = 'starting';
  readonly id: string;
  private readonly log: Logger;
  private readonly etcd: EtcdClient;
  private readonly coordinator: Coordinator;
  private session: EtcdSession | null = null;
  private secret = '';
  private view: ClusterView = { leader: null, isr: null, nodes: [], leaving: [], revision: 0 };
  /**
   * Addresses of every other node seen registered since this process started. The leader trusts
   * PROXY headers from these: a follower whose registration lapsed (its lease ran out while it was
   * cut off) still forwards clients, and until it has registered again (and this node has seen it)
   * their connections must not be taken for garbage AMQP. Grows only with the cluster's addresses.
   */
  private readonly peerHosts = new Set<string>();
  private viewWaiters: (() => void)[] = [];
  private readonly info: NodeInfo;
  private readonly localAddress: string | undefined;
  private stopping = false;
  private failovers = 0;
  private lastLeaderEpoch = 0;
  private readonly stopWatch = new AbortController();
  private campaign: AbortController | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private transition: Promise<void> = Promise.resolve();

  // follower parts
  private store: FollowerStore | null = null;
  private client: ReplicationClient | null = null;
  private proxy: LeaderProxy | null = null;
  private followerTrimTimer: NodeJS.Timeout | null = null;

  // leader parts
  private running: RunningBroker | null = null;
  private rlog: ReplicationLog | null = null;
  private isr: InSyncSet | null = null;
  private server: ReplicationServer | null = null;
  private leaderKey: LeaderKey | null = null;
  private epoch = 0;
  private tickTimer: NodeJS.Timeout | null = null;
  private trimTimer: NodeJS.Timeout | null = null;
  /** snapshots sent while leading earlier (metrics survive a step-down) */
  private snapshotsSentBefore = 0;

  /** told when the node cannot go on (bin/warren exits) */
  onFatal: (error: Error) => void = () => {};
  /** told when the node has left the cluster on request (bin/warren exits) */
  onLeft: () => void = () => {};

  constructor(
    readonly config: BrokerConfig,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'cluster' });
    this.id = readNodeId(config.dataDir);
    const advertise = parseAdvertise(config.clusterAdvertise ?? config.bind, config.clusterPort);
    if (advertise.host === '0.0.0.0' || advertise.host === '::') {
      throw new Error('--cluster-advertise is needed when --bind is a wildcard address: give the address other nodes reach this node at');
    }
    this.info = {
      id: this.id,
      host: advertise.host,
      clusterPort: advertise.port,
      amqpPort: config.port ?? 0,
      amqpTlsPort: config.tlsCert !== null ? (config.tlsPort ?? 0) : 0,
      managementPort: config.managementPort,
      metricsPort: config.prometheusPort,
    };
    this.localAddress = isIP(config.bind) !== 0 && config.bind !== '0.0.0.0' && config.bind !== '::' ? config.bind : undefined;
    this.etcd = new EtcdClient(config.etcdEndpoints, { timeoutMs: Math.max(1000, (config.clusterLeaseTtlSec * 1000) / 3) });
    this.coordinator = new Coordinator(this.etcd, config.clusterPrefix, this.log);
  }

  get nodeInfo(): NodeInfo {
    return { ...this.info };
  }

  /** The broker while this node leads (null otherwise). */
  get broker(): RunningBroker | null {
    return this.running;
  }

  // ---- Start and stop -----------------------------------------------------------------------------

  async start(): Promise<void> {
    this.log.info({ node: this.id, advertise: `${this.info.host}:${this.info.clusterPort}`, etcd: this.etcd.endpointList }, 'starting cluster node');
    this.secret = await this.untilEtcd('read the cluster secret', () => this.coordinator.secret());
    await this.openSession();
    this.view = await this.untilEtcd('read the cluster state', () => this.coordinator.view());
    this.notePeers(this.view);
    await this.becomeFollower();
    void this.watchLoop();
    this.refreshTimer = setInterval(() => void this.refreshView(), VIEW_REFRESH_MS);
    this.refreshTimer.unref();
    void this.electionLoop();
  }

  /** Retries an etcd call until it works (start-up only): etcd may come up after Warren. */
  private async untilEtcd<T>(what: string, call: () => Promise<T>): Promise<T> {
    let warned = false;
    for (;;) {
      try {
        return await call();
      } catch (err) {
        if (this.stopping) throw err;
        if (!warned) this.log.warn({ err: (err as Error).message, etcd: this.etcd.endpointList }, `cannot ${what} from etcd yet; retrying (check --etcd-endpoints)`);
        warned = true;
        await sleep(1000);
      }
    }
  }

  private async openSession(): Promise<void> {
    const session = await this.untilEtcd('get a lease', () => EtcdSession.open(this.etcd, { ttlSec: this.config.clusterLeaseTtlSec, log: this.log }));
    this.session = session;
    session.onLost((reason) => this.onLeaseLost(session, reason));
    await this.untilEtcd('register this node', () => this.coordinator.register(this.info, session.leaseId));
  }

  /** Graceful stop: a leader hands over first (bounded), then everything closes. */
  async stop(): Promise<void> {
    if (this.stopping) return this.transition;
    this.stopping = true;
    this.stopWatch.abort();
    this.campaign?.abort();
    if (this.refreshTimer !== null) clearInterval(this.refreshTimer);
    this.wakeViewWaiters();
    this.transition = this.transition.then(async () => {
      const wasLeader = this.role === 'leader';
      this.role = 'stopping';
      if (wasLeader) await this.stepDown('shutdown', true);
      await this.stopFollower();
      await this.session?.close(true);
      this.etcd.close();
      this.role = 'stopped';
      this.log.info({ node: this.id }, 'cluster node stopped');
    });
    return this.transition;
  }

  /** Leaves on request (cluster_leave): hands over if leading, stops, and clears the request. */
  private async leave(): Promise<void> {
    this.log.warn({ node: this.id }, 'asked to leave the cluster: stopping');
    await this.coordinator.clearLeave(this.id).catch(() => {});
    await this.stop();
    this.onLeft();
  }

  /** Asks a registered node (this one included) to leave; false when there is no such node. */
  async requestLeave(id: string): Promise<boolean> {
    const view = await this.coordinator.view();
    if (!view.nodes.some((n) => n.id === id)) return false;
    await this.coordinator.requestLeave(id);
    return true;
  }

  // ---- Watching etcd ------------------------------------------------------------------------------

  private async watchLoop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.etcd.watch(`${this.config.clusterPrefix}/`, this.view.revision + 1, () => void this.refreshView(), this.stopWatch.signal);
      } catch (err) {
        if (this.stopping) return;
        this.log.debug({ err: (err as Error).message }, 'etcd watch broke; re-reading and watching again');
      }
      await sleep(500);
      await this.refreshView();
    }
  }

  private refreshing = false;
  private refreshAgain = false;

  private async refreshView(): Promise<void> {
    if (this.stopping) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    try {
      do {
        this.refreshAgain = false;
        const view = await this.coordinator.view();
        if (view.revision >= this.view.revision) this.onView(view);
      } while (this.refreshAgain && !this.stopping);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'could not read the cluster state from etcd');
    } finally {
      this.refreshing = false;
    }
  }

  private onView(view: ClusterView): void {
    this.view = view;
    this.notePeers(view);
    if (view.leaving.includes(this.id) && !this.stopping) {
      void this.leave();
      return;
    }
    const leader = view.leader;
    if (leader !== null && leader.epoch !== this.lastLeaderEpoch) {
      if (this.lastLeaderEpoch !== 0) this.failovers++;
      this.lastLeaderEpoch = leader.epoch;
      this.log.info({ leader: leader.id, epoch: leader.epoch }, 'cluster leader');
    }
    if (this.role === 'follower') {
      this.proxy?.setLeader(leader !== null && leader.id !== this.id ? leader : null);
      this.followLeader(leader);
      if (this.campaign !== null && !this.eligible()) this.campaign.abort();
    } else if (this.role === 'leader' && view.revision >= this.epoch && (leader === null || leader.epoch !== this.epoch)) {
      this.demote('another node holds the leader key');
    }
    this.wakeViewWaiters();
  }

  private notePeers(view: ClusterView): void {
    for (const n of view.nodes) if (n.id !== this.id) this.peerHosts.add(n.host);
  }

  private wakeViewWaiters(): void {
    for (const w of this.viewWaiters.splice(0)) w();
  }

  private nextView(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.viewWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  // ---- Election -----------------------------------------------------------------------------------

  /** Only a node in the in-sync set (or any node of a new cluster) may lead. */
  private eligible(): boolean {
    if (this.role !== 'follower' || this.stopping || this.session === null || !this.session.valid) return false;
    if (this.client?.state === 'snapshot') return false;
    const isr = this.view.isr;
    return isr === null || isr.includes(this.id);
  }

  private async electionLoop(): Promise<void> {
    while (!this.stopping) {
      await this.transition;
      if (!this.eligible()) {
        await this.nextView(1000);
        continue;
      }
      const session = this.session!;
      const abort = new AbortController();
      this.campaign = abort;
      let key: LeaderKey | null = null;
      try {
        key = await this.coordinator.campaign(this.info, session.leaseId, abort.signal);
      } catch (err) {
        if (!abort.signal.aborted && !this.stopping) {
          this.log.debug({ err: (err as Error).message }, 'campaign interrupted');
          await sleep(500);
        }
      } finally {
        this.campaign = null;
      }
      if (key === null || this.stopping) continue;
      if (abort.signal.aborted || !session.valid) {
        await this.coordinator.resign(key).catch(() => {});
        continue;
      }
      this.transition = this.transition.then(() => this.promote(key, session));
      await this.transition;
    }
  }

  // ---- Follower -----------------------------------------------------------------------------------

  private async becomeFollower(): Promise<void> {
    this.role = 'follower';
    if (this.store === null) {
      this.store = new FollowerStore(this.config.dataDir, this.log);
      this.store.open();
    }
    if (this.proxy === null) {
      const proxy = new LeaderProxy(this.log, this.localAddress);
      try {
        if (this.info.amqpPort !== 0) await proxy.listen('amqp', this.config.bind, this.info.amqpPort);
        if (this.info.amqpTlsPort !== 0) await proxy.listen('amqps', this.config.bind, this.info.amqpTlsPort);
        if (this.info.managementPort !== 0) await proxy.listen('management', this.config.managementBind, this.info.managementPort);
        if (this.info.metricsPort !== 0) await proxy.listen('metrics', this.config.prometheusBind || this.config.bind, this.info.metricsPort);
      } catch (err) {
        await proxy.close();
        throw err;
      }
      this.proxy = proxy;
    }
    const leader = this.view.leader;
    this.proxy.setLeader(leader !== null && leader.id !== this.id ? leader : null);
    this.followLeader(leader);
    if (this.followerTrimTimer === null) {
      const retain = this.config.clusterLogRetainBytes;
      this.followerTrimTimer = setInterval(() => this.store?.trim(retain), TRIM_MS);
      this.followerTrimTimer.unref();
    }
    this.log.info({ node: this.id, seq: this.store.position.seq }, 'following');
  }

  /** Points the replication link at the current leader (a new link when it changed). */
  private followLeader(leader: LeaderInfo | null): void {
    const store = this.store;
    if (store === null || this.role !== 'follower') return;
    const current = this.client;
    if (current !== null && leader !== null && current.options.leader.id === leader.id && current.options.leader.epoch === leader.epoch) return;
    if (current !== null) {
      this.client = null;
      void current.stop();
    }
    if (leader === null || leader.id === this.id) return;
    const client = new ReplicationClient({
      self: this.id,
      secret: this.secret,
      leader,
      store,
      ...(this.localAddress !== undefined ? { localAddress: this.localAddress } : {}),
      silenceLimitMs: Math.max(3000, this.config.clusterMaxLagMs),
      logger: this.log,
    });
    this.client = client;
    // The previous link must have finished writing before this one reads the position.
    const previous = current?.stop() ?? Promise.resolve();
    void previous.then(() => {
      if (this.client === client) client.start();
    });
  }

  private async stopFollower(): Promise<void> {
    if (this.followerTrimTimer !== null) clearInterval(this.followerTrimTimer);
    this.followerTrimTimer = null;
    const client = this.client;
    this.client = null;
    await client?.stop();
    await this.proxy?.close();
    this.proxy = null;
    await this.store?.close();
    this.store = null;
  }

  // ---- Leader -------------------------------------------------------------------------------------

  private async promote(key: LeaderKey, session: EtcdSession): Promise<void> {
    if (this.stopping || this.role !== 'follower') {
      await this.coordinator.resign(key).catch(() => {});
      return;
    }
    const epoch = Number(key.rev);
    // Membership is read after winning: only the leader writes it, so it cannot change under us.
    let view: ClusterView;
    try {
      view = await this.coordinator.view();
      this.notePeers(view);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'elected, but cannot read the in-sync set; resigning');
      await this.coordinator.resign(key).catch(() => {});
      return;
    }
    if (view.isr !== null && !view.isr.includes(this.id)) {
      this.log.warn({ isr: view.isr }, 'elected, but not in the in-sync set; resigning');
      await this.coordinator.resign(key).catch(() => {});
      return;
    }
    this.log.info({ node: this.id, epoch, isr: view.isr }, 'elected leader; taking over');
    const startSeq = this.store?.position.seq ?? 0;
    await this.stopFollower();
    this.role = 'leader';
    this.leaderKey = key;
    this.epoch = epoch;
    try {
      // The set restarts with the new leader alone; followers join again as they catch up.
      if (!(await this.coordinator.writeIsr(key, [this.id]))) throw new Error('lost the leader key while taking over');
      const isr = new InSyncSet(
        {
          self: this.id,
          lagLimitMs: this.config.clusterMaxLagMs,
          commit: (members) => this.coordinator.writeIsr(key, members),
          leaseValid: () => session.valid,
          onFenced: () => this.demote('a fenced write was refused'),
          log: this.log,
        },
        startSeq,
      );
      this.isr = isr;
      const rlog = new ReplicationLog('leader', epoch, isr);
      rlog.onCommitted = (seq) => {
        isr.localCommitted(seq);
        this.server?.pumpAll();
      };
      this.rlog = rlog;
      this.running = await startBroker({ ...this.config, logger: this.log, replication: rlog });
      const server = new ReplicationServer({
        self: this.id,
        epoch,
        secret: this.secret,
        log: rlog,
        isr,
        snapshotDir: join(this.config.dataDir, 'snapshots'),
        storePath: join(this.config.dataDir, 'lmdb'),
        silenceLimitMs: Math.max(3000, this.config.clusterMaxLagMs),
        logger: this.log,
      });
      this.server = server;
      await server.listen(this.config.bind, this.config.clusterPort);
      const trusted = (address: string): boolean => this.peerHosts.has(address);
      for (const s of this.running.server.netServers) acceptProxyProtocol(s, trusted, this.log);
      for (const s of this.running.management?.server.netServers ?? []) acceptProxyProtocol(s, trusted, this.log);
      if (this.running.metrics !== null) {
        acceptProxyProtocol(this.running.metrics.netServer, trusted, this.log);
        this.running.metrics.collector.addAggregated(clusterFamilies(() => this.status()));
      }
      if (this.running.management !== null) {
        addClusterRoutes(this.running.management.router, { status: () => this.status(), requestLeave: (id) => this.requestLeave(id) });
      }
      this.tickTimer = setInterval(() => this.leaderTick(), TICK_MS);
      this.tickTimer.unref();
      const retain = this.config.clusterLogRetainBytes;
      this.trimTimer = setInterval(() => rlog.trim(server.neededFrom(), retain, 4 * retain), TRIM_MS);
      this.trimTimer.unref();
      if (!session.valid) throw new Error('the lease ran out while taking over');
      this.log.info({ node: this.id, epoch, seq: rlog.head.seq }, 'leading');
      this.runElectedHook();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'taking over failed; stepping down');
      await this.stepDown('takeover failed', false);
      if (!this.stopping) await this.becomeFollower();
    }
  }

  private leaderTick(): void {
    const isr = this.isr;
    const rlog = this.rlog;
    if (isr === null || rlog === null || this.role !== 'leader') return;
    isr.tick();
    const stalledMs = rlog.uncommittedForMs();
    // A disk that stopped committing while the lease is renewed would stall every confirm forever:
    // hand the role to a follower instead.
    if (stalledMs > this.diskStallLimitMs()) this.demote(`the disk has not committed for ${stalledMs} ms`);
  }

  private diskStallLimitMs(): number {
    return Math.max(2000, (this.config.clusterLeaseTtlSec * 1000) / 2);
  }

  /** Steps down from the leader role at once (lease lost, fenced, disk stalled); then follows. */
  private demote(reason: string): void {
    if (this.role !== 'leader') return;
    this.role = 'stopping';
    this.isr?.stop();
    this.log.error({ node: this.id, reason }, 'stepping down as leader');
    this.transition = this.transition.then(async () => {
      await this.stepDown(reason, false);
      if (this.stopping) return;
      if (this.session === null || !this.session.valid) {
        const old = this.session;
        await old?.close(false);
        if (old !== null) this.revokeLostLease(old.leaseId);
        await this.openSession();
      }
      this.view = await this.coordinator.view().catch(() => this.view);
      await this.becomeFollower();
    });
  }

  /**
   * Leaves the leader role. graceful: clients go first, then the in-sync followers get every
   * record (bounded wait), then the election key goes so that a follower takes over at once.
   */
  private async stepDown(reason: string, graceful: boolean): Promise<void> {
    const running = this.running;
    const isr = this.isr;
    const rlog = this.rlog;
    const server = this.server;
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    if (this.trimTimer !== null) clearInterval(this.trimTimer);
    this.tickTimer = null;
    this.trimTimer = null;
    if (!graceful) isr?.stop();
    if (running !== null) {
      // Clients first: nothing new arrives while the rest winds down.
      await running.management?.close();
      await running.server.close(reason === 'shutdown' ? 'broker shutdown' : `leader stepping down: ${reason}`);
    }
    if (graceful && isr !== null && rlog !== null && server !== null) {
      const deadline = Date.now() + HANDOVER_WAIT_MS;
      // Everything the store has been given is committed, then every in-sync follower has it.
      while (Date.now() < deadline && (isr.waiting > 0 || !this.followersHave(rlog.committedSeq))) await sleep(20);
      isr.stop();
    }
    if (this.leaderKey !== null && this.session?.valid) await this.coordinator.resign(this.leaderKey).catch(() => {});
    this.leaderKey = null;
    await server?.close();
    this.server = null;
    if (running !== null) {
      try {
        await withTimeout(running.close(), 10_000, 'closing the store');
      } catch (err) {
        // A store that cannot close (stalled disk) cannot be reopened in this process.
        this.onFatal(new Error(`could not close the store after stepping down: ${(err as Error).message}`));
      }
    }
    this.running = null;
    this.rlog = null;
    this.isr = null;
  }

  private followersHave(seq: number): boolean {
    const isr = this.isr;
    if (isr === null) return true;
    for (const id of isr.memberList) {
      if (id === this.id) continue;
      const f = isr.followers.get(id);
      if (f !== undefined && f.connected && f.ackedSeq < seq) return false;
    }
    return true;
  }

  private onLeaseLost(session: EtcdSession, reason: string): void {
    if (session !== this.session || this.stopping) return;
    this.campaign?.abort();
    if (this.role === 'leader') {
      this.demote(`the etcd lease is gone: ${reason}`);
      return;
    }
    // A follower only needs a new lease to register and campaign again.
    this.transition = this.transition.then(async () => {
      if (this.stopping || session !== this.session) return;
      await session.close(false);
      this.revokeLostLease(session.leaseId);
      await this.openSession();
    });
  }

  /**
   * A lease that ran out here (no renewal within the TTL) may still be alive in etcd: etcd extends
   * every lease by a whole TTL when it elects a new etcd leader (after losing quorum, or losing its
   * leader). Its keys — this node's election key, as leader or candidate — would then hold the
   * election for that long with nobody acting on them. This node no longer uses the lease (a
   * leader has stepped down before this is called), so it is revoked as soon as etcd answers:
   * the election moves on at once. Bounded: past a few TTLs etcd has expired it anyway.
   */
  private revokeLostLease(leaseId: string): void {
    const deadline = Date.now() + 3 * this.config.clusterLeaseTtlSec * 1000;
    void (async () => {
      while (!this.stopping && Date.now() < deadline) {
        try {
          await this.etcd.leaseRevoke(leaseId);
          this.log.info({ lease: leaseId }, 'revoked the lease that ran out here (etcd still held it)');
          return;
        } catch (err) {
          // An answer that says no (the lease is already gone) ends it; unreachable: try again.
          if (err instanceof EtcdError && !err.unreachable) return;
        }
        await sleep(500);
      }
    })();
  }

  private runElectedHook(): void {
    const command = this.config.onLeaderElected;
    if (command === '') return;
    const child = spawn(command, {
      shell: true,
      stdio: 'ignore',
      env: {
        ...process.env,
        WARREN_NODE_ID: this.id,
        WARREN_LEADER_HOST: this.info.host,
        WARREN_AMQP_PORT: String(this.info.amqpPort),
        WARREN_MANAGEMENT_PORT: String(this.info.managementPort),
        WARREN_EPOCH: String(this.epoch),
      },
    });
    child.on('error', (err) => this.log.error({ err: err.message, command }, 'the --on-leader-elected command could not run'));
    child.on('exit', (code) => {
      if (code === 0) this.log.info({ command }, '--on-leader-elected command done');
      else this.log.error({ command, code }, 'the --on-leader-elected command failed');
    });
  }

  // ---- Status -------------------------------------------------------------------------------------

  status(): ClusterStatus {
    const isLeader = this.role === 'leader';
    return {
      node: this.id,
      role: this.role,
      leader: this.view.leader,
      isr: isLeader && this.isr !== null ? this.isr.memberList : (this.view.isr ?? []),
      nodes: this.view.nodes,
      epoch: isLeader ? this.epoch : (this.view.leader?.epoch ?? 0),
      followers: isLeader ? (this.server?.status() ?? []) : [],
      link:
        this.client !== null && this.store !== null
          ? { state: this.client.state, seq: this.store.position.seq, epoch: this.store.position.epoch, snapshotsInstalled: this.client.snapshotsInstalled }
          : null,
      failovers: this.failovers,
      seq: isLeader ? (this.rlog?.committedSeq ?? 0) : (this.store?.position.seq ?? 0),
      logBytes: isLeader ? (this.rlog?.logBytes ?? 0) : (this.store?.logBytes ?? 0),
      logFirstSeq: isLeader ? (this.rlog?.firstSeq ?? 0) : 0,
      leaseValidMs: this.session?.validForMs ?? 0,
      snapshotsSent: (this.server?.snapshotsSent ?? 0) + this.snapshotsSentBefore,
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err as Error);
      },
    );
  });
}
