/**
 * Corrections: a result marked wrong, or a study deleted in the PACS, is retracted where it was
 * written — never silently left behind.
 *
 *  - FHIR: every RiskAssessment of the study's results (found by their result-key identifier) is
 *    set to `entered-in-error` with If-Match, and a Provenance (activity NULLIFY, the reason) is
 *    created once per result (conditional create on its tag).
 *  - PACS, while the study is there: an IOCM rejection note (KOS "Rejected for Quality Reasons")
 *    naming our SRs, and on Orthanc the priority metadata set to `retracted`. A deleted study took
 *    its SRs with it: only the FHIR side and the store change. (encode/retraction.ts says why a
 *    rejection note and not a superseding SR.)
 *
 * A retraction is durable work in the store (table `retractions`), claimed with a lease and
 * retried with backoff like write-back: an outage delays it, never loses it, and retryable
 * failures never dead-letter it. Each write's flag is saved as soon as it succeeds and every write
 * is idempotent (deterministic KOS UID, If-Match updates skipped when already entered-in-error,
 * conditional create), so a retraction retried after a crash writes nothing twice.
 *
 * Deleted studies: Orthanc 1.10's /changes does not record a deletion (measured: DELETE
 * /studies/{id} logs no change and removes the study's earlier changes), and a generic DICOMweb
 * PACS has no feed at all. So a sweep checks done studies by QIDO-RS (one cheap query each),
 * bounded per pass and paged by a cursor across passes; see sweepDeletedStudies.
 */
import { logEvent } from '../domain/log-events.ts';
import type { Logger } from 'pino';
import { TriageError, asTriageError } from '../domain/errors.ts';
import type { FhirResource, InstanceMeta } from '../domain/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { AuditEntry, Retraction, StoredResult } from '../domain/records.ts';
import type { Store } from '../state/ports.ts';
import { resultIdentifier } from './encode/fhir.ts';
import { encodeRejectionNote, enteredInError, encodeRetractionProvenance, type RejectedSr } from './encode/retraction.ts';
import { studyMetaOf } from './encode/study-modules.ts';
import { nextAttemptDelay, type Lease, type RetryPolicy } from './worker.ts';
import { fullyWritten } from './writeback/write-back.ts';
import { configurationRefusal } from './writeback/optional-writes.ts';
import type { RetractionPorts } from './ports.ts';

export type { RetractionPorts } from './ports.ts';

export interface RetractionDeps {
  store: Store;
  ports: RetractionPorts;
  uidRoot: string;
  /** Nothing was written back in shadow mode, so nothing is retracted there either. */
  shadow: boolean;
  software: { name: string; version: string };
  log: Logger;
  metrics?: Metrics;
}

/** A retraction that must wait: the study's job is still writing one of the results it retracts. */
export class RetractionDeferred extends TriageError {
  constructor(message: string) {
    super('CONFLICT', message, { where: 'retract' });
  }
}

/** What to reject in the PACS: our SRs of these results that the study still holds. Pure. */
export function rejectedSrs(results: readonly StoredResult[], instances: readonly InstanceMeta[]): RejectedSr[] {
  const present = new Map(instances.map((i) => [i.SOPInstanceUID, i]));
  const out = new Map<string, RejectedSr>();
  for (const r of results) {
    const sr = present.get(r.srSopInstanceUID);
    if (!sr) continue;
    out.set(r.srSopInstanceUID, { seriesInstanceUID: sr.SeriesInstanceUID || r.srSeriesInstanceUID, sopInstanceUID: r.srSopInstanceUID, ...(sr.SOPClassUID ? { sopClassUID: sr.SOPClassUID } : {}) });
  }
  return [...out.values()];
}

/**
 * The instance whose Patient and Study attributes the rejection note copies: a source image of a
 * retracted result when the study still has one, else any instance that is not ours. Pure.
 */
export function studyInstanceFor(results: readonly StoredResult[], instances: readonly InstanceMeta[]): InstanceMeta | undefined {
  const sources = new Set(results.flatMap((r) => r.sourceSopInstanceUIDs));
  return instances.find((i) => sources.has(i.SOPInstanceUID)) ?? instances.find((i) => i.Modality !== 'SR' && i.Modality !== 'KO') ?? instances[0];
}

/**
 * The job is still writing one of these results (queued or running with a result not yet fully
 * written): retracting now could be undone by its next write, so the retraction waits. Pure.
 */
export function pendingWrite(jobState: string | undefined, results: readonly StoredResult[]): boolean {
  if (jobState !== 'queued' && jobState !== 'running') return false;
  // An optional write given up with a warning is not pending: fullyWritten counts it as done.
  return results.some((r) => !r.notes.some((n) => n.startsWith('shadow mode')) && !fullyWritten(r, false));
}

/** Runs one claimed retraction to the end; throws a TriageError (retryable or not) when a write fails. */
export async function runRetraction(retraction: Retraction, deps: RetractionDeps): Promise<void> {
  const { store, ports, log } = deps;
  const uid = retraction.studyInstanceUID;
  const results = (await store.resultsOf(uid)).filter((r) => retraction.resultKeys.includes(r.resultKey));
  if (pendingWrite((await store.get(uid))?.state, results)) throw new RetractionDeferred('waiting for the study’s job to finish writing its result');
  const marked = results.find((r) => r.resultKey === retraction.resultKey) ?? results[results.length - 1];
  const modelVersion = marked ? `${marked.modelId}@${marked.modelVersion}` : 'unknown';
  const progress = { written: { ...retraction.written }, notes: [...retraction.notes] };
  const save = (): Promise<void> => store.saveRetractionProgress(uid, progress);
  const note = (text: string): void => {
    if (!progress.notes.includes(text)) progress.notes.push(text);
  };
  const audited = async <T>(entry: Pick<AuditEntry, 'target' | 'action' | 'resource'> & { resultKey?: string }, run: () => Promise<T>): Promise<T> => {
    const base = { ...entry, studyInstanceUID: uid, resultKey: entry.resultKey ?? retraction.resultKey, modelVersion };
    try {
      const value = await run();
      await store.audit({ ...base, outcome: 'ok' });
      deps.metrics?.writes.inc({ target: entry.target, action: entry.action, outcome: 'ok' });
      return value;
    } catch (err) {
      const e = asTriageError(err, `retract.${entry.target}`);
      await store.audit({ ...base, outcome: 'error', detail: `${e.code}${e.status ? ` ${e.status}` : ''}` });
      deps.metrics?.writes.inc({ target: entry.target, action: entry.action, outcome: 'error' });
      throw e;
    }
  };

  if (deps.shadow) {
    note('shadow mode: nothing was written back, so nothing is retracted outside the store');
    progress.written = { pacs: true, metadata: true, fhir: true };
    await save();
    return;
  }

  if (!progress.written.pacs || !progress.written.metadata) {
    const instances = await ports.studyInstances(uid);
    if (instances.length === 0) {
      note('the study is no longer in the PACS: its SRs went with it');
      progress.written.pacs = true;
      progress.written.metadata = true;
      await save();
    } else {
      const rejected = rejectedSrs(results, instances);
      let rejectionNote: string | undefined;
      if (rejected.length === 0) {
        note('no SR of these results in the study: no rejection note');
      } else {
        const source = studyInstanceFor(results, instances)!;
        const kos = encodeRejectionNote({
          uidRoot: deps.uidRoot,
          study: studyMetaOf(source),
          rejected,
          requestedAt: new Date(retraction.requestedAt).toISOString(),
          software: deps.software,
        });
        rejectionNote = kos.sopInstanceUID;
        if (!progress.written.pacs) {
          await audited({ target: 'pacs', action: 'store-rejection-note', resource: `KOS ${kos.sopInstanceUID}` }, () => ports.storeRejectionNote(uid, kos.part10));
        }
      }
      progress.written.pacs = true;
      await save();
      if (!progress.written.metadata) {
        const mark = ports.markRetracted?.bind(ports);
        if (mark) {
          const detail = { ...(rejectionNote ? { rejectionNote } : {}), srs: rejected.map((r) => r.sopInstanceUID), cause: retraction.cause };
          try {
            await audited({ target: 'pacs', action: 'mark-retracted', resource: 'priority retracted' }, () => mark(uid, detail));
          } catch (err) {
            // Like the result's own metadata, a convenience: the rejection note and FHIR are the retraction.
            const warning = configurationRefusal('metadata', asTriageError(err));
            if (!warning) throw err;
            note(`metadata not marked: ${warning.message}; fix: ${warning.fix}`);
          }
        }
        progress.written.metadata = true;
        await save();
      }
    }
  }

  if (!progress.written.fhir) {
    const fhir = ports.fhir;
    if (!fhir) {
      note('fhir skipped: no FHIR server configured');
    } else {
      for (const key of retraction.resultKeys) {
        for (const found of await fhir.findRiskAssessments(key)) {
          const ref = `RiskAssessment/${found.id ?? ''}`;
          const versionId = await retractRiskAssessment(found, fhir, (run) => audited({ target: 'fhir', action: 'retract-risk-assessment', resource: ref, resultKey: key }, run));
          const bundle = encodeRetractionProvenance({
            resultKey: key,
            riskAssessment: { ref, ...(versionId ? { versionId } : {}) },
            requestedAt: new Date(retraction.requestedAt).toISOString(),
            cause: retraction.cause,
            ...(retraction.reason ? { reason: retraction.reason } : {}),
            service: deps.software,
          });
          await audited({ target: 'fhir', action: 'retraction-provenance', resource: `Provenance for ${ref}`, resultKey: key }, () =>
            fhir.transaction(bundle as unknown as FhirResource),
          );
        }
      }
    }
    progress.written.fhir = true;
    await save();
  }
  logEvent(log, 'retraction.done', { study: uid, cause: retraction.cause, results: retraction.resultKeys.length });
}

/**
 * Sets one RiskAssessment to entered-in-error (nothing when it already is) and returns the version
 * that says so. A 412 (someone else changed it since we read it) is answered by reading it again,
 * a few times, rather than overwriting their change.
 */
async function retractRiskAssessment(
  found: FhirResource,
  fhir: NonNullable<RetractionPorts['fhir']>,
  audited: (run: () => Promise<FhirResource>) => Promise<FhirResource>,
): Promise<string | undefined> {
  let current = found;
  for (let attempt = 1; ; attempt++) {
    const updated = enteredInError(current);
    if (!updated) return current.meta?.versionId;
    try {
      return (await audited(() => fhir.update(updated))).meta?.versionId;
    } catch (err) {
      const e = asTriageError(err);
      if (e.status !== 412 || attempt >= 3) throw e;
      const key = ((current['identifier'] as { system?: string; value?: string }[] | undefined) ?? []).find((i) => i.system === resultIdentifier('').system)?.value;
      const again = key ? (await fhir.findRiskAssessments(key)).find((r) => r.id === current.id) : undefined;
      if (!again) throw e;
      current = again;
    }
  }
}

export type RetractionOutcome = { status: 'done' } | { status: 'failed'; code: string; reason: string; retryAt?: number };

/**
 * Runs one claimed retraction and records how it ended: done; deferred (the job is still writing:
 * again soon, not counted as an attempt); a retryable failure retried with backoff for as long as
 * the upstream is away (a correction must land); a terminal one failed with its reason.
 */
export async function runRetractionJob(retraction: Retraction, deps: RetractionDeps, policy: RetryPolicy, lease?: Lease): Promise<RetractionOutcome> {
  const uid = retraction.studyInstanceUID;
  const heartbeat = lease
    ? setInterval(() => {
        deps.store.renewRetractionLease(uid, lease.owner, Date.now() + lease.leaseMs).catch((err: unknown) => {
          logEvent(deps.log, 'retraction.lease.error', { study: uid, err: (err as Error).message });
        });
      }, Math.max(50, Math.floor(lease.leaseMs / 3)))
    : undefined;
  heartbeat?.unref();
  try {
    await runRetraction(retraction, deps);
    await deps.store.finishRetraction(uid);
    return { status: 'done' };
  } catch (err) {
    const e = asTriageError(err, 'retract');
    if (e instanceof RetractionDeferred) {
      const retryAt = Date.now() + Math.min(policy.maxDelayMs, policy.baseDelayMs);
      await deps.store.failRetraction(uid, e.code, e.message, retryAt, false);
      logEvent(deps.log, 'retraction.deferred', { study: uid });
      return { status: 'failed', code: e.code, reason: e.message, retryAt };
    }
    const retryAt = e.retryable ? Date.now() + nextAttemptDelay(retraction.attempts, policy, e.retryAfterS) : undefined;
    await deps.store.failRetraction(uid, e.code, e.message, retryAt);
    logEvent(deps.log, e.retryable ? 'retraction.retry' : 'retraction.failed', { study: uid, code: e.code, attempt: retraction.attempts, retryAt, err: e.message });
    return { status: 'failed', code: e.code, reason: e.message, ...(retryAt === undefined ? {} : { retryAt }) };
  } finally {
    if (heartbeat) clearInterval(heartbeat);
  }
}

/** Runs due retractions one at a time until none is due (or `stopping` says so). */
export async function drainRetractions(deps: RetractionDeps, policy: RetryPolicy, lease: Lease, stopping: () => boolean = () => false): Promise<RetractionOutcome[]> {
  const outcomes: RetractionOutcome[] = [];
  while (!stopping()) {
    const retraction = await deps.store.claimRetraction(Date.now(), lease);
    if (!retraction) break;
    outcomes.push(await runRetractionJob(retraction, deps, policy, lease));
  }
  return outcomes;
}

export const SWEEP_CURSOR = 'corrections.sweep.after';
export const SWEEP_AT_CURSOR = 'corrections.sweep.at';

export interface SweepOptions {
  now: number;
  /** Done studies updated within this long are checked. */
  lookbackMs: number;
  /** At most this many studies are checked per pass; the next pass goes on from there. */
  maxStudies: number;
}

/**
 * When this many of a pass's checks at least were made and more than half of them found the study
 * missing, nothing is retracted: that looks like a PACS (or its permissions) answering empty, not
 * like deletions, and retracting on it would mark good results entered-in-error in the EHR.
 */
export const SUSPICIOUS_MIN_CHECKED = 10;

/**
 * One pass of the deleted-study sweep: for each done, not retracted study in the window (in study
 * UID order after the stored cursor), asks the PACS whether it still has it; a study it does not
 * have gets a `study-deleted` retraction. A PACS error ends the pass (nothing is retracted on an
 * error). Returns what it checked and found.
 */
export async function sweepDeletedStudies(
  store: Store,
  exists: (studyInstanceUID: string) => Promise<boolean>,
  options: SweepOptions,
  log: Logger,
): Promise<{ checked: number; missing: string[]; retracted: string[]; suspicious: boolean }> {
  const after = (await store.getCursor(SWEEP_CURSOR)) ?? '';
  const page = await store.sweepCandidates(options.now - options.lookbackMs, after, options.maxStudies);
  const missing: string[] = [];
  for (const uid of page) if (!(await exists(uid))) missing.push(uid);
  // A short page means the window was covered: the next pass starts from the beginning again.
  const next = page.length < options.maxStudies ? '' : (page[page.length - 1] ?? '');
  const suspicious = page.length >= SUSPICIOUS_MIN_CHECKED && missing.length * 2 > page.length;
  const retracted: string[] = [];
  if (suspicious) {
    logEvent(log, 'corrections.sweep.suspicious', { checked: page.length, missing: missing.length });
  } else {
    for (const uid of missing) if ((await store.requestRetraction({ studyInstanceUID: uid, cause: 'study-deleted' }))?.created) retracted.push(uid);
  }
  await store.enqueue([], { name: SWEEP_CURSOR, value: next });
  if (retracted.length > 0) logEvent(log, 'corrections.sweep.deleted', { count: retracted.length });
  return { checked: page.length, missing, retracted, suspicious };
}

/** Runs a sweep pass when `intervalMs` has passed since the last (kept in the store, so restarts do not sweep again at once). */
export async function sweepIfDue(
  store: Store,
  exists: (studyInstanceUID: string) => Promise<boolean>,
  intervalMs: number,
  options: SweepOptions,
  log: Logger,
): Promise<Awaited<ReturnType<typeof sweepDeletedStudies>> | undefined> {
  const last = Number((await store.getCursor(SWEEP_AT_CURSOR)) ?? '0');
  if (options.now - last < intervalMs) return undefined;
  const outcome = await sweepDeletedStudies(store, exists, options, log);
  await store.enqueue([], { name: SWEEP_AT_CURSOR, value: String(options.now) });
  return outcome;
}

/** Longest reason kept (the API and the CLI refuse longer ones). */
export const MAX_RETRACTION_REASON = 1000;

/**
 * "This result is wrong": records the retraction of the study's latest result (and the earlier
 * ones) as durable work. NOT_FOUND for a study never enqueued or without a result; CONFLICT while
 * its job runs (the run may be writing a new result: ask again when it ends). `created` is false
 * when a retraction already covers the latest result: nothing new will be written.
 */
export async function requestMarkedWrong(store: Store, studyInstanceUID: string, reason: string, requestedBy?: string): Promise<{ retraction: Retraction; created: boolean }> {
  const job = await store.get(studyInstanceUID);
  if (!job) throw new TriageError('NOT_FOUND', `no study ${studyInstanceUID} in the store`, { where: 'retract' });
  if (job.state === 'running') throw new TriageError('CONFLICT', `study ${studyInstanceUID} is running; retract it when the run ends`, { where: 'retract' });
  // A retraction being carried out is not replaced under its runner (it would mark the new
  // request done with the old one's writes): ask again when it has ended.
  if ((await store.getRetraction(studyInstanceUID))?.state === 'running') {
    throw new TriageError('CONFLICT', `a retraction of study ${studyInstanceUID} is being carried out; ask again when it has ended`, { where: 'retract' });
  }
  const text = reason.trim();
  if (text === '' || text.length > MAX_RETRACTION_REASON) throw new TriageError('USAGE', `the reason must be 1 to ${MAX_RETRACTION_REASON} characters`, { where: 'retract' });
  const recorded = await store.requestRetraction({ studyInstanceUID, cause: 'marked-wrong', reason: text, ...(requestedBy ? { requestedBy } : {}) });
  if (!recorded) throw new TriageError('NOT_FOUND', `study ${studyInstanceUID} has no result to retract`, { where: 'retract' });
  return recorded;
}
