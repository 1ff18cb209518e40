/**
 * The PostgreSQL engine: one database shared by N `serve` replicas (DESIGN.md "Deployment
 * shapes"). Each concern lives in its own module; this composes them over one pool, adds the
 * wake-up subscription and leadership that only a shared engine needs, and turns every driver
 * error into a TriageError (a lost connection is UPSTREAM_UNAVAILABLE: retryable).
 */
import type { TriageError } from '../../domain/errors.ts';
import { publicJob } from '../job-machine.ts';
import type { Leadership, Store } from '../ports.ts';
import { clientConfig, guarded, openPool, storeError, type PostgresConnection } from './database.ts';
import { postgresIngestState } from './ingest.ts';
import { postgresJobQueue, readJob } from './jobs.ts';
import { tryLeadership } from './leadership.ts';
import { migrate } from './migrations.ts';
import { postgresAudit, postgresFeedback, postgresRetention } from './records.ts';
import { latestResult, postgresResults } from './results.ts';
import { postgresRetractions, readRetraction } from './retractions.ts';
import { wholeMs } from './sql.ts';
import { postgresVerifications } from './verifications.ts';
import { wakeSubscription } from './wake.ts';

export interface PostgresStoreOptions extends PostgresConnection {
  /** Epoch ms (tests inject their own); never the database's now(), so every engine orders alike. */
  clock?: () => number;
  /**
   * Told when an idle pooled connection or the wake-up subscription breaks (the store logs
   * nothing itself; the next statement reports its own failure to its caller).
   */
  onConnectionError?: (err: TriageError) => void;
}

/** Connects, creates or migrates the schema, and returns the store; fails with UPSTREAM_UNAVAILABLE when the server cannot be reached. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const tick = options.clock ?? Date.now;
  const clock = (): number => wholeMs(tick());
  const onError = options.onConnectionError ?? ((): void => undefined);
  const { schema } = options;
  const config = clientConfig(options);
  const pool = openPool(config, options.poolSize ?? 10, onError);
  try {
    await migrate(pool, schema, clock());
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw storeError(err);
  }
  const wake = wakeSubscription(config, schema, onError);
  const leaderships = new Set<Leadership>();
  let closed = false;

  const methods = guarded({
    ...postgresJobQueue(pool, schema, clock),
    ...postgresIngestState(pool, schema, clock),
    ...postgresResults(pool, schema, clock),
    ...postgresFeedback(pool, clock),
    ...postgresAudit(pool, clock),
    ...postgresRetractions(pool, schema, clock),
    ...postgresVerifications(pool, clock),
    ...postgresRetention(pool),
    async study(uid: string) {
      const job = await readJob(pool, uid);
      if (!job) return undefined;
      const [result, retraction] = await Promise.all([latestResult(pool, uid), readRetraction(pool, uid)]);
      return { job: publicJob(job), ...(result ? { result } : {}), ...(retraction ? { retraction } : {}) };
    },
  });

  return {
    engine: 'postgres',
    ...methods,
    onWake: (listener) => wake.onWake(listener),
    async tryLeadership(name) {
      const leadership = await tryLeadership(config, schema, name);
      if (leadership) {
        leaderships.add(leadership);
        void leadership.ended.then(() => leaderships.delete(leadership));
      }
      return leadership;
    },
    async close() {
      if (closed) return;
      closed = true;
      await wake.close();
      await Promise.all([...leaderships].map((l) => l.release()));
      await pool.end();
    },
  };
}
