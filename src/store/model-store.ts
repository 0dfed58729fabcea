// The `model` database: users, vhosts (with their limits), permissions, topic permissions,
// policies, operator policies and runtime parameters — small, cold records that the admin façade
// writes and the broker reads once at start. Keys are built from numeric ids (kind ‖ u32 id),
// never from names; this module keeps the name → id map in memory. Values are msgpack objects.
// Writes are lmdb-js asynchronous puts, tracked like every other write of the store: durability is
// observed through the store's commit (Persistence.afterCommit), never per record.
//
//   key: u8 kind ‖ u32 id        value: the record (kind 0 / id 0: the "seeded" marker)

import type { Database } from 'lmdb';
import type { LmdbStore } from './lmdb-store.js';

export interface UserRecord {
  kind: 'user';
  name: string;
  /** base64(salt ‖ sha256(salt ‖ password)), RabbitMQ's rabbit_password_hashing_sha256; '' = none */
  passwordHash: string;
  tags: string[];
}

export interface VHostRecord {
  kind: 'vhost';
  name: string;
  description: string;
  tags: string[];
  defaultQueueType: string | null;
  /** max-connections / max-queues as RabbitMQ's vhost-limits parameter holds them */
  limits: Record<string, number>;
}

export interface PermissionRecord {
  kind: 'permission';
  user: string;
  vhost: string;
  configure: string;
  write: string;
  read: string;
}

export interface TopicPermissionRecord {
  kind: 'topic-permission';
  user: string;
  vhost: string;
  exchange: string;
  write: string;
  read: string;
}

export interface PolicyRecord {
  kind: 'policy' | 'operator-policy';
  vhost: string;
  name: string;
  pattern: string;
  applyTo: 'queues' | 'exchanges' | 'all';
  priority: number;
  definition: Record<string, unknown>;
}

export interface ParameterRecord {
  kind: 'parameter';
  vhost: string;
  component: string;
  name: string;
  value: unknown;
}

export interface GlobalParameterRecord {
  kind: 'global-parameter';
  name: string;
  value: unknown;
}

export type ModelRecord =
  | UserRecord
  | VHostRecord
  | PermissionRecord
  | TopicPermissionRecord
  | PolicyRecord
  | ParameterRecord
  | GlobalParameterRecord;

export type ModelKind = ModelRecord['kind'];

const KIND_CODES: Record<ModelKind, number> = {
  user: 1,
  vhost: 2,
  permission: 3,
  'topic-permission': 4,
  policy: 5,
  'operator-policy': 6,
  parameter: 7,
  'global-parameter': 8,
};

/** The natural identity of a record: what makes two records "the same one". */
export function naturalKey(rec: ModelRecord): string {
  switch (rec.kind) {
    case 'user':
    case 'vhost':
    case 'global-parameter':
      return JSON.stringify([rec.kind, rec.name]);
    case 'permission':
      return JSON.stringify([rec.kind, rec.user, rec.vhost]);
    case 'topic-permission':
      return JSON.stringify([rec.kind, rec.user, rec.vhost, rec.exchange]);
    case 'policy':
    case 'operator-policy':
      return JSON.stringify([rec.kind, rec.vhost, rec.name]);
    case 'parameter':
      return JSON.stringify([rec.kind, rec.vhost, rec.component, rec.name]);
  }
}

function modelKey(kind: number, id: number): Buffer {
  const key = Buffer.allocUnsafe(5);
  key[0] = kind;
  key.writeUInt32BE(id, 1);
  return key;
}

const SEEDED_KEY = modelKey(0, 0);

interface SeededMarker {
  seededAt: string;
}

export class ModelStore {
  private readonly db: Database<ModelRecord | SeededMarker, Buffer>;
  /** natural key → id of the stored record */
  private readonly ids = new Map<string, number>();
  private nextId = 1;

  constructor(private readonly store: LmdbStore) {
    this.db = store.openDatabase<ModelRecord | SeededMarker>('model');
  }

  /** Every stored record (start-up), remembering their ids. */
  loadAll(): ModelRecord[] {
    const out: ModelRecord[] = [];
    for (const { key, value } of this.db.getRange({})) {
      if (key[0] === 0) continue;
      const id = key.readUInt32BE(1);
      if (id >= this.nextId) this.nextId = id + 1;
      const rec = value as ModelRecord;
      this.ids.set(naturalKey(rec), id);
      out.push(rec);
    }
    return out;
  }

  /** Whether the first-start records (default user and vhost) were ever written. */
  get seeded(): boolean {
    return this.db.get(SEEDED_KEY) !== undefined;
  }

  markSeeded(): void {
    this.store.trackWrite(this.db.put(SEEDED_KEY, { seededAt: new Date().toISOString() }));
  }

  /** Writes (inserts or replaces) a record. */
  put(rec: ModelRecord): void {
    const natural = naturalKey(rec);
    let id = this.ids.get(natural);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(natural, id);
    }
    this.store.trackWrite(this.db.put(modelKey(KIND_CODES[rec.kind], id), rec));
  }

  /** Deletes a record by its identity (the other fields are ignored). */
  delete(rec: ModelRecord): void {
    const natural = naturalKey(rec);
    const id = this.ids.get(natural);
    if (id === undefined) return;
    this.ids.delete(natural);
    this.store.trackWrite(this.db.remove(modelKey(KIND_CODES[rec.kind], id)));
  }
}
