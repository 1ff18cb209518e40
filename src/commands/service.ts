import type { Server } from 'node:http';
import cron from 'node-cron';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { createApp } from '../api/app.ts';
import { asTriageError } from '../domain/errors.ts';
import { connectServers, openRuntime, serverPipeline, type Runtime, type Servers } from '../main.ts';
import { pollOrthancChanges } from '../pipeline/ingest/orthanc-changes.ts';
import type { PipelineDeps } from '../pipeline/process-study.ts';
import { runJob, DEFAULT_RETRY, type JobOutcome, type RetryPolicy } from '../pipeline/worker.ts';

export interface Service {
  runtime: Runtime;
  servers: Servers;
  deps: PipelineDeps;
  retry: RetryPolicy;
  close(): Promise<void>;
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
  return {
    runtime,
    servers,
    deps: serverPipeline(config, runtime, servers, log),
    retry: { ...DEFAULT_RETRY, maxAttempts: config.worker.maxAttempts },
    close: async () => {
      servers.close();
      await runtime.close();
    },
  };
}

/** Runs due jobs, `concurrency` at a time, until none is due. */
export async function drainQueue(service: Service, concurrency: number, log: Logger): Promise<JobOutcome[]> {
  const outcomes: JobOutcome[] = [];
  const worker = async (): Promise<void> => {
    for (;;) {
      const job = service.runtime.store.claim(Date.now());
      if (!job) return;
      outcomes.push(await runJob(job, service.deps, service.retry, log));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

/** `run-once`: one pass of ingest from Orthanc's /changes, then every due job. */
export async function runOnce(config: Config, log: Logger): Promise<{ enqueued: number; outcomes: JobOutcome[] }> {
  const service = await openService(config, log);
  try {
    let enqueued = 0;
    if (service.servers.orthanc) enqueued = await pollOrthancChanges(service.servers.orthanc, service.runtime.store, config.ingest.changesBatch, log);
    const outcomes = await drainQueue(service, config.worker.concurrency, log);
    return { enqueued, outcomes };
  } finally {
    await service.close();
  }
}

/** `process <uid>`: one study now, whatever the ingest saw. */
export async function processOne(config: Config, studyInstanceUID: string, log: Logger): Promise<JobOutcome> {
  const service = await openService(config, log);
  try {
    service.runtime.store.enqueue([{ studyInstanceUID, source: 'cli' }]);
    const job = service.runtime.store.claim(Number.MAX_SAFE_INTEGER);
    if (!job) throw new Error('the job just enqueued could not be claimed');
    return await runJob(job, service.deps, { ...service.retry, maxAttempts: job.attempts }, log);
  } finally {
    await service.close();
  }
}

/** `serve`: ingest on a schedule, workers, and the HTTP API, until SIGINT/SIGTERM. */
export async function serve(config: Config, log: Logger): Promise<void> {
  const service = await openService(config, log);
  const app = createApp({
    log,
    store: service.runtime.store,
    shadow: config.shadow,
    ...(config.api.token ? { token: config.api.token } : {}),
    status: () => ({ provider: service.runtime.model.provider, model: `${service.runtime.model.manifest.id}@${service.runtime.model.manifest.version}` }),
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.api.port, config.api.host, () => resolve(s));
    s.on('error', reject);
  });
  const address = server.address();
  log.info({ event: 'api.listening', address }, 'API listening');
  let busy = false;
  const tick = async (): Promise<void> => {
    if (busy) return; // a slow pass is not overlapped by the next one
    busy = true;
    try {
      if (service.servers.orthanc) await pollOrthancChanges(service.servers.orthanc, service.runtime.store, config.ingest.changesBatch, log);
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
      log.info({ event: 'service.stopping', signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await task.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  while (busy) await new Promise((r) => setTimeout(r, 100));
  await service.close();
}
