import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import cron from 'node-cron';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { createApp } from '../api/app.ts';
import { asTriageError } from '../domain/errors.ts';
import { SOFTWARE, connectFhir, connectServers, openRuntime, serverPipeline, type Runtime, type Servers } from '../main.ts';
import { FhirServerSource } from '../adapters/fhir/clinical-source.ts';
import { ingestModes, pollIngest } from '../pipeline/ingest/modes.ts';
import { ownSeries, RecentIds, type OwnSeries } from '../pipeline/ingest/own-writes.ts';
import type { PipelineDeps } from '../pipeline/process-study.ts';
import { runJob, type JobOutcome, type Lease, type RetryPolicy } from '../pipeline/worker.ts';
import { WorkerPool } from '../pipeline/pool.ts';
import { CircuitBreaker } from '../adapters/http/breaker.ts';
import { naturalize } from '../dicom/json.ts';
import { studyUidOf } from '../dicom/instance-meta.ts';
import { Metrics } from '../observability/metrics.ts';
import { openFolderIngest, type FolderIngest } from '../adapters/files/folder-watch.ts';
import { TriageError } from '../domain/errors.ts';
import type { DicomWebClient } from '../adapters/dicomweb/client.ts';
import { serverRetractionPorts } from '../adapters/retraction-io.ts';
import { drainRetractions, requestMarkedWrong, runRetractionJob, sweepIfDue, type RetractionDeps, type RetractionOutcome } from '../pipeline/retract.ts';
import type { Retraction } from '../domain/records.ts';

/** The upstreams; no PACS (`dicomweb` undefined) when the folder mode runs alone. */
export type ServiceServers = Omit<Servers, 'dicomweb'> & { dicomweb: DicomWebClient | undefined };

export interface Service {
  runtime: Runtime;
  servers: ServiceServers;
  /** The watched folder (ingest mode folder), when it runs. */
  folder: FolderIngest | undefined;
  deps: PipelineDeps;
  retry: RetryPolicy;
  lease: Lease;
  metrics: Metrics;
  breakers: { pacs: CircuitBreaker; fhir: CircuitBreaker };
  /** Our own SRs and rejection notes (per-instance ingest must not re-run a study for them). */
  own: { isOwnSeries: OwnSeries; ownInstances: RecentIds };
  /** Set on SIGTERM: workers finish the job in hand and claim no more. */
  stopping: boolean;
  close(): Promise<void>;
}

/** Breakers (one per upstream, shared by its clients) and error counters on every client. */
function instrument(servers: ServiceServers, config: Config, metrics: Metrics, log: Logger): Service['breakers'] {
  const make = (name: 'pacs' | 'fhir'): CircuitBreaker => {
    const b = new CircuitBreaker(name, config.breaker);
    b.onChange = (state) => {
      metrics.breakerChanged(name, state);
      log.warn({ event: `upstream.circuit.${state}`, target: name }, `circuit to ${name} ${state}`);
    };
    return b;
  };
  const breakers = { pacs: make('pacs'), fhir: make('fhir') };
  const onError = (target: string, status: number | string): void => metrics.upstreamError(target, status);
  for (const http of [servers.dicomweb?.http, servers.orthanc?.http]) {
    if (!http) continue;
    http.breaker = breakers.pacs;
    http.onError = onError;
  }
  if (servers.fhir) {
    servers.fhir.breaker = breakers.fhir;
    servers.fhir.onError = onError;
  }
  return breakers;
}

/** The folder mode alone needs no PACS: only the FHIR client, when one is configured. */
function connectWithoutPacs(config: Config): ServiceServers {
  const fhir = connectFhir(config);
  return { dicomweb: undefined, orthanc: undefined, fhir, close: () => fhir?.close() };
}

export async function openService(config: Config, log: Logger): Promise<Service> {
  const folderOnly = !config.pacs && ingestModes(config).includes('folder');
  const servers: ServiceServers = folderOnly ? connectWithoutPacs(config) : connectServers(config);
  let runtime: Runtime;
  try {
    runtime = await openRuntime(config, log);
  } catch (err) {
    servers.close();
    throw err;
  }
  const metrics = new Metrics(runtime.store);
  metrics.setProvider(runtime.model.provider, `${runtime.model.manifest.id}@${runtime.model.manifest.version}`);
  runtime.model.onBatch = (size, seconds) => {
    metrics.batchSize.observe(size);
    metrics.inferenceSeconds.observe(seconds);
  };
  const breakers = instrument(servers, config, metrics, log);
  const ownInstances = new RecentIds();
  const pacs = servers.dicomweb ? serverPipeline(config, runtime, { ...servers, dicomweb: servers.dicomweb }, log, (id) => ownInstances.add(id)) : undefined;
  const folder = ingestModes(config).includes('folder') ? openFolderIngest(config, pacs?.source, servers.fhir, async (uid) => (await runtime.store.get(uid))?.source === 'folder') : undefined;
  let deps: PipelineDeps;
  if (pacs) deps = { ...pacs, ...(folder ? { source: folder.source } : {}), metrics };
  else if (folder?.sink) {
    deps = {
      model: runtime.model,
      mappings: runtime.mappings,
      uidRoot: config.uidRoot,
      shadow: config.shadow,
      source: folder.source,
      clinical: servers.fhir ? new FhirServerSource(servers.fhir) : undefined,
      sink: folder.sink,
      store: runtime.store,
      log,
      software: SOFTWARE,
      metrics,
    };
  } else {
    servers.close();
    await runtime.close();
    throw new TriageError('CONFIG_INVALID', 'configuration is invalid:\n  - ingest.folder: required for the folder mode');
  }
  return {
    runtime,
    servers,
    folder,
    deps,
    retry: { maxAttempts: config.worker.maxAttempts, baseDelayMs: config.worker.retryBaseDelayMs, maxDelayMs: config.worker.retryMaxDelayMs },
    lease: { owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`, leaseMs: config.worker.leaseMs },
    metrics,
    breakers,
    own: { isOwnSeries: ownSeries(config.uidRoot, runtime.model.manifest), ownInstances },
    stopping: false,
    close: async () => {
      servers.close();
      await runtime.close();
    },
  };
}

/** Runs due jobs, `concurrency` at a time, until none is due. */
export async function drainQueue(
  service: Service,
  concurrency: number,
  log: Logger,
  onOutcome?: (outcome: JobOutcome) => void,
): Promise<JobOutcome[]> {
  const outcomes: JobOutcome[] = [];
  const worker = async (): Promise<void> => {
    while (!service.stopping) {
      const job = await service.runtime.store.claim(Date.now(), service.lease);
      if (!job) return;
      const outcome = await runJob(job, service.deps, service.retry, log, service.lease);
      outcomes.push(outcome);
      onOutcome?.(outcome);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

/** One pass of the polling ingest modes on this service's servers; returns how many studies were enqueued. */
function ingestPass(service: Service, config: Config, log: Logger): Promise<number> {
  return pollIngest(config, { ...service.servers, folder: service.folder?.watcher }, service.runtime.store, log, service.own);
}

function ingestFailed(err: unknown, log: Logger): void {
  const e = asTriageError(err, 'ingest');
  log.warn({ event: 'ingest.error', code: e.code, err: e.message }, 'ingest pass failed; will try again');
}

/** `run-once`: one pass of the polling ingest modes (Orthanc /changes, QIDO-RS), then every due job. */
export async function runOnce(config: Config, log: Logger): Promise<{ enqueued: number; outcomes: JobOutcome[] }> {
  const service = await openService(config, log);
  try {
    const poll = (): Promise<number> => ingestPass(service, config, log);
    // With ingest.stableAgeS the studies the first pass saw come due once they settled: wait for
    // those (at most stableAgeS), not for later arrivals, which are the next run's.
    // Each wait ends with another pass: an instance that came meanwhile pushes its study back,
    // and the changes feed's barrier needs a pass after the due time.
    let enqueued = await poll();
    const settledBy = Date.now() + (config.ingest.stableAgeS ?? 0) * 1000;
    const outcomes = await drainQueue(service, config.worker.concurrency, log);
    for (let due = await service.runtime.store.nextDueAt(); due !== undefined && due <= settledBy; due = await service.runtime.store.nextDueAt()) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now()) + 1));
      enqueued += await poll();
      outcomes.push(...(await drainQueue(service, config.worker.concurrency, log)));
    }
    await correctionsPass(service, config, log);
    // Settles the folder studies that just ended (moved to .done or aside); a study that
    // changed meanwhile is enqueued for the next run instead.
    if (service.folder) await service.folder.watcher.pass(service.runtime.store, log, true);
    return { enqueued, outcomes };
  } finally {
    await service.close();
  }
}

/** Studies in the PACS whose StudyDate is in [since, until] (YYYYMMDD), by QIDO-RS with paging. */
export async function findStudiesByDate(service: Service, since: string, until: string, pageSize = 100): Promise<string[]> {
  const dicomweb = service.servers.dicomweb;
  if (!dicomweb) throw new TriageError('CONFIG_INVALID', 'configuration is invalid:\n  - pacs: required for this command (set pacs.baseUrl, or PACS_TRIAGE_PACS__BASE_URL)');
  const uids: string[] = [];
  for (let offset = 0; ; offset += pageSize) {
    const page = await dicomweb.searchStudies({ StudyDate: `${since}-${until}`, includefield: ['0020000D'] }, { limit: pageSize, offset });
    uids.push(...page.flatMap((json) => studyUidOf(naturalize(json)) ?? []));
    if (page.length < pageSize) return [...new Set(uids)];
  }
}

/**
 * `backfill`: every study of a date range, found by QIDO-RS, queued and processed now. Studies
 * already processed with the same inputs end as "unchanged" and write nothing.
 */
export async function backfill(
  config: Config,
  range: { since: string; until: string },
  log: Logger,
  progress: (done: number, total: number) => void,
): Promise<{ found: number; outcomes: JobOutcome[] }> {
  const service = await openService(config, log);
  try {
    const uids = await findStudiesByDate(service, range.since, range.until);
    await service.runtime.store.enqueue(uids.map((studyInstanceUID) => ({ studyInstanceUID, source: 'dicomweb-qido' as const })));
    let done = 0;
    progress(0, uids.length);
    const outcomes = await drainQueue(service, config.worker.concurrency, log, () => progress(++done, uids.length));
    return { found: uids.length, outcomes };
  } finally {
    await service.close();
  }
}

/** `process <uid>`: one study now, whatever the ingest saw. */
export async function processOne(config: Config, studyInstanceUID: string, log: Logger): Promise<JobOutcome> {
  const service = await openService(config, log);
  try {
    await service.runtime.store.enqueue([{ studyInstanceUID, source: 'cli' }]);
    // Only this study's job: other due jobs in the store are not this command's business.
    const job = await service.runtime.store.claim(Number.MAX_SAFE_INTEGER - service.lease.leaseMs, service.lease, studyInstanceUID);
    if (!job) throw new Error('the job just enqueued could not be claimed (another worker holds it)');
    return await runJob(job, service.deps, { ...service.retry, maxAttempts: job.attempts }, log, service.lease);
  } finally {
    await service.close();
  }
}

/** `/readyz`: each upstream answers, the model is loaded. */
async function readiness(service: Service): Promise<{ ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> }> {
  const check = async (run: () => Promise<unknown>): Promise<{ ok: boolean; detail?: string }> => {
    try {
      await run();
      return { ok: true };
    } catch (err) {
      const e = asTriageError(err);
      return { ok: false, detail: `${e.code}: ${e.message.slice(0, 200)}` };
    }
  };
  const { dicomweb, fhir } = service.servers;
  const checks: Record<string, { ok: boolean; detail?: string }> = {
    ...(dicomweb ? { pacs: await check(() => dicomweb.ping(5_000)) } : {}),
    model: { ok: true, detail: `${service.runtime.model.manifest.id}@${service.runtime.model.manifest.version} on ${service.runtime.model.provider}` },
  };
  if (fhir) checks['fhir'] = await check(() => fhir.capabilities());
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}

/**
 * `serve`: ingest on a schedule, workers, and the HTTP API, until SIGINT/SIGTERM. On a signal it
 * stops ingest and claims, lets in-flight jobs finish for up to worker.drainTimeoutMs, then
 * exits; a job still running then keeps its lease and is reclaimed by the next worker.
 */
export async function serve(config: Config, log: Logger): Promise<void> {
  const service = await openService(config, log);
  // Set once the pool exists; the API (webhook) is created first so that it can be listening.
  let wakeWorkers = (): void => undefined;
  const app = createApp({
    log,
    store: service.runtime.store,
    shadow: config.shadow,
    ...(config.api.token ? { token: config.api.token } : {}),
    status: () => ({ provider: service.runtime.model.provider, model: `${service.runtime.model.manifest.id}@${service.runtime.model.manifest.version}` }),
    metrics: { contentType: service.metrics.contentType, text: () => service.metrics.text() },
    ready: () => readiness(service),
    ...(ingestModes(config).includes('webhook') && config.ingest.webhook
      ? {
          webhook: {
            secret: config.ingest.webhook.secret,
            bodyLimit: config.ingest.webhook.bodyLimit,
            ...(config.ingest.stableAgeS !== undefined ? { stableAgeMs: Math.round(config.ingest.stableAgeS * 1000) } : {}),
            isOwnSeries: service.own.isOwnSeries,
          },
        }
      : {}),
    onEnqueued: () => wakeWorkers(),
    ...(service.servers.dicomweb ? {} : { retractUnavailable: NO_PACS_TO_RETRACT }),
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.api.port, config.api.host, () => resolve(s));
    s.on('error', reject);
  });
  const address = server.address();
  log.info({ event: 'api.listening', address }, 'API listening');
  // Workers run apart from ingest: a burst being worked through does not hold back polling,
  // and a study enqueued by any mode is claimed as soon as a worker is free.
  const pool = new WorkerPool<JobOutcome>({
    concurrency: config.worker.concurrency,
    claim: () => service.runtime.store.claim(Date.now(), service.lease),
    run: (job) => runJob(job, service.deps, service.retry, log, service.lease),
    idleMs: Math.min(1_000, config.ingest.pollIntervalS * 1_000),
    nextDue: () => service.runtime.store.nextDueAt(),
    onError: (err) => log.error({ event: 'worker.error', err: (err as Error).message }, 'worker loop error'),
  });
  wakeWorkers = () => pool.wake();
  pool.start();
  let busy = false;
  // A study settling behind the changes feed's barrier (ingest.stableAgeS) starts once a pass
  // begun after its due time has found nothing new: that pass is run at the due time, not at the
  // next tick, which would add up to a poll interval.
  let settleTimer: NodeJS.Timeout | undefined;
  const scheduleSettlePass = async (): Promise<void> => {
    const at = await service.runtime.store.nextSettleAt();
    clearTimeout(settleTimer);
    if (at === undefined || service.stopping) return;
    settleTimer = setTimeout(() => void settlePass(), Math.max(0, at - Date.now()) + 1);
  };
  const settlePass = async (): Promise<void> => {
    if (service.stopping) return;
    if (busy) {
      // The pass running now may have begun before the due time: look again right after it.
      settleTimer = setTimeout(() => void settlePass(), 25);
      return;
    }
    busy = true;
    try {
      await ingestPass(service, config, log);
      pool.wake();
    } catch (err) {
      // Not rescheduled: the next tick tries again (a PACS that is down is not asked 20 times a second).
      ingestFailed(err, log);
      return;
    } finally {
      busy = false;
    }
    await scheduleSettlePass();
  };
  const tick = async (): Promise<void> => {
    if (busy || service.stopping) return; // a slow pass is not overlapped by the next one
    busy = true;
    try {
      if (config.retention.imagesMaxAgeH !== undefined) {
        const purged = await service.runtime.store.purgeImages(Date.now() - config.retention.imagesMaxAgeH * 3_600_000);
        if (purged > 0) log.info({ event: 'retention.purged', images: purged }, 'old images purged');
      }
      await ingestPass(service, config, log);
      // Every pass, not only one that enqueued: a pass may lift a settling study's barrier.
      pool.wake();
    } catch (err) {
      ingestFailed(err, log);
    }
    try {
      await correctionsPass(service, config, log);
    } finally {
      busy = false;
    }
    await scheduleSettlePass();
  };
  const task = cron.schedule(`*/${config.ingest.pollIntervalS} * * * * *`, () => void tick(), { noOverlap: true });
  void tick();
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ event: 'service.stopping', signal, drainTimeoutMs: config.worker.drainTimeoutMs }, 'stopping: draining in-flight jobs');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  service.stopping = true;
  clearTimeout(settleTimer);
  await task.stop();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const deadline = Date.now() + config.worker.drainTimeoutMs;
  const drained = await pool.stop(config.worker.drainTimeoutMs);
  // An ingest pass in progress writes its cursor with its enqueue; let it end too.
  while (busy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  server.closeAllConnections();
  await closed;
  if (!drained || busy) {
    // Exit without closing the store under the running jobs: their leases expire and the next
    // worker takes them (write-back is idempotent), exactly as after a crash.
    log.warn({ event: 'service.drain.timeout', inFlight: pool.inFlight }, 'in-flight jobs did not finish in time; their leases expire and another run takes them');
    process.exit(0);
  }
  log.info({ event: 'service.drained' }, 'in-flight jobs finished');
  await service.close();
}

const NO_PACS_TO_RETRACT =
  'retraction needs a PACS (pacs.baseUrl): the folder mode alone writes its results as files in ingest.folder.outDir; delete or replace them there';

/** Retraction deps on this service's servers; undefined without a PACS (the folder mode alone wrote nothing to one). */
function retractionDeps(service: Service, log: Logger): RetractionDeps | undefined {
  const dicomweb = service.servers.dicomweb;
  if (!dicomweb) return undefined;
  return {
    store: service.runtime.store,
    ports: serverRetractionPorts({ dicomweb, orthanc: service.servers.orthanc, fhir: service.servers.fhir }),
    uidRoot: service.deps.uidRoot,
    shadow: service.deps.shadow,
    software: SOFTWARE,
    log,
    metrics: service.metrics,
  };
}

/**
 * Corrections and retention, once per pass of `serve` and `run-once`: stored free text past
 * retention.reportTextMaxAgeH cleared, the deleted-study sweep when due, then every due
 * retraction. Never throws: a failing part is logged and tried again next pass.
 */
export async function correctionsPass(service: Service, config: Config, log: Logger): Promise<void> {
  const store = service.runtime.store;
  if (config.retention.reportTextMaxAgeH !== undefined) {
    const purged = await store.purgeText(Date.now() - config.retention.reportTextMaxAgeH * 3_600_000);
    if (purged.feedbackNotes + purged.retractionReasons > 0) log.info({ event: 'retention.purged', ...purged }, 'old stored text cleared');
  }
  const deps = retractionDeps(service, log);
  if (!deps) return;
  const c = config.corrections;
  if (c.deletedSweep && !service.stopping) {
    try {
      const options = { now: Date.now(), lookbackMs: c.deletedSweepLookbackDays * 86_400_000, maxStudies: c.deletedSweepMaxStudies };
      await sweepIfDue(store, (uid) => deps.ports.studyExists(uid), c.deletedSweepIntervalMin * 60_000, options, log);
    } catch (err) {
      const e = asTriageError(err, 'corrections.sweep');
      log.warn({ event: 'corrections.sweep.error', code: e.code, err: e.message }, 'deleted-study sweep failed; will try again');
    }
  }
  try {
    await drainRetractions(deps, service.retry, service.lease, () => service.stopping);
  } catch (err) {
    const e = asTriageError(err, 'retract');
    log.warn({ event: 'retraction.error', code: e.code, err: e.message }, 'retractions pass failed; will try again');
  }
}

/** `retract <uid> --reason`: records the retraction and runs it now; when an upstream is away it stays pending for `serve`. */
export async function retractOne(
  config: Config,
  studyInstanceUID: string,
  request: { reason: string; by?: string },
  log: Logger,
): Promise<{ retraction: Retraction; created: boolean; outcome?: RetractionOutcome }> {
  const service = await openService(config, log);
  try {
    const store = service.runtime.store;
    const deps = retractionDeps(service, log);
    // Refused before anything is recorded: a retraction nothing would ever run is worse than none.
    if (!deps) throw new TriageError('CONFIG_INVALID', `configuration is invalid:\n  - pacs: ${NO_PACS_TO_RETRACT}`);
    const recorded = await requestMarkedWrong(store, studyInstanceUID, request.reason, request.by);
    const claimed = await store.claimRetraction(Date.now(), service.lease, studyInstanceUID);
    if (!claimed) return { ...recorded, retraction: await store.getRetraction(studyInstanceUID) ?? recorded.retraction };
    const outcome = await runRetractionJob(claimed, deps, service.retry, service.lease);
    return { retraction: await store.getRetraction(studyInstanceUID) ?? recorded.retraction, created: recorded.created, outcome };
  } finally {
    await service.close();
  }
}
