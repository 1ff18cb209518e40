/**
 * The job queue on PostgreSQL, shared by replicas. Every transition comes from
 * state/job-machine.ts: the row is read with FOR UPDATE in a transaction, the machine computes
 * the next row, and it is written back before the commit. A claim takes its row with FOR UPDATE
 * SKIP LOCKED, so concurrent claimers pass over a job another one is taking instead of queueing
 * behind it; each job goes to one of them.
 */
import type pg from 'pg';
import type { JobState } from '../../domain/records.ts';
import type { StudyRef } from '../../domain/types.ts';
import { claimable, classOfRank, classRank, jobKey, onClaim, onEnqueue, onFail, onFinish, onRequeue, publicJob, rankLimit, type JobRow } from '../job-machine.ts';
import { DEFAULT_LEASE, type Cursor, type EnqueueOptions, type JobQueue, type Lease } from '../ports.ts';
import { transaction, type Sql } from './database.ts';
import { notify, pageLimit, wholeMs } from './sql.ts';

interface PgJob {
  study_uid: string;
  orthanc_id: string | null;
  source: string;
  state: JobState;
  attempts: number;
  next_attempt_at: number;
  reason: string | null;
  error_code: string | null;
  rerun: boolean;
  timings: string | null;
  enqueued_at: number;
  updated_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  settle_barrier: string | null;
  class_rank: number;
}

export function toJobRow(r: PgJob): JobRow {
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
    rerun: r.rerun,
    ...(r.settle_barrier ? { settleBarrier: r.settle_barrier } : {}),
  };
}

const COLUMNS = `study_uid, orthanc_id, source, state, attempts, next_attempt_at, reason, error_code, rerun, timings,
  enqueued_at, updated_at, lease_owner, lease_until, settle_barrier, class_rank`;

function values(j: JobRow): unknown[] {
  return [
    j.studyInstanceUID,
    j.orthancId ?? null,
    j.source,
    j.state,
    j.attempts,
    wholeMs(j.nextAttemptAt),
    j.reason ?? null,
    j.errorCode ?? null,
    j.rerun,
    j.timings ? JSON.stringify(j.timings) : null,
    wholeMs(j.enqueuedAt),
    wholeMs(j.updatedAt),
    j.leaseOwner ?? null,
    j.leaseUntil === undefined ? null : wholeMs(j.leaseUntil),
    j.settleBarrier ?? null,
    classRank(j.class),
  ];
}

/** Writes back a row this transaction locked. */
async function updateJob(sql: Sql, j: JobRow): Promise<void> {
  await sql.query(
    `UPDATE jobs SET orthanc_id = $2, source = $3, state = $4, attempts = $5, next_attempt_at = $6, reason = $7, error_code = $8,
       rerun = $9, timings = $10, enqueued_at = $11, updated_at = $12, lease_owner = $13, lease_until = $14, settle_barrier = $15,
       class_rank = $16
     WHERE study_uid = $1`,
    values(j),
  );
}

/** Inserts a new job; false when another transaction inserted that study first (its row is then committed). */
async function insertJob(sql: Sql, j: JobRow): Promise<boolean> {
  const { rowCount } = await sql.query(
    `INSERT INTO jobs (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (study_uid) DO NOTHING`,
    values(j),
  );
  return rowCount === 1;
}

export async function readJob(sql: Sql, uid: string, lock = false): Promise<JobRow | undefined> {
  const { rows } = await sql.query<PgJob>(`SELECT * FROM jobs WHERE study_uid = $1${lock ? ' FOR UPDATE' : ''}`, [uid]);
  return rows[0] ? toJobRow(rows[0]) : undefined;
}

/** The cursor a barrier names, as epoch ms (0 when absent or not a number, as SQLite's CAST gives). */
const BARRIER_VALUE = `COALESCE((SELECT CASE WHEN c.value ~ '^-?[0-9]{1,18}$' THEN c.value::bigint END FROM cursors c WHERE c.name = jobs.settle_barrier), 0)`;

export async function setCursor(sql: Sql, cursor: Cursor): Promise<void> {
  await sql.query(`INSERT INTO cursors (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [cursor.name, cursor.value]);
}

/** Whether moving this cursor may lift a queued job's settle barrier (workers elsewhere should look). */
export async function barrierWaits(sql: Sql, cursor: Cursor): Promise<boolean> {
  const { rows } = await sql.query<{ waits: boolean }>(`SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND settle_barrier = $1) AS waits`, [cursor.name]);
  return rows[0]?.waits === true;
}

/**
 * Enqueue inside the caller's transaction (the seen-set shares it). Rows are locked in UID
 * order, so two replicas enqueueing overlapping batches cannot deadlock.
 */
export async function enqueueRows(sql: Sql, refs: readonly StudyRef[], now: number, options: EnqueueOptions): Promise<void> {
  const due = now + Math.max(0, options.settleMs ?? 0);
  const barrier = options.settleMs !== undefined ? options.barrier : undefined;
  const ordered = [...refs].map((ref) => ({ ref, key: jobKey(ref) })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const { ref, key } of ordered) {
    const job = await readJob(sql, key, true);
    if (job) {
      await updateJob(sql, onEnqueue(job, ref, now, due, barrier, options.class));
    } else if (!(await insertJob(sql, onEnqueue(undefined, ref, now, due, barrier, options.class)))) {
      // Another replica created it between our read and our insert: enqueue onto its row.
      const theirs = await readJob(sql, key, true);
      if (theirs) await updateJob(sql, onEnqueue(theirs, ref, now, due, barrier, options.class));
    }
  }
}

export function postgresJobQueue(pool: pg.Pool, schema: string, clock: () => number): JobQueue {
  /** Applies a transition to one job if it exists (and, with `owner`, only while that owner holds it). */
  const change = (uid: string, next: (job: JobRow) => JobRow, owner?: string): Promise<JobRow | undefined> =>
    transaction(pool, async (sql) => {
      const job = await readJob(sql, uid, true);
      if (!job) return undefined;
      if (owner !== undefined && !(job.state === 'running' && job.leaseOwner === owner)) return undefined;
      const row = next(job);
      await updateJob(sql, row);
      if (row.state === 'queued') await notify(sql, schema, 'job');
      return row;
    });

  return {
    async enqueue(refs, cursor, options = {}) {
      await transaction(pool, async (sql) => {
        await enqueueRows(sql, refs, clock(), options);
        if (cursor) await setCursor(sql, cursor);
        if (refs.length > 0 || (cursor !== undefined && (await barrierWaits(sql, cursor)))) await notify(sql, schema, 'job');
      });
    },

    async nextSettleAt() {
      const { rows } = await pool.query<{ due: number | null }>(
        `SELECT MIN(next_attempt_at) AS due FROM jobs WHERE state = 'queued' AND settle_barrier IS NOT NULL AND next_attempt_at > ${BARRIER_VALUE}`,
      );
      return rows[0]?.due ?? undefined;
    },

    async nextDueAt() {
      // A job past due that waits for its barrier is left out: the poll that lifts it wakes the workers.
      const { rows } = await pool.query<{ due: number | null }>(
        `SELECT MIN(next_attempt_at) AS due FROM jobs WHERE state = 'queued' AND (settle_barrier IS NULL OR next_attempt_at > $1)`,
        [clock()],
      );
      return rows[0]?.due ?? undefined;
    },

    async claim(at, lease: Lease = DEFAULT_LEASE, studyInstanceUID, order = 'urgent-first') {
      const now = wholeMs(at);
      return transaction(pool, async (sql) => {
        const { rows } = await sql.query<PgJob & { barrier_value: number }>(
          `SELECT *, ${BARRIER_VALUE} AS barrier_value FROM jobs
           WHERE ((state = 'queued' AND next_attempt_at <= $1)
                  -- A dead worker's job, once any settle time an enqueue set while it ran is over.
                  OR (state = 'running' AND COALESCE(lease_until, 0) < $1 AND next_attempt_at <= $1))
             AND ($2::text IS NULL OR study_uid = $2)
             AND (settle_barrier IS NULL OR next_attempt_at <= ${BARRIER_VALUE})
             AND class_rank < $3
           ORDER BY class_rank ${order === 'backfill-first' ? 'DESC' : 'ASC'}, next_attempt_at, enqueued_at LIMIT 1
           FOR UPDATE SKIP LOCKED`,
          [now, studyInstanceUID ?? null, rankLimit(order)],
        );
        const row = rows[0];
        if (!row) return undefined;
        const job = toJobRow(row);
        if (!claimable(job, now, row.barrier_value)) return undefined;
        const next = onClaim(job, now, lease.owner, lease.leaseMs);
        await updateJob(sql, next);
        return publicJob(next);
      });
    },

    async renewLease(uid, owner, until) {
      const { rowCount } = await pool.query(`UPDATE jobs SET lease_until = $1 WHERE study_uid = $2 AND state = 'running' AND lease_owner = $3`, [wholeMs(until), uid, owner]);
      return (rowCount ?? 0) > 0;
    },

    async get(uid) {
      const job = await readJob(pool, uid);
      return job ? publicJob(job) : undefined;
    },

    async finish(uid, state, reason, timings, owner) {
      return (await change(uid, (job) => onFinish(job, clock(), state, reason, timings), owner)) !== undefined;
    },

    async fail(uid, code, message, retryAt, owner) {
      return (await change(uid, (job) => onFail(job, clock(), code, message, retryAt), owner)) !== undefined;
    },

    async requeue(uid) {
      const row = await change(uid, (job) => onRequeue(job, clock()));
      return row ? publicJob(row) : undefined;
    },

    async jobs(filter = {}) {
      const page = [pageLimit(filter.limit), Math.max(0, Math.floor(filter.offset ?? 0))];
      const { rows } =
        filter.state === undefined
          ? await pool.query<PgJob>(`SELECT * FROM jobs ORDER BY updated_at DESC, study_uid LIMIT $1 OFFSET $2`, page)
          : await pool.query<PgJob>(`SELECT * FROM jobs WHERE state = $3 ORDER BY updated_at DESC, study_uid LIMIT $1 OFFSET $2`, [...page, filter.state]);
      return rows.map((r) => publicJob(toJobRow(r)));
    },

    async countJobs(filter = {}) {
      const { rows } =
        filter.state === undefined
          ? await pool.query<{ n: number }>(`SELECT COUNT(*) AS n FROM jobs`)
          : await pool.query<{ n: number }>(`SELECT COUNT(*) AS n FROM jobs WHERE state = $1`, [filter.state]);
      return rows[0]?.n ?? 0;
    },

    async countByState() {
      const counts: Record<JobState, number> = { queued: 0, running: 0, done: 0, failed: 0, skipped: 0 };
      const { rows } = await pool.query<{ state: JobState; n: number }>(`SELECT state, COUNT(*) AS n FROM jobs GROUP BY state`);
      for (const { state, n } of rows) if (state in counts) counts[state] = n;
      return counts;
    },
  };
}
