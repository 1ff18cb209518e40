/**
 * The PostgreSQL engine against a private PostgreSQL 15 (test/harness/postgres.ts): every store
 * contract suite, unchanged, and what only a shared engine has — claims racing across pools,
 * SKIP LOCKED, migrations under their advisory lock, wake-ups by LISTEN/NOTIFY, leadership that
 * passes on when its holder's connection dies, and UIDs ordered bytewise whatever the locale.
 * Each store gets a schema of its own in one cluster, so the suites stay independent.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TriageError } from '../../src/domain/errors.ts';
import type { StoredResult } from '../../src/domain/records.ts';
import type { Store, WakeKind } from '../../src/state/ports.ts';
import { lockName } from '../../src/state/postgres/database.ts';
import { MIGRATIONS } from '../../src/state/postgres/migrations.ts';
import { openPostgresStore, type PostgresStoreOptions } from '../../src/state/postgres/index.ts';
import { startPostgres, type PostgresServer } from '../harness/postgres.ts';
import { requirePostgres } from '../harness/require-servers.ts';
import type { StoreEngine } from '../unit/state/contract/engine.ts';
import { jobQueueContract } from '../unit/state/contract/jobs.contract.ts';
import { recordsContract } from '../unit/state/contract/records.contract.ts';
import { verificationContract } from '../unit/state/contract/verifications.contract.ts';
import { retractionContract } from '../unit/state/contract/retractions.contract.ts';
import { worklistContract } from '../unit/state/contract/worklist.contract.ts';

let server: PostgresServer;
const opened = new Set<Store>();
const schemas = new WeakMap<Store, string>();
let schemaCount = 0;
const freshSchema = (): string => `t${++schemaCount}`;

async function openAt(schema: string, clock?: () => number, extra: Partial<PostgresStoreOptions> = {}): Promise<Store> {
  const store = await openPostgresStore({ url: server.url, schema, poolSize: 4, ...(clock ? { clock } : {}), ...extra });
  opened.add(store);
  schemas.set(store, schema);
  return store;
}

/** A plain connection for what the tests do behind the store's back. */
async function admin<T>(fn: (client: pg.Client) => Promise<T>, url = server.url): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const postgres: StoreEngine = {
  name: 'postgres',
  open: (clock) => openAt(freshSchema(), clock),
  async reopen(store, clock) {
    await store.close();
    opened.delete(store);
    return openAt(schemas.get(store)!, clock);
  },
  async exec(store, sql) {
    await admin((c) => c.query(`SET search_path TO ${schemas.get(store)!}; ${sql}`));
  },
};

const ref = (uid: string) => ({ studyInstanceUID: uid, source: 'orthanc-changes' as const });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves to what `p` gives, or rejects after `ms` (a hang fails fast instead of at the test timeout). */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe.skipIf(!requirePostgres())('postgres store', () => {
  beforeAll(async () => {
    server = await startPostgres();
  });

  afterAll(async () => {
    await Promise.all([...opened].map((s) => s.close().catch(() => undefined)));
    await server?.stop();
  });

  jobQueueContract(postgres);
  worklistContract(postgres);
  retractionContract(postgres);
  recordsContract(postgres);
  verificationContract(postgres);

  describe('postgres only: concurrency', () => {
    it('two claimers on two pools race for one job: exactly one wins, each time', async () => {
      const schema = freshSchema();
      const [a, b] = [await openAt(schema, () => 1_000), await openAt(schema, () => 1_000)];
      for (let i = 0; i < 10; i++) {
        await a.enqueue([ref(`1.7.${i + 1}`)]);
        const won = await Promise.all([a.claim(1_000, { owner: 'a', leaseMs: 60_000 }), b.claim(1_000, { owner: 'b', leaseMs: 60_000 })]);
        const winners = won.filter((j) => j !== undefined);
        expect(winners).toHaveLength(1);
        expect(await a.get(`1.7.${i + 1}`)).toMatchObject({ state: 'running', attempts: 1, leaseOwner: winners[0]!.leaseOwner });
      }
    });

    it('N workers over M jobs (SKIP LOCKED): every job claimed exactly once, none lost', async () => {
      const schema = freshSchema();
      const stores = await Promise.all([0, 1, 2, 3].map(() => openAt(schema)));
      const uids = Array.from({ length: 60 }, (_, i) => `1.8.${100 + i}`);
      await stores[0]!.enqueue(uids.map(ref));
      const worker = async (store: Store, owner: string): Promise<string[]> => {
        const got: string[] = [];
        for (let job = await store.claim(Date.now(), { owner, leaseMs: 60_000 }); job; job = await store.claim(Date.now(), { owner, leaseMs: 60_000 })) got.push(job.studyInstanceUID);
        return got;
      };
      const claimed = (await Promise.all(stores.flatMap((s, i) => [worker(s, `w${i}a`), worker(s, `w${i}b`), worker(s, `w${i}c`)]))).flat();
      expect(claimed.length).toBe(uids.length);
      expect([...claimed].sort()).toEqual(uids);
      expect(await stores[0]!.countByState()).toMatchObject({ queued: 0, running: 60 });
    });

    it('a claim passes over a job another transaction holds instead of waiting for it', async () => {
      const schema = freshSchema();
      const store = await openAt(schema, () => 1_000);
      await store.enqueue([ref('1.6.1')]);
      await store.enqueue([ref('1.6.2')]);
      const holder = new pg.Client({ connectionString: server.url });
      await holder.connect();
      try {
        await holder.query(`BEGIN; SELECT * FROM ${schema}.jobs WHERE study_uid = '1.6.1' FOR UPDATE`);
        expect((await within(5_000, store.claim(1_000), 'claim'))?.studyInstanceUID).toBe('1.6.2');
        expect(await within(5_000, store.claim(1_000), 'claim')).toBeUndefined();
        await holder.query('ROLLBACK');
        expect((await store.claim(1_000))?.studyInstanceUID).toBe('1.6.1');
      } finally {
        await holder.end();
      }
    });

    it('replicas starting at once migrate once: the second waits on the advisory lock, then finds nothing to do', async () => {
      const schema = freshSchema();
      const lock = new pg.Client({ connectionString: server.url });
      await lock.connect();
      try {
        await lock.query(`SELECT pg_advisory_lock(hashtextextended($1, 0))`, [lockName(schema, 'migrate')]);
        let opening = 0;
        const starts = [0, 1, 2].map(() => openAt(schema).then((s) => (opening++, s)));
        await sleep(300);
        expect(opening).toBe(0); // all wait for the lock
        await lock.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [lockName(schema, 'migrate')]);
        const [a, b] = await within(10_000, Promise.all(starts), 'open');
        await a!.enqueue([ref('1.1')]);
        expect((await b!.get('1.1'))?.state).toBe('queued');
      } finally {
        await lock.end();
      }
      const versions = await admin((c) => c.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`));
      expect(versions.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    });
  });

  describe('postgres only: wake-ups and leadership', () => {
    it('LISTEN/NOTIFY: another replica\'s enqueue, retry and retraction wake a subscriber at once; other schemas do not; a lost subscription comes back', async () => {
      const schema = freshSchema();
      const [a, b, other] = [await openAt(schema), await openAt(schema), await openAt(freshSchema())];
      const kinds: WakeKind[] = [];
      const sentinel: WakeKind[] = [];
      const off = a.onWake!((kind) => kinds.push(kind));
      a.onWake!((kind) => sentinel.push(kind));
      // The subscription connects in the background: enqueue until the first wake-up arrives.
      for (let i = 0; kinds.length === 0 && i < 50; i++) {
        await b.enqueue([ref(`1.5.${i + 1}`)]);
        await sleep(100);
      }
      expect(kinds).toContain('job');
      /**
       * Checks that `what` woke exactly `expected`. A session gets notifications in commit order,
       * so once a marker NOTIFY sent after `what` arrived, whatever `what` woke has arrived too; the
       * marker is of the other kind, to tell them apart.
       */
      let subscribed = true;
      const wakes = async (what: () => Promise<unknown>, expected: WakeKind[]): Promise<void> => {
        kinds.length = 0;
        sentinel.length = 0;
        await what();
        const marker: WakeKind = expected.includes('retraction') ? 'job' : 'retraction';
        await admin((c) => c.query(`SELECT pg_notify('pacs_triage_jobs', $1)`, [`${schema}:${marker}`]));
        for (let i = 0; !sentinel.includes(marker) && i < 200; i++) await sleep(25);
        expect(sentinel).toEqual([...expected, marker]);
        expect(kinds).toEqual(subscribed ? sentinel : []);
      };
      await wakes(() => other.enqueue([ref('elsewhere')]), []);
      await wakes(() => b.enqueue([], { name: 'unrelated', value: '1' }), []); // a cursor no job waits for
      await wakes(() => b.enqueue([ref('1.5.900')], { name: 'seen', value: '0' }, { settleMs: 1, barrier: 'seen' }), ['job']);
      await wakes(() => b.enqueue([], { name: 'seen', value: String(Date.now() + 1_000) }), ['job']); // the pass that lifts its barrier
      const job = (await b.claim(Date.now(), { owner: 'b', leaseMs: 60_000 }))!;
      await wakes(() => b.fail(job.studyInstanceUID, 'UPSTREAM_UNAVAILABLE', '503', Date.now() + 60_000), ['job']);
      await wakes(() => b.requeue('1.5.1'), ['job']);
      await b.claim(Number.MAX_SAFE_INTEGER, undefined, '1.5.1');
      await b.saveResult({ resultKey: 'k', studyInstanceUID: '1.5.1', createdAt: 1, priority: 'stat', findings: [] } as unknown as StoredResult);
      await wakes(() => b.finish('1.5.1', 'done', undefined), []);
      await wakes(() => b.requestRetraction({ studyInstanceUID: '1.5.1', cause: 'marked-wrong' }), ['retraction']);

      // The server ends the LISTEN session: it comes back, and wakes everyone once (a NOTIFY may have been missed).
      kinds.length = 0;
      await admin((c) => c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN pacs_triage_jobs'`));
      for (let i = 0; kinds.length < 2 && i < 60; i++) await sleep(100);
      expect([...kinds].sort()).toEqual(['job', 'retraction']);
      await wakes(() => b.enqueue([ref('after')]), ['job']);
      off();
      subscribed = false;
      await wakes(() => b.enqueue([ref('unsubscribed')]), ['job']); // the sentinel still listens
    });

    it('leadership: one holder per name; when the holder\'s connection dies another replica takes it over', async () => {
      const schema = freshSchema();
      const [a, b] = [await openAt(schema), await openAt(schema)];
      const lead = (await a.tryLeadership!('ingest:orthanc-changes'))!;
      expect(lead.held()).toBe(true);
      expect(await b.tryLeadership!('ingest:orthanc-changes')).toBeUndefined();
      const otherSource = (await b.tryLeadership!('ingest:dicomweb-qido'))!;
      expect(otherSource.held()).toBe(true);
      await otherSource.release();
      expect(otherSource.held()).toBe(false);
      const elsewhere = (await (await openAt(freshSchema())).tryLeadership!('ingest:orthanc-changes'))!; // another deployment's
      expect(elsewhere.held()).toBe(true);
      await elsewhere.release();

      // The holder's session dies (a crash, a broken network): the lease ends, and b can take it.
      await admin((c) => c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pacs-triage leader'`));
      await within(5_000, lead.ended, 'ended');
      expect(lead.held()).toBe(false);
      let taken;
      for (let i = 0; !taken && i < 50; i++) {
        taken = await b.tryLeadership!('ingest:orthanc-changes');
        if (!taken) await sleep(100);
      }
      expect(taken?.held()).toBe(true);
      expect(await a.tryLeadership!('ingest:orthanc-changes')).toBeUndefined();
      await taken!.release();
      const back = await a.tryLeadership!('ingest:orthanc-changes');
      expect(back?.held()).toBe(true);
      await b.close(); // releases nothing of a's
      expect(back?.held()).toBe(true);
      await a.close();
      expect(back?.held()).toBe(false);
    });
  });

  describe('postgres only: errors and locale', () => {
    it('an unreachable server is UPSTREAM_UNAVAILABLE (retryable); a broken idle connection is reported and replaced', async () => {
      const unreachable = openPostgresStore({ url: `postgres://postgres@127.0.0.1:1/postgres`, schema: 'nowhere' });
      await expect(unreachable).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
      await expect(unreachable).rejects.toBeInstanceOf(TriageError);

      const reported: TriageError[] = [];
      const store = await openAt(freshSchema(), undefined, { onConnectionError: (err) => reported.push(err) });
      await store.enqueue([ref('1.1')]);
      await admin((c) => c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pacs-triage' AND state = 'idle' AND pid <> pg_backend_pid()`));
      for (let i = 0; reported.length === 0 && i < 30; i++) await sleep(50);
      expect(reported[0]).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      expect((await store.get('1.1'))?.state).toBe('queued');
    });

    it('study UIDs order bytewise, as on SQLite, in a database whose collation ignores punctuation (the sweep pages by UID)', async () => {
      await admin((c) => c.query(`CREATE DATABASE shifted TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US-u-ka-shifted'`));
      const url = server.url.replace(/\/postgres$/, '/shifted');
      expect((await admin((c) => c.query<{ uid: string }>(`SELECT unnest(ARRAY['1.23', '12.1']) AS uid ORDER BY 1`), url)).rows.map((r) => r.uid)).toEqual(['12.1', '1.23']);
      const store = await openPostgresStore({ url, schema: 'pacs_triage', poolSize: 2 });
      opened.add(store);
      for (const uid of ['12.1', '1.23']) {
        await store.enqueue([{ studyInstanceUID: uid, source: 'cli' }]);
        await store.claim(Number.MAX_SAFE_INTEGER, undefined, uid);
        await store.saveResult({ resultKey: `k${uid}`, studyInstanceUID: uid, createdAt: 1, priority: 'routine', findings: [] } as unknown as StoredResult);
        await store.finish(uid, 'done', undefined);
      }
      expect(await store.sweepCandidates(0, '', 10)).toEqual(['1.23', '12.1']);
      expect(await store.sweepCandidates(0, '1.23', 10)).toEqual(['12.1']);
    });
  });
});
