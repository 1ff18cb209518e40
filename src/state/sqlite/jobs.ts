/**
 * The job queue on SQLite: rows in, rows out; every transition comes from state/job-machine.ts,
 * read and written back in one immediate transaction.
 */
import type Database from 'better-sqlite3';
import type { JobState } from '../../domain/records.ts';
import type { StudyRef } from '../../domain/types.ts';
import { claimable, classOfRank, classRank, jobKey, onClaim, onEnqueue, onFail, onFinish, onRequeue, publicJob, rankLimit, type JobRow } from '../job-machine.ts';
import { DEFAULT_LEASE, type Cursor, type EnqueueOptions, type JobQueue, type Lease } from '../ports.ts';
import { writeTransaction } from './sql.ts';

interface SqlJob {
  study_uid: string;
  orthanc_id: string | null;
  source: string;
  state: JobState;
  attempts: number;
  next_attempt_at: number;
  reason: string | null;
  error_code: string | null;
  rerun: number;
  timings: string | null;
  enqueued_at: number;
  updated_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  settle_barrier: string | null;
  class_rank: number;
}

export function toJobRow(r: SqlJob): JobRow {
  return {
    studyInstanceUID: r.study_uid,
    ...(r.orthanc_id ? { orthancId: r.orthanc_id } : {}),
    source: r.source as StudyRef['source'],
    state: r.state,
    class: classOfRank(r.class_rank),
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.error_code ? { errorCode: r.error_code } : {}),
    ...(r.timings ? { timings: JSON.parse(r.timings) as Record<string, number> } : {}),
    enqueuedAt: r.enqueued_at,
    updatedAt: r.updated_at,
    ...(r.lease_owner ? { leaseOwner: r.lease_owner } : {}),
    ...(typeof r.lease_until === 'number' ? { leaseUntil: r.lease_until } : {}),
    rerun: r.rerun === 1,
    ...(r.settle_barrier ? { settleBarrier: r.settle_barrier } : {}),
  };
}

const UPSERT = `INSERT INTO jobs (study_uid, orthanc_id, source, state, attempts, next_attempt_at, reason, error_code, rerun, timings,
     enqueued_at, updated_at, lease_owner, lease_until, settle_barrier, class_rank)
   VALUES (@uid, @orthancId, @source, @state, @attempts, @next, @reason, @code, @rerun, @timings, @enqueuedAt, @updatedAt, @owner, @until, @barrier, @rank)
   ON CONFLICT (study_uid) DO UPDATE SET
     orthanc_id = excluded.orthanc_id, source = excluded.source, state = excluded.state, attempts = excluded.attempts,
     next_attempt_at = excluded.next_attempt_at, reason = excluded.reason, error_code = excluded.error_code, rerun = excluded.rerun,
     timings = excluded.timings, enqueued_at = excluded.enqueued_at, updated_at = excluded.updated_at,
     lease_owner = excluded.lease_owner, lease_until = excluded.lease_until, settle_barrier = excluded.settle_barrier,
     class_rank = excluded.class_rank`;

export function writeJob(db: Database.Database, j: JobRow): void {
  db.prepare(UPSERT).run({
    uid: j.studyInstanceUID,
    orthancId: j.orthancId ?? null,
    source: j.source,
    state: j.state,
    attempts: j.attempts,
    next: j.nextAttemptAt,
    reason: j.reason ?? null,
    code: j.errorCode ?? null,
    rerun: j.rerun ? 1 : 0,
    timings: j.timings ? JSON.stringify(j.timings) : null,
    enqueuedAt: j.enqueuedAt,
    updatedAt: j.updatedAt,
    owner: j.leaseOwner ?? null,
    until: j.leaseUntil ?? null,
    barrier: j.settleBarrier ?? null,
    rank: classRank(j.class),
  });
}

export function readJob(db: Database.Database, uid: string): JobRow | undefined {
  const row = db.prepare(`SELECT * FROM jobs WHERE study_uid = ?`).get(uid) as SqlJob | undefined;
  return row ? toJobRow(row) : undefined;
}

/** The cursor a barrier names, as epoch ms (0 when absent). */
const BARRIER_VALUE = `COALESCE((SELECT CAST(value AS INTEGER) FROM cursors WHERE name = settle_barrier), 0)`;

export function setCursor(db: Database.Database, cursor: Cursor): void {
  db.prepare(`INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`).run(cursor.name, cursor.value);
}

/** Enqueue inside the caller's transaction (the seen-set shares it). */
export function enqueueRows(db: Database.Database, refs: readonly StudyRef[], now: number, options: EnqueueOptions): void {
  const due = now + Math.max(0, options.settleMs ?? 0);
  const barrier = options.settleMs !== undefined ? options.barrier : undefined;
  for (const ref of refs) writeJob(db, onEnqueue(readJob(db, jobKey(ref)), ref, now, due, barrier, options.class));
}

export function sqliteJobQueue(db: Database.Database, clock: () => number): JobQueue {
  /** Applies a transition to one job if it exists (and, with `owner`, only while that owner holds it). */
  const change = (uid: string, next: (job: JobRow) => JobRow, owner?: string): boolean =>
    writeTransaction(db, () => {
      const job = readJob(db, uid);
      if (!job) return false;
      if (owner !== undefined && !(job.state === 'running' && job.leaseOwner === owner)) return false;
      writeJob(db, next(job));
      return true;
    });

  return {
    async enqueue(refs, cursor, options = {}) {
      writeTransaction(db, () => {
        enqueueRows(db, refs, clock(), options);
        if (cursor) setCursor(db, cursor);
      });
    },

    async nextSettleAt() {
      const row = db
        .prepare(`SELECT MIN(next_attempt_at) AS due FROM jobs WHERE state = 'queued' AND settle_barrier IS NOT NULL AND next_attempt_at > ${BARRIER_VALUE}`)
        .get() as { due: number | null };
      return row.due ?? undefined;
    },

    async nextDueAt() {
      // A job past due that waits for its barrier is left out: the poll that lifts it wakes the workers.
      const row = db
        .prepare(`SELECT MIN(next_attempt_at) AS due FROM jobs WHERE state = 'queued' AND (settle_barrier IS NULL OR next_attempt_at > ?)`)
        .get(clock()) as { due: number | null };
      return row.due ?? undefined;
    },

    async claim(now, lease: Lease = DEFAULT_LEASE, studyInstanceUID, order = 'urgent-first') {
      return writeTransaction(db, () => {
        const row = db
          .prepare(
            `SELECT *, ${BARRIER_VALUE} AS barrier_value FROM jobs
             WHERE ((state = 'queued' AND next_attempt_at <= @now)
                    -- A dead worker's job, once any settle time an enqueue set while it ran is over.
                    OR (state = 'running' AND COALESCE(lease_until, 0) < @now AND next_attempt_at <= @now))
               AND (@uid IS NULL OR study_uid = @uid)
               AND (settle_barrier IS NULL OR next_attempt_at <= ${BARRIER_VALUE})
               AND class_rank < @rankLimit
             ORDER BY class_rank ${order === 'backfill-first' ? 'DESC' : 'ASC'}, next_attempt_at, enqueued_at LIMIT 1`,
          )
          .get({ now, uid: studyInstanceUID ?? null, rankLimit: rankLimit(order) }) as (SqlJob & { barrier_value: number }) | undefined;
        if (!row) return undefined;
        const job = toJobRow(row);
        if (!claimable(job, now, row.barrier_value)) return undefined;
        const next = onClaim(job, now, lease.owner, lease.leaseMs);
        writeJob(db, next);
        return publicJob(next);
      });
    },

    async renewLease(uid, owner, until) {
      return db.prepare(`UPDATE jobs SET lease_until = ? WHERE study_uid = ? AND state = 'running' AND lease_owner = ?`).run(until, uid, owner).changes > 0;
    },

    async get(uid) {
      const job = readJob(db, uid);
      return job ? publicJob(job) : undefined;
    },

    async finish(uid, state, reason, timings, owner) {
      return change(uid, (job) => onFinish(job, clock(), state, reason, timings), owner);
    },

    async fail(uid, code, message, retryAt, owner) {
      return change(uid, (job) => onFail(job, clock(), code, message, retryAt), owner);
    },

    async requeue(uid) {
      change(uid, (job) => onRequeue(job, clock()));
      const job = readJob(db, uid);
      return job ? publicJob(job) : undefined;
    },

    async jobs(filter = {}) {
      const limit = filter.limit === undefined ? -1 : Math.max(0, Math.floor(filter.limit));
      const offset = Math.max(0, Math.floor(filter.offset ?? 0));
      const rows = (
        filter.state === undefined
          ? db.prepare(`SELECT * FROM jobs ORDER BY updated_at DESC, study_uid LIMIT ? OFFSET ?`).all(limit, offset)
          : db.prepare(`SELECT * FROM jobs WHERE state = ? ORDER BY updated_at DESC, study_uid LIMIT ? OFFSET ?`).all(filter.state, limit, offset)
      ) as SqlJob[];
      return rows.map((r) => publicJob(toJobRow(r)));
    },

    async countJobs(filter = {}) {
      const row = (
        filter.state === undefined ? db.prepare(`SELECT COUNT(*) AS n FROM jobs`).get() : db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE state = ?`).get(filter.state)
      ) as { n: number };
      return row.n;
    },

    async countByState() {
      const counts: Record<JobState, number> = { queued: 0, running: 0, done: 0, failed: 0, skipped: 0 };
      const rows = db.prepare(`SELECT state, COUNT(*) AS n FROM jobs GROUP BY state`).all() as { state: JobState; n: number }[];
      for (const { state, n } of rows) if (state in counts) counts[state] = n;
      return counts;
    },
  };
}
