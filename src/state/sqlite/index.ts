/**
 * The SQLite engine: one file (WAL) for one machine — the default, nothing else to run. Each
 * concern lives in its own module; this composes them over one connection.
 */
import type { Store } from '../ports.ts';
import { publicJob } from '../job-machine.ts';
import { openDatabase } from './database.ts';
import { readJob, sqliteJobQueue } from './jobs.ts';
import { sqliteIngestState } from './ingest.ts';
import { latestResultSync, sqliteResults } from './results.ts';
import { readRetraction, sqliteRetractions } from './retractions.ts';
import { sqliteVerifications } from './verifications.ts';
import { sqliteAudit, sqliteFeedback, sqliteRetention } from './records.ts';

export interface SqliteStoreOptions {
  /** Epoch ms (tests inject their own). */
  clock?: () => number;
}

/** Opens (creating and migrating) the store at `file`; `:memory:` for `analyze` and tests. */
export function openSqliteStore(file: string, options: SqliteStoreOptions = {}): Store {
  const db = openDatabase(file);
  const clock = options.clock ?? Date.now;
  return {
    engine: 'sqlite',
    ...sqliteJobQueue(db, clock),
    ...sqliteIngestState(db, clock),
    ...sqliteResults(db, clock),
    ...sqliteFeedback(db, clock),
    ...sqliteAudit(db, clock),
    ...sqliteRetractions(db, clock),
    ...sqliteVerifications(db, clock),
    ...sqliteRetention(db),
    async study(uid) {
      const job = readJob(db, uid);
      if (!job) return undefined;
      const result = latestResultSync(db, uid);
      const retraction = readRetraction(db, uid);
      return { job: publicJob(job), ...(result ? { result } : {}), ...(retraction ? { retraction } : {}) };
    },
    async close() {
      db.close();
    },
  };
}
