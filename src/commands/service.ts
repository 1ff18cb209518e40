import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import cron from 'node-cron';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { createApp } from '../api/app.ts';
import { asTriageError } from '../domain/errors.ts';
import { connectServers, openRuntime, serverPipeline, type Runtime, type Servers } from '../main.ts';
import { ingestModes, pollIngest } from '../pipeline/ingest/modes.ts';
import type { PipelineDeps } from '../pipeline/process-study.ts';
import { runJob, type JobOutcome, type Lease, type RetryPolicy } from '../pipeline/worker.ts';
import { CircuitBreaker } from '../adapters/http/breaker.ts';
import { instanceMetaOf, naturalize } from '../adapters/dicomweb/dicom-json.ts';
import { Metrics } from '../observability/metrics.ts';

export interface Service {
  runtime: Runtime;
  servers: Servers;
  deps: PipelineDeps;
  retry: RetryPolicy;
  lease: Lease;
  metrics: Metrics;
  breakers: { pacs: CircuitBreaker; fhir: CircuitBreaker };
  /** Set on SIGTERM: workers finish the job in hand and claim no more. */
  stopping: boolean;
  close(): Promise<void>;
}

/** Breakers (one per upstream, shared by its clients) and error counters on every client. */
function instrument(servers: Servers, config: Config, metrics: Metrics, log: Logger): Service['breakers'] {
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
  for (const http of [servers.dicomweb.http, servers.orthanc?.http]) {
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

export async function openService(config: Config, log: Logger): Promise<Service> {
  const servers = connectServers(config);
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
  return {
    runtime,
    servers,
    deps: { ...serverPipeline(config, runtime, servers, log), metrics },
    retry: { maxAttempts: config.worker.maxAttempts, baseDelayMs: config.worker.retryBaseDelayMs, maxDelayMs: config.worker.retryMaxDelayMs },
    lease: { owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`, leaseMs: config.worker.leaseMs },
    metrics,
    breakers,
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
      const job = service.runtime.store.claim(Date.now(), service.lease);
      if (!job) return;
      const outcome = await runJob(job, service.deps, service.retry, log, service.lease);
      outcomes.push(outcome);
      onOutcome?.(outcome);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

/** `run-once`: one pass of the polling ingest modes (Orthanc /changes, QIDO-RS), then every due job. */
export async function runOnce(config: Config, log: Logger): Promise<{ enqueued: number; outcomes: JobOutcome[] }> {
  const service = await openService(config, log);
  try {
    const enqueued = await pollIngest(config, service.servers, service.runtime.store, log);
    const outcomes = await drainQueue(service, config.worker.concurrency, log);
    return { enqueued, outcomes };
  } finally {
    await service.close();
  }
}

/** Studies in the PACS whose StudyDate is in [since, until] (YYYYMMDD), by QIDO-RS with paging. */
export async function findStudiesByDate(service: Service, since: string, until: string, pageSize = 100): Promise<string[]> {
  const uids: string[] = [];
  for (let offset = 0; ; offset += pageSize) {
    const page = await service.servers.dicomweb.searchStudies({ StudyDate: `${since}-${until}`, includefield: ['0020000D'] }, { limit: pageSize, offset });
    uids.push(...page.map((json) => instanceMetaOf(naturalize(json)).StudyInstanceUID).filter((uid) => uid !== ''));
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
    service.runtime.store.enqueue(uids.map((studyInstanceUID) => ({ studyInstanceUID, source: 'dicomweb-qido' as const })));
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
    service.runtime.store.enqueue([{ studyInstanceUID, source: 'cli' }]);
    // Only this study's job: other due jobs in the store are not this command's business.
    const job = service.runtime.store.claim(Number.MAX_SAFE_INTEGER - service.lease.leaseMs, service.lease, studyInstanceUID);
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
    pacs: await check(() => dicomweb.ping(5_000)),
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
  const app = createApp({
    log,
    store: service.runtime.store,
    shadow: config.shadow,
    ...(config.api.token ? { token: config.api.token } : {}),
    status: () => ({ provider: service.runtime.model.provider, model: `${service.runtime.model.manifest.id}@${service.runtime.model.manifest.version}` }),
    metrics: { contentType: service.metrics.contentType, text: () => service.metrics.text() },
    ready: () => readiness(service),
    ...(ingestModes(config).includes('webhook') && config.ingest.webhook
      ? { webhook: { secret: config.ingest.webhook.secret, bodyLimit: config.ingest.webhook.bodyLimit } }
      : {}),
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.api.port, config.api.host, () => resolve(s));
    s.on('error', reject);
  });
  const address = server.address();
  log.info({ event: 'api.listening', address }, 'API listening');
  let busy = false;
  const tick = async (): Promise<void> => {
    if (busy || service.stopping) return; // a slow pass is not overlapped by the next one
    busy = true;
    try {
      if (config.retention.imagesMaxAgeH !== undefined) {
        const purged = service.runtime.store.purgeImages(Date.now() - config.retention.imagesMaxAgeH * 3_600_000);
        if (purged > 0) log.info({ event: 'retention.purged', images: purged }, 'old images purged');
      }
      await pollIngest(config, service.servers, service.runtime.store, log);
      await drainQueue(service, config.worker.concurrency, log);
    } catch (err) {
      const e = asTriageError(err, 'ingest');
      log.warn({ event: 'ingest.error', code: e.code, err: e.message }, 'ingest pass failed; will try again');
    } finally {
      busy = false;
    }
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
  await task.stop();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const deadline = Date.now() + config.worker.drainTimeoutMs;
  while (busy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  server.closeAllConnections();
  await closed;
  if (busy) {
    // Exit without closing the store under the running jobs: their leases expire and the next
    // worker takes them (write-back is idempotent), exactly as after a crash.
    log.warn({ event: 'service.drain.timeout' }, 'in-flight jobs did not finish in time; their leases expire and another run takes them');
    process.exit(0);
  }
  log.info({ event: 'service.drained' }, 'in-flight jobs finished');
  await service.close();
}
