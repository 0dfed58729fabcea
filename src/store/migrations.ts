// In-place migrations of the data folder's layout, one step per version (v1→v2→…). Each step runs
// inside one synchronous LMDB transaction together with the layout version bump (lmdb-store.ts),
// so a crash leaves the old layout or the new one. Every step has a test on a fixture data folder
// written by the previous version's code (test/store/migration-*.test.ts).

import type { RootDatabase } from 'lmdb';
import { migrateEntriesV2 } from './migrate-entries.js';

export interface Migration {
  /** the layout version this step reads; it writes from + 1 */
  from: number;
  describe: string;
  run(root: RootDatabase): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    from: 1,
    // v2 keeps users, vhosts, permissions and policies in the `model` database. A v1 folder has
    // none: the database is created empty here, and the broker writes the default user, the
    // vhosts its stored queues and exchanges live in, and their permissions on the next start
    // (the first start of v2 for this folder), exactly as on a fresh folder.
    describe: 'add the model database (users, vhosts, permissions, policies)',
    run(root) {
      root.openDB({ name: 'model', keyEncoding: 'binary' });
    },
  },
  {
    from: 2,
    // v3 keys queue entries by priority level and keeps, per queue, stored counts (so a start
    // reads no messages), reference counts of shared bodies, and a block of reserved message ids.
    describe: 'queue entries keyed by priority level, with stored counts, reference counts and reserved message ids',
    run: migrateEntriesV2,
  },
];
