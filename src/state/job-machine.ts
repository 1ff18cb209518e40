/**
 * The job state machine, written once. Engines read the job, ask this module for the next row,
 * and write it back in the same transaction; none of them encodes a transition in SQL.
 *
 *   (none) ──enqueue──► queued ──claim──► running ──finish──► done | skipped
 *                         ▲                  │   ──fail────► failed | queued (retry at a time)
 *                         └──enqueue/requeue─┘   (enqueue or requeue while running: `rerun`,
 *                                                 and the run that ends goes back to queued)
 *
 * A job keeps its settle time in `nextAttemptAt` while it runs, so a rerun asked for by an
 * instance that arrived mid-run still waits out ingest.stableAgeS. Pure.
 */
import { createHash } from 'node:crypto';
import { TriageError } from '../domain/errors.ts';
import { JOB_CLASSES, type Job, type JobClass, type JobState } from '../domain/records.ts';
import type { StudyRef } from '../domain/types.ts';
import type { ClaimOrder } from './ports.ts';
import { isValidUid } from '../domain/uids.ts';

/** A job as engines persist it: the public record plus the machine's own fields. */
export interface JobRow extends Job {
  /** Enqueued or requeued while running: it goes back to the queue when this run ends. */
  rerun: boolean;
  /** See EnqueueOptions.barrier: the cursor that must pass nextAttemptAt before the job is due. */
  settleBarrier?: string;
}

/** Every move the machine makes; anything else is a bug in this module. */
export const TRANSITIONS: Readonly<Record<JobState | 'new', readonly JobState[]>> = {
  new: ['queued', 'failed'],
  queued: ['queued', 'running'],
  running: ['running', 'queued', 'done', 'skipped', 'failed'],
  done: ['queued'],
  skipped: ['queued'],
  failed: ['queued'],
};

/** A class's rank in the queue (lower goes first): engines store and order by it. */
export function classRank(c: JobClass): number {
  return JOB_CLASSES.indexOf(c);
}

/** The ranks a claim of this order may take: below the returned one (`urgent-only` leaves backfill out). */
export function rankLimit(order: ClaimOrder): number {
  return order === 'urgent-only' ? classRank('backfill') : JOB_CLASSES.length;
}

export function classOfRank(rank: number): JobClass {
  return JOB_CLASSES[rank] ?? 'live';
}

/** The more urgent of two classes. */
function urgent(a: JobClass, b: JobClass): JobClass {
  return classRank(a) <= classRank(b) ? a : b;
}

function moved(from: JobState | 'new', next: JobRow): JobRow {
  if (!TRANSITIONS[from].includes(next.state)) {
    throw new TriageError('INTERNAL', `job ${next.studyInstanceUID}: no transition ${from} → ${next.state}`, { where: 'state.jobs' });
  }
  return next;
}

/** Without the lease (a job not running holds none). */
function unleased<T extends Job>(row: T): T {
  const { leaseOwner: _owner, leaseUntil: _until, ...rest } = row;
  return rest as T;
}

/** The key of a study refused for its UID: one row per distinct value, however often it arrives. */
export function rejectedKey(raw: string): string {
  return `invalid:${createHash('sha256').update(raw, 'utf8').digest('hex').slice(0, 16)}`;
}

/** The job key a ref is kept under: its UID, or the rejected key when it is not a DICOM UID. */
export function jobKey(ref: StudyRef): string {
  return isValidUid(ref.studyInstanceUID) ? ref.studyInstanceUID : rejectedKey(ref.studyInstanceUID);
}

/** Whether a job is a refused study (never claimed, never requeued). */
export function isRejected(job: Pick<Job, 'studyInstanceUID'>): boolean {
  return job.studyInstanceUID.startsWith('invalid:');
}

/**
 * A study seen by ingest (again). `due` is now, or now + settle time. A running job keeps
 * running and is marked to run again; its settle time moves only when this enqueue asks for one.
 *
 * Two refusals are written here, once, for every ingest path: a StudyInstanceUID that is not a
 * DICOM UID becomes a failed INVALID_UID job (the raw value escaped and cut in its reason) and
 * never reaches the pipeline; and a study the watched folder ingested is not re-run by another
 * source (the PACS announcing it again because our own SR was stored there: the folder's files
 * are gone by then, and the result stands).
 */
export function onEnqueue(job: JobRow | undefined, ref: StudyRef, now: number, due: number, barrier: string | undefined, jobClass: JobClass = 'live'): JobRow {
  const raw = String(ref.studyInstanceUID);
  if (!isValidUid(ref.studyInstanceUID)) {
    if (job) return { ...job, updatedAt: now };
    return moved('new', {
      studyInstanceUID: rejectedKey(ref.studyInstanceUID),
      source: ref.source,
      state: 'failed',
      class: jobClass,
      attempts: 0,
      nextAttemptAt: now,
      errorCode: 'INVALID_UID',
      reason: `the StudyInstanceUID is not a DICOM UID (digits and dots, at most 64 characters): ${JSON.stringify(raw.slice(0, 64))}${raw.length > 64 ? ' (cut)' : ''}`,
      enqueuedAt: now,
      updatedAt: now,
      rerun: false,
    });
  }
  if (job && job.source === 'folder' && ref.source !== 'folder') return job;
  if (!job) {
    return moved('new', {
      studyInstanceUID: ref.studyInstanceUID,
      ...(ref.orthancId ? { orthancId: ref.orthancId } : {}),
      source: ref.source,
      state: 'queued',
      class: jobClass,
      attempts: 0,
      nextAttemptAt: due,
      enqueuedAt: now,
      updatedAt: now,
      rerun: false,
      ...(barrier !== undefined ? { settleBarrier: barrier } : {}),
    });
  }
  const { settleBarrier: _old, ...rest } = job;
  const base: JobRow = {
    ...rest,
    ...(ref.orthancId ? { orthancId: ref.orthancId } : {}),
    ...(barrier !== undefined ? { settleBarrier: barrier } : {}),
    updatedAt: now,
  };
  // The class of the run to come: a live arrival makes a waiting backfill live; a backfill does
  // not demote a study already waiting as live. While a job runs, `class` is its rerun's.
  const waiting = job.state === 'queued' || (job.state === 'running' && job.rerun);
  const next = waiting ? urgent(job.class, jobClass) : jobClass;
  if (job.state === 'running') {
    return moved(job.state, { ...base, class: next, rerun: true, nextAttemptAt: due === now ? job.nextAttemptAt : due });
  }
  return moved(job.state, { ...base, class: next, state: 'queued', attempts: 0, nextAttemptAt: due });
}

/** Whether a claim at `now` may take the job (the engine's query selects the same rows). */
export function claimable(job: JobRow, now: number, barrierValue: number | undefined): boolean {
  if (job.nextAttemptAt > now) return false;
  if (job.settleBarrier !== undefined && job.nextAttemptAt > (barrierValue ?? 0)) return false;
  if (job.state === 'queued') return true;
  return job.state === 'running' && (job.leaseUntil ?? 0) < now;
}

export function onClaim(job: JobRow, now: number, owner: string, leaseMs: number): JobRow {
  const { settleBarrier: _lifted, ...rest } = job;
  return moved(job.state, { ...rest, state: 'running', attempts: job.attempts + 1, updatedAt: now, leaseOwner: owner, leaseUntil: now + leaseMs });
}

/** The end of a run; a job marked `rerun` goes back to the queue, waiting out any settle time. */
function ended(job: JobRow, now: number, state: JobState, nextAttemptAt: number, fields: { reason?: string; errorCode?: string; timings?: Record<string, number> }): JobRow {
  const { reason: _r, errorCode: _c, timings: _t, ...rest } = unleased(job);
  const next: JobRow = job.rerun
    ? { ...rest, ...fields, state: 'queued', attempts: 0, nextAttemptAt: Math.max(now, job.nextAttemptAt), rerun: false, updatedAt: now }
    : { ...rest, ...fields, state, nextAttemptAt, rerun: false, updatedAt: now };
  return moved(job.state, next);
}

export function onFinish(job: JobRow, now: number, state: 'done' | 'skipped', reason: string | undefined, timings: Record<string, number> | undefined): JobRow {
  return ended(job, now, state, now, { ...(reason !== undefined ? { reason } : {}), ...(timings ? { timings } : {}) });
}

export function onFail(job: JobRow, now: number, errorCode: string, message: string, retryAt: number | undefined): JobRow {
  // A retry waits behind live arrivals (and a backfill's retry stays backfill).
  if (retryAt !== undefined && !job.rerun && classRank(job.class) < classRank('retry')) job = { ...job, class: 'retry' };
  return ended(job, now, retryAt === undefined ? 'failed' : 'queued', retryAt ?? now, { reason: message, errorCode, ...(job.timings ? { timings: job.timings } : {}) });
}

/** Asked for again (reprocess, retry): at once, attempts reset; a running job runs again when it ends. */
export function onRequeue(job: JobRow, now: number): JobRow {
  if (isRejected(job)) return job;
  // Asked for by a person or a backfill: behind what arrives live.
  if (job.state === 'running') return moved(job.state, { ...job, class: job.rerun ? urgent(job.class, 'backfill') : 'backfill', rerun: true, updatedAt: now });
  const { reason: _r, errorCode: _c, ...rest } = job;
  return moved(job.state, { ...rest, class: job.state === 'queued' ? urgent(job.class, 'backfill') : 'backfill', state: 'queued', attempts: 0, nextAttemptAt: now, updatedAt: now });
}

/** The public record (the machine's own fields left out; a lease only while running). */
export function publicJob(row: JobRow): Job {
  const { rerun: _rerun, settleBarrier: _barrier, ...job } = row;
  return job.state === 'running' ? job : unleased(job);
}
