/**
 * `serve`: ingest on a schedule, workers, and the HTTP API, until SIGINT/SIGTERM. On a signal it
 * stops ingest and claims, lets in-flight jobs finish for up to worker.drainTimeoutMs, then
 * exits; a job still running then keeps its lease and is reclaimed by the next worker.
 */
import { logEvent } from '../domain/log-events.ts';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { createApp } from '../api/app.ts';
import { asTriageError, TriageError } from '../domain/errors.ts';
import { ingestModes } from '../pipeline/ingest/modes.ts';
import { WorkerPool } from '../pipeline/pool.ts';
import { runJob, type JobOutcome } from '../pipeline/worker.ts';
import { backfillGate, backfillLimits } from './backfill-gate.ts';
import { claimOrder, correctionsPass, ingestFailed, ingestPass, retentionPass } from './passes.ts';
import { NO_PACS_TO_RETRACT, openService, type Service } from './service.ts';

type Check = { ok: boolean; warning?: boolean; detail?: string };

/**
 * `/readyz`: each upstream answers, the model is loaded. An optional write refused for a
 * configuration reason is listed too (`warning`, one per cause, with its fix): the service is
 * ready — its results are written — but something the operator set up is not used.
 */
export async function readiness(service: Service): Promise<{ ready: boolean; checks: Record<string, Check> }> {
  const check = async (run: () => Promise<unknown>): Promise<Check> => {
    try {
      await run();
      return { ok: true };
    } catch (err) {
      const e = asTriageError(err);
      return { ok: false, detail: `${e.code}: ${e.message.slice(0, 200)}` };
    }
  };
  const { dicomweb, fhir } = service.servers;
  const models = service.runtime.models;
  const checks: Record<string, Check> = {
    ...(dicomweb ? { pacs: await check(() => dicomweb.ping(5_000)) } : {}),
    model: { ok: true, detail: models.map((m) => `${m.manifest.id}@${m.manifest.version} on ${m.provider}`).join(', ') },
  };
  if (fhir) checks['fhir'] = await check(() => fhir.capabilities());
  for (const { warning, studies, lastAt } of service.warnings.list()) {
    checks[`warning:${warning.cause}`] = {
      ok: true,
      warning: true,
      detail: `${warning.message}. Fix: ${warning.fix} (${studies} stud${studies === 1 ? 'y' : 'ies'} since start, last ${new Date(lastAt).toISOString()})`,
    };
  }
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}

/**
 * A task run every `intervalMs` on a plain timer, never two runs at once (a slow run is not
 * overlapped; the tick that finds it busy is skipped). No cron: an interval is an interval, of
 * any length.
 */
export class Ticker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly task: () => Promise<void>,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    void this.tick();
  }

  /** Runs the task now unless it is running. */
  tick(): Promise<void> {
    this.running ??= this.task().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** No further ticks; resolves when the run in progress (if any) has ended. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}

/** Refused before anything opens: an API without a token is an explicit, loopback-only choice. */
export function checkApiAuth(config: Config): void {
  if (config.api.auth === 'token' && config.api.token === undefined) {
    throw new TriageError(
      'CONFIG_INVALID',
      'configuration is invalid:\n  - api.token: serve needs a token for its API: set api.token (or PACS_TRIAGE_API__TOKEN, or PACS_TRIAGE_API__TOKEN_FILE=<file>) ' +
        'to a random string of at least 16 characters, e.g. `openssl rand -hex 32`; or, on a loopback api.host only, set api.auth: none',
    );
  }
}

/**
 * Says when the event loop was held for more than 200 ms (a tick 100 ms late by that much): what
 * answers /healthz and the webhook must never wait on decoding or a slow synchronous step.
 */
function eventLoopWatchdog(log: Logger): NodeJS.Timeout {
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const delayMs = Math.round(now - last - 100);
    last = now;
    if (delayMs > 200) logEvent(log, 'service.event_loop.blocked', { delayMs });
  }, 100);
  timer.unref();
  return timer;
}

export async function serve(config: Config, log: Logger): Promise<void> {
  checkApiAuth(config);
  const service = await openService(config, log);
  const store = service.runtime.store;
  const model = service.runtime.model;
  // Set once the pool exists; the API (webhook) is created first so that it can be listening.
  let wakeWorkers = (): void => undefined;
  const app = createApp({
    log,
    store,
    shadow: config.shadow,
    ...(config.api.token ? { token: config.api.token } : {}),
    ...(config.api.metricsToken ? { metricsToken: config.api.metricsToken } : {}),
    hosts: { host: config.api.host, allowed: config.api.allowedHosts },
    status: () => ({ provider: model.provider, model: service.runtime.models.map((m) => `${m.manifest.id}@${m.manifest.version}`).join(', ') }),
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
    ...(config.api.viewerUrlTemplate ? { viewerUrlTemplate: config.api.viewerUrlTemplate } : {}),
    showPatientIdentity: config.api.showPatientIdentity,
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.api.port, config.api.host, () => resolve(s));
    s.on('error', reject);
  });
  logEvent(log, 'api.listening', { address: server.address() });
  // Workers run apart from ingest: a burst being worked through does not hold back polling,
  // and a study enqueued by any mode is claimed as soon as a worker is free.
  const gate = backfillGate(backfillLimits(config.worker), (order) => store.claim(Date.now(), service.lease, undefined, order));
  const pool = new WorkerPool<JobOutcome>({
    concurrency: config.worker.concurrency,
    claim: () => gate.claim(() => claimOrder(service)),
    run: (job) => gate.run(job, () => runJob(job, service.deps, service.retry, log, service.lease)),
    idleMs: Math.min(1_000, config.ingest.pollIntervalS * 1_000),
    nextDue: () => store.nextDueAt(),
    onError: (err) => logEvent(log, 'worker.error', { err: (err as Error).message }),
  });
  wakeWorkers = () => pool.wake();
  pool.start();
  // Another replica's enqueue (a webhook it received, a poll it led) wakes this one's workers at once.
  const unsubscribe = store.onWake?.((kind) => {
    if (kind === 'job') pool.wake();
  });

  // One ingest pass at a time, whoever asks: the schedule, or a settling study coming due.
  let passing: Promise<boolean> | undefined;
  const pass = (): Promise<boolean> =>
    (passing ??= ingestPass(service)
      .then(
        () => true,
        (err: unknown) => {
          ingestFailed(service, err);
          return false;
        },
      )
      .finally(() => {
        passing = undefined;
        // Every pass, not only one that enqueued: a pass may lift a settling study's barrier.
        pool.wake();
      }));
  // A study settling behind the changes feed's barrier (ingest.stableAgeS) starts once a pass
  // begun after its due time has found nothing new: that pass is run at the due time, not at the
  // next tick, which would add up to a poll interval.
  let settleTimer: NodeJS.Timeout | undefined;
  const scheduleSettlePass = async (): Promise<void> => {
    const at = await store.nextSettleAt();
    clearTimeout(settleTimer);
    if (at === undefined || service.stopping) return;
    settleTimer = setTimeout(() => void settlePass(), Math.max(0, at - Date.now()) + 1);
  };
  const settlePass = async (): Promise<void> => {
    if (service.stopping) return;
    // A pass running now may have begun before the due time: look again right after it.
    if (passing) await passing;
    // Not rescheduled after a failure: the next tick tries again (a PACS that is down is not asked 20 times a second).
    if (await pass()) await scheduleSettlePass();
  };
  const ticker = new Ticker(config.ingest.pollIntervalS * 1_000, async () => {
    if (service.stopping) return;
    try {
      await retentionPass(service);
    } catch (err) {
      logEvent(log, 'retention.error', { err: (err as Error).message });
    }
    await pass();
    await correctionsPass(service);
    await scheduleSettlePass();
  });
  ticker.start();
  const watchdog = eventLoopWatchdog(log);

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logEvent(log, 'service.stopping', { signal, drainTimeoutMs: config.worker.drainTimeoutMs });
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  service.stopping = true;
  unsubscribe?.();
  clearInterval(watchdog);
  clearTimeout(settleTimer);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const deadline = Date.now() + config.worker.drainTimeoutMs;
  const drained = await pool.stop(config.worker.drainTimeoutMs);
  // An ingest pass in progress writes its cursor with its enqueue; let it end too.
  let deadlineTimer: NodeJS.Timeout | undefined;
  const ingestEnded = await Promise.race([
    Promise.all([ticker.stop(), passing]).then(() => true),
    new Promise<false>((resolve) => (deadlineTimer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now())))),
  ]);
  // Cleared, or the timer alone would keep the process alive until the deadline.
  clearTimeout(deadlineTimer);
  server.closeAllConnections();
  await closed;
  if (!drained || !ingestEnded) {
    // Exit without closing the store under the running jobs: their leases expire and the next
    // worker takes them (write-back is idempotent), exactly as after a crash.
    logEvent(log, 'service.drain.timeout', { inFlight: pool.inFlight });
    process.exit(0);
  }
  logEvent(log, 'service.drained', {});
  await service.close();
}
