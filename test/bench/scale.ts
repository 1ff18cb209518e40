/**
 * The scale phases of `npm run bench` (run instead of the pipeline phases when asked for):
 *
 *   npm run bench -- --live-under-backlog 10000 [--trickle 20] [--store sqlite|postgres]
 *   npm run bench -- --store postgres --replicas 1,3 [--n 200]
 *
 * - live under backlog: the latency of live studies, one at a time (last instance stored → SR
 *   stored in Orthanc, seen on its changes feed), first with nothing else queued, then with
 *   `--live-under-backlog` studies in Orthanc and queued as backfill (as `backfill` queues them)
 *   and draining, in one `serve` each. Scheduling classes put the live study ahead of the
 *   backlog; what is left is the wait for a free worker and the shared CPU.
 * - replicas: N `serve` processes on one store (PostgreSQL for N > 1) and one Orthanc; a burst of
 *   --n studies; studies/s, CPU per study of each process, of Orthanc and of PostgreSQL, and
 *   PostgreSQL's statements and transactions per study (pg_stat_statements, pg_stat_database).
 *
 * PostgreSQL runs durable here (fsync and synchronous commit on), unlike in the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { DicomWebClient } from '../../src/adapters/dicomweb/client.ts';
import { OrthancClient } from '../../src/adapters/orthanc/client.ts';
import { CHANGES_CURSOR } from '../../src/pipeline/ingest/orthanc-changes.ts';
import { startFhirServer } from '../../src/sandbox/fhir-server.ts';
import { freePorts, startOrthanc } from '../../src/sandbox/orthanc.ts';
import type { Store } from '../../src/state/ports.ts';
import { openPostgresStore } from '../../src/state/postgres/index.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import { startPostgres, type PostgresServer } from '../harness/postgres.ts';
import { cpuMs, quantile, round, SrWatcher, studyMaker } from './kit.ts';

export interface ScaleArgs {
  liveUnderBacklog: number;
  store: 'sqlite' | 'postgres';
  replicas: number[];
  n: number;
  trickle: number;
  concurrency: number;
  stableAgeS: number;
  out: string;
}

const DEMO = 'test/fixtures/demo';
const TOKEN = 'bench-api-token-0123456789abcdef';
const say = (line: string): void => void process.stderr.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU time of the postmaster and its children (the backends, the writer, the WAL writer). */
function postgresCpuMs(server: PostgresServer): number {
  const postmaster = server.pid();
  let total = cpuMs(postmaster);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]);
      if (ppid === postmaster) total += cpuMs(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

export async function runScale(args: ScaleArgs): Promise<void> {
  const makeStudy = studyMaker(DEMO);
  const orthanc = await startOrthanc({ dicomServer: false });
  const fhir = await startFhirServer();
  await fhir.seed(JSON.parse(readFileSync(path.join(DEMO, 'fhir-bundle.json'), 'utf8')));
  const postgres = args.store === 'postgres' ? await startPostgres({ durable: true, settings: ['shared_preload_libraries=pg_stat_statements'] }) : undefined;
  const dicomweb = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, auth: orthanc.auth, timeoutMs: 60_000 });
  const rest = new OrthancClient({ baseUrl: orthanc.baseUrl, auth: orthanc.auth, timeoutMs: 60_000 });
  const work = mkdtempSync(path.join(tmpdir(), 'pacs-triage-bench-scale-'));
  const children = new Set<ChildProcess>();
  process.on('exit', () => {
    for (const c of children) c.kill('SIGKILL');
  });
  say(`Orthanc ${orthanc.baseUrl}, FHIR ${fhir.url}, store ${args.store}${postgres ? ` (${postgres.url})` : ''}, work dir ${work}`);

  const storeConfig = (name: string): Record<string, unknown> =>
    postgres ? { kind: 'postgres', url: postgres.url, schema: name, poolSize: 10 } : { path: path.join(work, `${name}.sqlite`) };
  const openStoreFor = (name: string): Promise<Store> =>
    postgres ? openPostgresStore({ url: postgres.url, schema: name, poolSize: 2 }) : Promise.resolve(openSqliteStore(path.join(work, `${name}.sqlite`)));
  function config(name: string, port: number): string {
    const file = path.join(work, `${name}-${port}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        pacs: { baseUrl: orthanc.baseUrl, auth: orthanc.auth },
        fhir: { baseUrl: fhir.url },
        store: storeConfig(name),
        api: { port, token: TOKEN },
        ingest: { pollIntervalS: 1, modes: ['orthanc-changes'], stableAgeS: args.stableAgeS },
        worker: { concurrency: args.concurrency },
        model: { maxBatch: 8, maxWaitMs: 10 },
        corrections: { deletedSweep: false },
      }),
    );
    return file;
  }
  /** A store that starts reading Orthanc's changes feed where it ends now (earlier phases' studies are not its work). */
  async function freshStore(name: string, seed?: (store: Store) => Promise<void>): Promise<void> {
    const store = await openStoreFor(name);
    const last = (await rest.http.json<{ Last: number }>({ path: 'changes', query: { last: '' } })).Last;
    await store.enqueue([], { name: CHANGES_CURSOR, value: String(last) });
    await seed?.(store);
    await store.close();
  }
  async function startServes(name: string, count: number): Promise<{ child: ChildProcess; port: number }[]> {
    const ports = await freePorts(count);
    const serves = ports.map((port) => {
      const child = spawn(process.execPath, ['src/bin.mjs', 'serve', '--config', config(name, port)], { stdio: ['ignore', 'ignore', 'pipe'] });
      children.add(child);
      child.once('exit', () => children.delete(child));
      child.stderr?.on('data', () => undefined);
      return { child, port };
    });
    for (const { port } of serves) {
      for (let end = Date.now() + 90_000; ; await sleep(100)) {
        if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) break;
        if (Date.now() > end) throw new Error(`serve on ${port} did not come up in 90 s`);
      }
    }
    return serves;
  }
  async function stop(serves: { child: ChildProcess }[]): Promise<void> {
    for (const { child } of serves) child.kill('SIGTERM');
    await Promise.all(serves.map(({ child }) => (child.exitCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r)))));
  }
  const watcher = new SrWatcher(rest);
  await watcher.start();
  async function trickle(tag: string): Promise<number[]> {
    const latency: number[] = [];
    for (let i = 0; i < args.trickle; i++) {
      const s = makeStudy(tag, i);
      await dicomweb.store(undefined, [s.part10]);
      const stored = performance.now();
      latency.push((await srSeen(s.uid, 120_000)) - stored);
    }
    return latency;
  }
  /**
   * When an SR of the study is in Orthanc: a QIDO-RS query for the study's SR series every 25 ms.
   * Not the changes-feed watcher: it looks up every instance the backlog's results add, one at
   * a time, and while the backlog drains fast it falls seconds behind, which read as latency.
   */
  async function srSeen(uid: string, timeoutMs: number): Promise<number> {
    for (const end = performance.now() + timeoutMs; performance.now() < end; await sleep(25)) {
      const series = await rest.http.json<unknown[]>({ path: `dicom-web/studies/${uid}/series`, query: { Modality: 'SR' }, headers: { accept: 'application/dicom+json' } }).catch(() => []);
      if (Array.isArray(series) && series.length > 0) return performance.now();
    }
    throw new Error(`no SR for ${uid} within ${timeoutMs / 1000} s`);
  }
  const stats = (xs: number[]): { n: number; p50Ms: number; p95Ms: number } => ({ n: xs.length, p50Ms: round(quantile(xs, 0.5)), p95Ms: round(quantile(xs, 0.95)) });

  const report: Record<string, unknown> = { date: new Date().toISOString(), machine: { cpus: cpus().length, node: process.version }, store: args.store };

  // ------------------------------------------------------------ live under backlog
  if (args.liveUnderBacklog > 0) {
    say(`idle: ${args.trickle} live studies one at a time, nothing else queued`);
    await freshStore('idle');
    let serves = await startServes('idle', 1);
    const idle = await trickle('idle');
    await stop(serves);
    say(`  idle p50 ${round(quantile(idle, 0.5))} ms, p95 ${round(quantile(idle, 0.95))} ms`);

    const B = args.liveUnderBacklog;
    say(`backlog: storing ${B} studies in Orthanc`);
    const t0 = performance.now();
    const uids: string[] = [];
    for (let i = 0; i < B; i += 50) {
      const chunk = Array.from({ length: Math.min(50, B - i) }, (_, j) => makeStudy('backlog', i + j));
      await Promise.all([0, 1, 2, 3, 4].map((k) => dicomweb.store(undefined, chunk.slice(k * 10, k * 10 + 10).map((s) => s.part10)).catch(() => undefined)));
      uids.push(...chunk.map((s) => s.uid));
      if ((i / 50) % 20 === 0) say(`  ${i + chunk.length} of ${B}`);
    }
    say(`  stored in ${round((performance.now() - t0) / 1000)} s; queued as backfill`);
    await freshStore('backlog', async (store) => {
      for (let i = 0; i < uids.length; i += 500) await store.enqueue(uids.slice(i, i + 500).map((u) => ({ studyInstanceUID: u, source: 'dicomweb-qido' as const })), undefined, { class: 'backfill' });
    });
    serves = await startServes('backlog', 1);
    const probe = await openStoreFor('backlog');
    const doneCount = async (): Promise<number> => (await probe.countJobs({ state: 'done' })) + (await probe.countJobs({ state: 'failed' }));
    while ((await doneCount()) < 4 * args.concurrency) await sleep(500);
    say(`under backlog: ${args.trickle} live studies one at a time while the backlog drains`);
    const before = { done: await doneCount(), at: performance.now() };
    const under = await trickle('live');
    const after = { done: await doneCount(), at: performance.now() };
    const queued = await probe.countJobs({ state: 'queued' });
    await probe.close();
    await stop(serves);
    const drainPerS = round(((after.done - before.done) / (after.at - before.at)) * 1000, 2);
    report['liveUnderBacklog'] = {
      backlog: B,
      idle: stats(idle),
      underBacklog: stats(under),
      p95DifferenceMs: round(quantile(under, 0.95) - quantile(idle, 0.95)),
      backlogDrainPerSWhileLive: drainPerS,
      backlogStillQueued: queued,
      concurrency: args.concurrency,
      stableAgeS: args.stableAgeS,
    };
    say(`  ${JSON.stringify(report['liveUnderBacklog'])}`);
  }

  // ------------------------------------------------------------ replicas
  if (args.replicas.length > 0) {
    const results: unknown[] = [];
    const admin = postgres ? new pg.Client({ connectionString: postgres.url }) : undefined;
    await admin?.connect();
    await admin?.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    for (const count of args.replicas) {
      if (!postgres && count > 1) throw new Error('more than one replica needs --store postgres');
      const name = `replicas${count}`;
      await freshStore(name);
      const serves = await startServes(name, count);
      const burst = Array.from({ length: args.n }, (_, i) => makeStudy(name, i));
      say(`${count} replica(s): burst of ${args.n} studies`);
      await admin?.query('SELECT pg_stat_statements_reset()');
      const db0 = admin ? (await admin.query<{ x: string }>(`SELECT (xact_commit + xact_rollback)::text AS x FROM pg_stat_database WHERE datname = current_database()`)).rows[0]!.x : '0';
      const cpu0 = { serves: serves.map((s) => cpuMs(s.child.pid!)), orthanc: cpuMs(orthanc.pid!), postgres: postgres ? postgresCpuMs(postgres) : 0 };
      const start = performance.now();
      for (let i = 0; i < burst.length; i += 10) {
        await Promise.all(burst.slice(i, i + 10).map((s) => dicomweb.store(undefined, [s.part10])));
      }
      await watcher.waitFor(burst.map((s) => s.uid), 30 * 60_000);
      const end = Math.max(...burst.map((s) => watcher.arrived.get(s.uid)!));
      const cpu1 = { serves: serves.map((s) => cpuMs(s.child.pid!)), orthanc: cpuMs(orthanc.pid!), postgres: postgres ? postgresCpuMs(postgres) : 0 };
      let pgStats: Record<string, number> | undefined;
      if (admin) {
        const calls = (await admin.query<{ n: string }>(`SELECT COALESCE(SUM(calls), 0)::text AS n FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)).rows[0]!.n;
        const db1 = (await admin.query<{ x: string }>(`SELECT (xact_commit + xact_rollback)::text AS x FROM pg_stat_database WHERE datname = current_database()`)).rows[0]!.x;
        pgStats = { statementsPerStudy: round(Number(calls) / args.n, 1), transactionsPerStudy: round((Number(db1) - Number(db0)) / args.n, 1) };
      }
      await stop(serves);
      const perServe = serves.map((_, i) => round((cpu1.serves[i]! - cpu0.serves[i]!) / args.n, 1));
      const entry = {
        replicas: count,
        studiesPerS: round((args.n / (end - start)) * 1000, 2),
        cpuPerStudyMs: {
          servePerProcess: perServe,
          serveTotal: round(perServe.reduce((a, b) => a + b, 0), 1),
          orthanc: round((cpu1.orthanc - cpu0.orthanc) / args.n, 1),
          ...(postgres ? { postgres: round((cpu1.postgres - cpu0.postgres) / args.n, 1) } : {}),
        },
        ...(pgStats ? { postgres: pgStats } : {}),
      };
      say(`  ${JSON.stringify(entry)}`);
      results.push(entry);
    }
    await admin?.end();
    report['replicas'] = results;
  }

  watcher.stop();
  mkdirSync(args.out, { recursive: true });
  const outFile = path.join(args.out, `scale-${String(report['date']).replace(/[:.]/g, '-')}.json`);
  writeFileSync(outFile, JSON.stringify(report, null, 2));
  console.log(JSON.stringify(report, null, 2));
  console.log(`\nJSON: ${outFile}`);
  dicomweb.close();
  rest.close();
  await fhir.close();
  await orthanc.cleanup();
  await postgres?.stop();
}
