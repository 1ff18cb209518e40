/** The one-shot modes: run-once, process, backfill and retract — each opens the service, does its part, and closes it. */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { TriageError } from '../domain/errors.ts';
import type { Retraction } from '../domain/records.ts';
import { naturalize } from '../dicom/json.ts';
import { studyUidOf } from '../dicom/instance-meta.ts';
import { requestMarkedWrong, runRetractionJob, type RetractionOutcome } from '../pipeline/retract.ts';
import { runJob, type JobOutcome } from '../pipeline/worker.ts';
import { correctionsPass, drainQueue, ingestPass } from './passes.ts';
import { requirePacs } from './servers.ts';
import { NO_PACS_TO_RETRACT, openService, type Service } from './service.ts';

async function withService<T>(config: Config, log: Logger, run: (service: Service) => Promise<T>): Promise<T> {
  const service = await openService(config, log);
  try {
    return await run(service);
  } finally {
    await service.close();
  }
}

/** `run-once`: one pass of the polling ingest modes (Orthanc /changes, QIDO-RS, the folder), then every due job. */
export function runOnce(config: Config, log: Logger): Promise<{ enqueued: number; outcomes: JobOutcome[] }> {
  return withService(config, log, async (service) => {
    const store = service.runtime.store;
    // With ingest.stableAgeS the studies the first pass saw come due once they settled: wait for
    // those (at most stableAgeS), not for later arrivals, which are the next run's.
    // Each wait ends with another pass: an instance that came meanwhile pushes its study back,
    // and the changes feed's barrier needs a pass after the due time.
    let enqueued = await ingestPass(service);
    const settledBy = Date.now() + (config.ingest.stableAgeS ?? 0) * 1000;
    const outcomes = await drainQueue(service, config.worker.concurrency);
    for (let due = await store.nextDueAt(); due !== undefined && due <= settledBy; due = await store.nextDueAt()) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now()) + 1));
      enqueued += await ingestPass(service);
      outcomes.push(...(await drainQueue(service, config.worker.concurrency)));
    }
    await correctionsPass(service);
    // Settles the folder studies that just ended (moved to .done or aside); a study that
    // changed meanwhile is enqueued for the next run instead.
    if (service.folder) await service.folder.watcher.pass(store, log, true);
    return { enqueued, outcomes };
  });
}

/** Studies in the PACS whose StudyDate is in [since, until] (YYYYMMDD), by QIDO-RS with paging. */
export async function findStudiesByDate(service: Service, since: string, until: string, pageSize = 100): Promise<string[]> {
  const dicomweb = requirePacs(service.servers);
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
export function backfill(
  config: Config,
  range: { since: string; until: string },
  log: Logger,
  progress: (done: number, total: number) => void,
): Promise<{ found: number; outcomes: JobOutcome[] }> {
  return withService(config, log, async (service) => {
    const uids = await findStudiesByDate(service, range.since, range.until);
    await service.runtime.store.enqueue(
      uids.map((studyInstanceUID) => ({ studyInstanceUID, source: 'dicomweb-qido' as const })),
      undefined,
      { class: 'backfill' },
    );
    let done = 0;
    progress(0, uids.length);
    const outcomes = await drainQueue(service, config.worker.concurrency, () => progress(++done, uids.length));
    return { found: uids.length, outcomes };
  });
}

/** `process <uid>`: one study now, whatever the ingest saw. */
export function processOne(config: Config, studyInstanceUID: string, log: Logger): Promise<JobOutcome> {
  return withService(config, log, async (service) => {
    const store = service.runtime.store;
    await store.enqueue([{ studyInstanceUID, source: 'cli' }]);
    // Only this study's job: other due jobs in the store are not this command's business.
    const job = await store.claim(Number.MAX_SAFE_INTEGER - service.lease.leaseMs, service.lease, studyInstanceUID);
    if (!job) throw new TriageError('CONFLICT', `the job of study ${studyInstanceUID} is held by another worker; try again when it ends`);
    return runJob(job, service.deps, { ...service.retry, maxAttempts: job.attempts }, log, service.lease);
  });
}

/** `retract <uid> --reason`: records the retraction and runs it now; when an upstream is away it stays pending for `serve`. */
export function retractOne(
  config: Config,
  studyInstanceUID: string,
  request: { reason: string; by?: string },
  log: Logger,
): Promise<{ retraction: Retraction; created: boolean; outcome?: RetractionOutcome }> {
  return withService(config, log, async (service) => {
    const store = service.runtime.store;
    const deps = service.retractions;
    // Refused before anything is recorded: a retraction nothing would ever run is worse than none.
    if (!deps) throw new TriageError('CONFIG_INVALID', `configuration is invalid:\n  - pacs: ${NO_PACS_TO_RETRACT}`);
    const recorded = await requestMarkedWrong(store, studyInstanceUID, request.reason, request.by);
    const claimed = await store.claimRetraction(Date.now(), service.lease, studyInstanceUID);
    if (!claimed) return { ...recorded, retraction: (await store.getRetraction(studyInstanceUID)) ?? recorded.retraction };
    const outcome = await runRetractionJob(claimed, deps, service.retry, service.lease);
    return { retraction: (await store.getRetraction(studyInstanceUID)) ?? recorded.retraction, created: recorded.created, outcome };
  });
}
