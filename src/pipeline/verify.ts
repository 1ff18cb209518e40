/**
 * A reader's accept, written to the EHR: the result's RiskAssessment goes from `preliminary` to
 * `final` (a new version, If-Match on the one read) and a Provenance names the reader
 * (encode/verification.ts). The accept is recorded with its verification in one transaction
 * (state/ports.ts VerificationQueue), so the verdict is never kept while the write is lost: it is
 * durable work, claimed under a lease and retried while the FHIR server is away, like a retraction.
 *
 * Every step may run again: a RiskAssessment already final is not updated again, and the
 * Provenance is a conditional create on the result key.
 */
import type { Logger } from 'pino';
import type { AuditEntry, VerificationTask } from '../domain/records.ts';
import { asTriageError, TriageError } from '../domain/errors.ts';
import { logEvent } from '../domain/log-events.ts';
import type { FhirResource } from '../domain/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Store } from '../state/ports.ts';
import { encodeVerification } from './encode/verification.ts';
import type { RetractionPorts } from './ports.ts';
import { nextAttemptDelay, type Lease, type RetryPolicy } from './worker.ts';

export interface VerificationDeps {
  store: Pick<Store, 'resultsOf' | 'audit' | 'claimVerification' | 'finishVerification' | 'failVerification'>;
  /** The FHIR server's RiskAssessments (absent: no FHIR server, nothing to verify there). */
  fhir: NonNullable<RetractionPorts['fhir']> | undefined;
  /** Nothing was written back in shadow mode, so nothing is verified there either. */
  shadow: boolean;
  software: { name: string; version: string };
  log: Logger | undefined;
  metrics?: Metrics;
}

/** The RiskAssessment is not there yet (its result is still being written, or the search lags): again later, not a failure. */
export class VerificationDeferred extends TriageError {
  constructor(message: string) {
    super('CONFLICT', message, { where: 'verify' });
  }

  // A CONFLICT is terminal elsewhere; this one ends by itself once the write lands.
  override get retryable(): boolean {
    return true;
  }
}

const RISK_ASSESSMENT_STATUS = (r: FhirResource): unknown => r['status'];

/** Writes one verification; returns what was written, or why nothing had to be. Throws a TriageError when a write fails. */
export async function runVerification(task: VerificationTask, deps: VerificationDeps): Promise<string> {
  const { store, fhir } = deps;
  const result = (await store.resultsOf(task.studyInstanceUID)).find((r) => r.resultKey === task.resultKey);
  if (!result) return 'nothing written: the result is no longer stored';
  if (deps.shadow || result.notes.some((n) => n.startsWith('shadow mode'))) return 'nothing written: shadow mode (no RiskAssessment was written)';
  if (result.notes.some((n) => n.startsWith('fhir skipped'))) return 'nothing written: the result has no RiskAssessment (no FHIR patient)';
  if (!fhir) return 'nothing written: no FHIR server is configured';
  if (!result.written.fhir) throw new VerificationDeferred('waiting for the result’s RiskAssessment to be written');
  const found = (await fhir.findRiskAssessments(task.resultKey))[0];
  if (!found) throw new VerificationDeferred(`no RiskAssessment with result key ${task.resultKey} found yet`);
  if (RISK_ASSESSMENT_STATUS(found) === 'entered-in-error') return 'nothing written: the RiskAssessment was retracted (entered in error)';

  const ref = `RiskAssessment/${found.id ?? ''}`;
  const audited = async <T>(entry: Pick<AuditEntry, 'action' | 'resource'>, run: () => Promise<T>): Promise<T> => {
    const base = { ...entry, target: 'fhir', studyInstanceUID: task.studyInstanceUID, resultKey: task.resultKey, modelVersion: `${result.modelId}@${result.modelVersion}` };
    try {
      const value = await run();
      await store.audit({ ...base, outcome: 'ok' });
      deps.metrics?.writes.inc({ target: 'fhir', action: entry.action, outcome: 'ok' });
      return value;
    } catch (err) {
      const e = asTriageError(err, 'verify.fhir');
      await store.audit({ ...base, outcome: 'error', detail: `${e.code}${e.status ? ` ${e.status}` : ''}` });
      deps.metrics?.writes.inc({ target: 'fhir', action: entry.action, outcome: 'error' });
      throw e;
    }
  };
  const verification = encodeVerification({ riskAssessment: found, reader: task.reader, verifiedAt: new Date(task.verifiedAt).toISOString(), service: deps.software });
  let versionId = found.meta?.versionId;
  const updated = verification.riskAssessment;
  if (updated) {
    versionId = (await audited({ action: 'verify-risk-assessment', resource: `${ref} final` }, () => fhir.update(updated as unknown as FhirResource))).meta?.versionId;
  }
  await audited({ action: 'verification-provenance', resource: `Provenance for ${ref}` }, () => fhir.transaction(verification.provenance(versionId) as unknown as FhirResource));
  return versionId ? `${ref}/_history/${versionId}` : ref;
}

export type VerificationOutcome = { status: 'done'; outcome: string } | { status: 'failed'; code: string; reason: string; retryAt?: number };

/**
 * Runs one claimed verification and records how it ended: done; a retryable failure (the server
 * away, a 412 because someone changed the RiskAssessment since it was read, the RiskAssessment not
 * written yet) retried with backoff; a terminal one failed with its reason.
 */
export async function runVerificationJob(task: VerificationTask, deps: VerificationDeps, policy: RetryPolicy): Promise<VerificationOutcome> {
  const ids = { study: task.studyInstanceUID, resultKey: task.resultKey };
  try {
    const outcome = await runVerification(task, deps);
    await deps.store.finishVerification(task.resultKey, outcome);
    logEvent(deps.log, 'verification.done', { ...ids, outcome });
    return { status: 'done', outcome };
  } catch (err) {
    const e = asTriageError(err, 'verify');
    const retryable = e.retryable || e.status === 412;
    const retryAt = retryable ? Date.now() + nextAttemptDelay(task.attempts, policy, e.retryAfterS) : undefined;
    await deps.store.failVerification(task.resultKey, e.code, e.message, retryAt);
    logEvent(deps.log, retryable ? 'verification.retry' : 'verification.failed', { ...ids, code: e.code, attempt: task.attempts, retryAt, err: e.message });
    return { status: 'failed', code: e.code, reason: e.message, ...(retryAt === undefined ? {} : { retryAt }) };
  }
}

/**
 * Runs the verifications due when it starts, one at a time (or until `stopping` says so): one
 * retried in this pass waits for the next, however short its backoff.
 */
export async function drainVerifications(deps: VerificationDeps, policy: RetryPolicy, lease: Lease, stopping: () => boolean = () => false): Promise<VerificationOutcome[]> {
  const outcomes: VerificationOutcome[] = [];
  const started = Date.now();
  while (!stopping()) {
    const task = await deps.store.claimVerification(started, lease);
    if (!task) break;
    outcomes.push(await runVerificationJob(task, deps, policy));
  }
  return outcomes;
}
