import { logEvent } from '../domain/log-events.ts';
import type { Logger } from 'pino';
import { asTriageError } from '../domain/errors.ts';
import type { Job } from '../domain/records.ts';
import type { Lease } from '../state/ports.ts';
import type { PipelineDeps } from './ports.ts';
import type { StudyOutcome } from './process-study.ts';
import { processStudyModels } from './process-models.ts';
import { WriteBackPending } from './writeback/write-back.ts';
import { warningReason } from './writeback/optional-writes.ts';

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 2_000, maxDelayMs: 5 * 60_000 };

/** Exponential backoff with full jitter; an upstream's Retry-After is honoured when longer. */
export function nextAttemptDelay(attempt: number, policy: RetryPolicy, retryAfterS?: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  const delay = Math.round(ceiling / 2 + (random() * ceiling) / 2);
  return Math.max(delay, (retryAfterS ?? 0) * 1000);
}

export type JobOutcome = StudyOutcome | { status: 'failed'; code: string; reason: string; retryAt?: number };

export type { Lease } from '../state/ports.ts';

/**
 * Runs one claimed job and records how it ended. Terminal errors fail the job at once with
 * their reason; retryable ones are rescheduled until maxAttempts, then failed (dead letter) —
 * except a write-back waiting for its upstream: its result is stored, so it waits (backoff
 * capped at maxDelayMs) for as long as the upstream is away, and never runs the model again.
 * While it runs, the job's lease is renewed, so another worker sees it as taken.
 */
export async function runJob(job: Job, deps: PipelineDeps, policy: RetryPolicy, log: Logger, lease?: Lease): Promise<JobOutcome> {
  const timings: Record<string, number> = {};
  const started = performance.now();
  const heartbeat = lease
    ? setInterval(() => {
        deps.store.renewLease(job.studyInstanceUID, lease.owner, Date.now() + lease.leaseMs).then(
          (held) => {
            if (!held) logEvent(log, 'job.lease.lost', { study: job.studyInstanceUID });
          },
          (err: unknown) => logEvent(log, 'job.lease.error', { study: job.studyInstanceUID, err: (err as Error).message }),
        );
      }, Math.max(50, Math.floor(lease.leaseMs / 3)))
    : undefined;
  heartbeat?.unref();
  try {
    const { outcome } = await processStudyModels(job.studyInstanceUID, deps, timings);
    timings['total'] = Math.round(performance.now() - started);
    // A done job's reason carries the warnings of its result (also an unchanged rerun's): `jobs` and /api/jobs show them.
    const reason = outcome.status === 'skipped' ? outcome.reason : warningReason(outcome.result);
    await deps.store.finish(job.studyInstanceUID, outcome.status, reason, timings, lease?.owner);
    deps.metrics?.observeTimings(timings);
    deps.metrics?.jobOutcomes.inc({ outcome: outcome.status === 'done' && outcome.unchanged ? 'unchanged' : outcome.status, code: '' });
    if (outcome.status === 'skipped') logEvent(log, 'study.skipped', { study: job.studyInstanceUID, reason: outcome.reason });
    return outcome;
  } catch (err) {
    const e = asTriageError(err, 'pipeline');
    const waiting = e instanceof WriteBackPending;
    const giveUp = !e.retryable || (!waiting && job.attempts >= policy.maxAttempts);
    const retryAt = giveUp ? undefined : Date.now() + nextAttemptDelay(job.attempts, policy, e.retryAfterS);
    await deps.store.fail(job.studyInstanceUID, e.code, e.message, retryAt, lease?.owner);
    deps.metrics?.observeTimings(timings);
    deps.metrics?.jobOutcomes.inc({ outcome: giveUp ? 'failed' : waiting ? 'waiting' : 'retry', code: e.code });
    logEvent(log, giveUp ? 'study.failed' : waiting ? 'study.waiting' : 'study.retry', { study: job.studyInstanceUID, code: e.code, attempt: job.attempts, retryAt, err: e.message });
    return { status: 'failed', code: e.code, reason: e.message, ...(retryAt === undefined ? {} : { retryAt }) };
  } finally {
    if (heartbeat) clearInterval(heartbeat);
  }
}
