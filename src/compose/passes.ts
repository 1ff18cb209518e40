/** What `serve` and `run-once` do each pass: claim and run due jobs, poll the ingest modes, corrections and retention. */
import { logEvent } from '../domain/log-events.ts';
import { asTriageError } from '../domain/errors.ts';
import { ingestModes, pollIngest } from '../pipeline/ingest/modes.ts';
import type { ClaimOrder } from '../state/ports.ts';
import { drainRetractions, sweepIfDue } from '../pipeline/retract.ts';
import { drainVerifications } from '../pipeline/verify.ts';
import { runJob, type JobOutcome } from '../pipeline/worker.ts';
import type { Service } from './service.ts';

/** Urgent first, except every worker.backfillShare-th claim (per process), which looks at backfill first. */
export function claimOrder(service: Service): ClaimOrder {
  const share = service.config.worker.backfillShare;
  return share > 0 && ++service.claims % share === 0 ? 'backfill-first' : 'urgent-first';
}

/** Runs due jobs, `concurrency` at a time, until none is due (or the service stops). */
export async function drainQueue(service: Service, concurrency: number, onOutcome?: (outcome: JobOutcome) => void): Promise<JobOutcome[]> {
  const outcomes: JobOutcome[] = [];
  const worker = async (): Promise<void> => {
    while (!service.stopping) {
      const job = await service.runtime.store.claim(Date.now(), service.lease, undefined, claimOrder(service));
      if (!job) return;
      const outcome = await runJob(job, service.deps, service.retry, service.log, service.lease);
      outcomes.push(outcome);
      onOutcome?.(outcome);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

/**
 * Whether this replica runs `name` now. With a store shared by replicas (one that offers
 * leadership), each polling source and the deleted-study sweep have one runner at a time: taken
 * when free, kept while held, given up when its connection ends. A store of one machine: always.
 */
export async function leads(service: Service, name: string): Promise<boolean> {
  const store = service.runtime.store;
  if (!store.tryLeadership) return true;
  const held = service.leaderships.get(name);
  if (held) return true;
  const taken = await store.tryLeadership(name);
  if (!taken) return false;
  service.leaderships.set(name, taken);
  void taken.ended.then(() => {
    if (service.leaderships.get(name) === taken) service.leaderships.delete(name);
  });
  logEvent(service.log, 'service.leadership', { name, held: true });
  return true;
}

/** One pass of the polling ingest modes this replica leads; returns how many studies were enqueued. */
export async function ingestPass(service: Service): Promise<number> {
  const may = new Set<string>();
  for (const mode of ingestModes(service.config)) if (mode !== 'webhook' && (await leads(service, `ingest:${mode}`))) may.add(mode);
  return pollIngest(service.config, { ...service.servers, folder: service.folder?.watcher }, service.runtime.store, service.log, service.own, (mode) => may.has(mode));
}

export function ingestFailed(service: Service, err: unknown): void {
  const e = asTriageError(err, 'ingest');
  logEvent(service.log, 'ingest.error', { code: e.code, err: e.message });
}

/** Retention of images (serve's pass). */
export async function retentionPass(service: Service): Promise<void> {
  const { retention } = service.config;
  if (retention.imagesMaxAgeH === undefined) return;
  const purged = await service.runtime.store.purgeImages(Date.now() - retention.imagesMaxAgeH * 3_600_000);
  if (purged > 0) logEvent(service.log, 'retention.purged', { images: purged });
}

/**
 * Corrections and retention, once per pass of `serve` and `run-once`: stored free text past
 * retention.reportTextMaxAgeH cleared, ended jobs past retention.jobsMaxAgeDays deleted, the
 * readers' accepts to write to the EHR (verifications), the deleted-study sweep when due, then
 * every due retraction. Never throws: a failing part is logged and tried again next pass.
 */
export async function correctionsPass(service: Service): Promise<void> {
  const { config, log } = service;
  const store = service.runtime.store;
  try {
    if (config.retention.reportTextMaxAgeH !== undefined) {
      const purged = await store.purgeText(Date.now() - config.retention.reportTextMaxAgeH * 3_600_000);
      if (purged.feedbackNotes + purged.retractionReasons > 0) logEvent(log, 'retention.purged', { ...purged });
    }
    const jobs = await store.pruneJobs(Date.now() - config.retention.jobsMaxAgeDays * 86_400_000);
    if (jobs > 0) logEvent(log, 'retention.purged', { jobs });
  } catch (err) {
    const e = asTriageError(err, 'retention');
    logEvent(log, 'retention.error', { code: e.code, err: e.message });
  }
  try {
    await drainVerifications(service.verifications, service.retry, service.lease, () => service.stopping);
  } catch (err) {
    const e = asTriageError(err, 'verify');
    logEvent(log, 'verification.error', { code: e.code, err: e.message });
  }
  const deps = service.retractions;
  if (!deps) return;
  const c = config.corrections;
  if (c.deletedSweep && !service.stopping && (await leads(service, 'corrections:sweep'))) {
    try {
      const options = { now: Date.now(), lookbackMs: c.deletedSweepLookbackDays * 86_400_000, maxStudies: c.deletedSweepMaxStudies };
      await sweepIfDue(store, (uid) => deps.ports.studyExists(uid), c.deletedSweepIntervalMin * 60_000, options, log);
    } catch (err) {
      const e = asTriageError(err, 'corrections.sweep');
      logEvent(log, 'corrections.sweep.error', { code: e.code, err: e.message });
    }
  }
  try {
    await drainRetractions(deps, service.retry, service.lease, () => service.stopping);
  } catch (err) {
    const e = asTriageError(err, 'retract');
    logEvent(log, 'retraction.error', { code: e.code, err: e.message });
  }
}
