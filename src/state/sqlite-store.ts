import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { StudyRef } from '../domain/types.ts';
import { PRIORITY_ORDER } from '../domain/priority.ts';
import type {
  EnqueueOptions,
  AuditEntry,
  AuditRecord,
  Feedback,
  FeedbackVerdict,
  ImageKind,
  Job,
  JobState,
  JobStore,
  NewFeedback,
  NewRetraction,
  Retraction,
  RetractionState,
  StoredImage,
  StoredResult,
  StudyRecord,
  WorklistEntry,
  WorklistFilter,
  WorklistQuery,
} from './store.ts';

/** A migration: SQL, and optionally a step in TypeScript that fills what the SQL added. */
interface Migration {
  sql: string;
  backfill?: (db: Database.Database) => void;
}

/** Versioned migrations; the index is the schema version they lead to. Append only. */
const MIGRATIONS: readonly (string | Migration)[] = [
  `CREATE TABLE jobs (
     study_uid TEXT PRIMARY KEY,
     orthanc_id TEXT,
     source TEXT NOT NULL,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     reason TEXT,
     error_code TEXT,
     rerun INTEGER NOT NULL DEFAULT 0,
     timings TEXT,
     enqueued_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX jobs_due ON jobs (state, next_attempt_at);
   CREATE TABLE results (
     result_key TEXT PRIMARY KEY,
     study_uid TEXT NOT NULL,
     body TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX results_study ON results (study_uid, created_at);
   CREATE TABLE cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // 2: the worklist (latest result per study, denormalised for filtering and ranking in SQL),
  // radiologists' feedback on findings, and rendered images (thumbnail, saliency overlay).
  {
    sql: `CREATE TABLE study_latest (
       study_uid TEXT PRIMARY KEY,
       result_key TEXT NOT NULL,
       priority TEXT NOT NULL,
       priority_rank INTEGER NOT NULL,
       top_probability REAL NOT NULL,
       modality TEXT,
       created_at INTEGER NOT NULL
     );
     CREATE INDEX study_latest_rank ON study_latest (priority_rank, top_probability);
     CREATE INDEX jobs_enqueued ON jobs (enqueued_at);
     CREATE TABLE feedback (
       id TEXT PRIMARY KEY,
       study_uid TEXT NOT NULL,
       finding_code TEXT NOT NULL,
       verdict TEXT NOT NULL CHECK (verdict IN ('accept', 'reject')),
       note TEXT,
       created_by TEXT NOT NULL,
       result_key TEXT,
       created_at INTEGER NOT NULL
     );
     CREATE INDEX feedback_study ON feedback (study_uid, created_at);
     CREATE TABLE images (
       study_uid TEXT NOT NULL,
       kind TEXT NOT NULL CHECK (kind IN ('thumbnail', 'saliency')),
       png BLOB NOT NULL,
       result_key TEXT,
       created_at INTEGER NOT NULL,
       PRIMARY KEY (study_uid, kind)
     );`,
    backfill: (db) => {
      const studies = db.prepare(`SELECT DISTINCT study_uid FROM results`).all() as { study_uid: string }[];
      for (const { study_uid } of studies) refreshLatest(db, study_uid);
    },
  },
  // 3: leases on running jobs (several workers may share a store), and the append-only audit
  // log of every write to the PACS and the FHIR server.
  `ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
   ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
   UPDATE jobs SET lease_until = 0 WHERE state = 'running';
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     target TEXT NOT NULL,
     action TEXT NOT NULL,
     study_uid TEXT NOT NULL,
     resource TEXT NOT NULL,
     result_key TEXT NOT NULL,
     model_version TEXT NOT NULL,
     outcome TEXT NOT NULL,
     detail TEXT
   );
   CREATE INDEX audit_study ON audit (study_uid, id);
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;`,
  // 4: the seen-set of polling ingest (QIDO-RS): which studies a poll already enqueued, with
  // what they held then (a study that gains instances is enqueued again).
  `CREATE TABLE ingest_seen (
     seen_set TEXT NOT NULL,
     study_uid TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     seen_at INTEGER NOT NULL,
     PRIMARY KEY (seen_set, study_uid)
   );
   CREATE INDEX ingest_seen_age ON ingest_seen (seen_set, seen_at);`,
  // 5: retractions (a result marked wrong, or its study deleted in the PACS) as durable work with
  // leases and retries, like jobs. Plain SQL (no AUTOINCREMENT, no OR REPLACE) so that another
  // database could run it; the JSON columns are TEXT.
  `CREATE TABLE retractions (
     study_uid TEXT PRIMARY KEY,
     result_key TEXT NOT NULL,
     result_keys TEXT NOT NULL,
     cause TEXT NOT NULL CHECK (cause IN ('marked-wrong', 'study-deleted')),
     reason TEXT,
     requested_by TEXT,
     state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     error_code TEXT,
     last_error TEXT,
     written TEXT NOT NULL,
     notes TEXT NOT NULL,
     lease_owner TEXT,
     lease_until INTEGER,
     requested_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     done_at INTEGER
   );
   CREATE INDEX retractions_due ON retractions (state, next_attempt_at);
   CREATE INDEX retractions_key ON retractions (result_key);
   CREATE INDEX feedback_age ON feedback (created_at);
   CREATE INDEX jobs_updated ON jobs (state, updated_at);`,
  // 6: a settling job may wait for a polling ingest to have looked past its due time (the name
  // of the cursor that holds how far it has looked): see EnqueueOptions.barrier.
  `ALTER TABLE jobs ADD COLUMN settle_barrier TEXT;`,
];

/**
 * A job with a settle barrier is due only once the named cursor (epoch ms: how far its polling
 * ingest has looked) has passed its due time too; a retry after its first attempt has none.
 */
const JOB_BARRIER = {
  where: `AND (settle_barrier IS NULL OR next_attempt_at <= COALESCE((SELECT CAST(value AS INTEGER) FROM cursors WHERE name = settle_barrier), 0))`,
  clear: `, settle_barrier = NULL`,
};

/** Default lease of a claimed job when the caller names none. */
export const DEFAULT_LEASE_MS = 60_000;

const NO_PRIORITY_RANK = PRIORITY_ORDER.length;
const DEFAULT_LIMIT = 50;

function latestBody(db: Database.Database, studyUid: string): string | undefined {
  const row = db
    .prepare(`SELECT body FROM results WHERE study_uid = ? ORDER BY created_at DESC, rowid DESC LIMIT 1`)
    .get(studyUid) as { body: string } | undefined;
  return row?.body;
}

/** Points study_latest at the study's latest result (the one latestResult returns). */
function refreshLatest(db: Database.Database, studyUid: string): void {
  const body = latestBody(db, studyUid);
  if (body === undefined) return;
  const result = JSON.parse(body) as StoredResult;
  const findings = Array.isArray(result.findings) ? result.findings : [];
  const rank = PRIORITY_ORDER.indexOf(result.priority);
  db.prepare(
    `INSERT INTO study_latest (study_uid, result_key, priority, priority_rank, top_probability, modality, created_at)
     VALUES (@uid, @key, @priority, @rank, @top, @modality, @createdAt)
     ON CONFLICT (study_uid) DO UPDATE SET
       result_key = excluded.result_key, priority = excluded.priority, priority_rank = excluded.priority_rank,
       top_probability = excluded.top_probability, modality = excluded.modality, created_at = excluded.created_at`,
  ).run({
    uid: studyUid,
    key: result.resultKey,
    priority: rank < 0 ? 'routine' : result.priority,
    rank: rank < 0 ? NO_PRIORITY_RANK - 1 : rank,
    top: Math.max(0, ...findings.map((f) => (Number.isFinite(f.probability) ? f.probability : 0))),
    modality: result.modality ? result.modality.toUpperCase() : null,
    createdAt: Number.isFinite(result.createdAt) ? result.createdAt : 0,
  });
}

/** `(?, ?, ?)` for an IN list. */
function placeholders(n: number): string {
  return `(${Array.from({ length: n }, () => '?').join(', ')})`;
}

/**
 * The worklist's rows: each job, its latest result (l) and a retraction of that very result (x),
 * if any — a retraction of an older result does not hide a newer one.
 */
const WORKLIST_FROM = `jobs j
  LEFT JOIN study_latest l ON l.study_uid = j.study_uid
  LEFT JOIN retractions x ON x.study_uid = j.study_uid AND x.result_key = l.result_key`;

/** WHERE clause and parameters of a worklist filter (over WORKLIST_FROM). */
function worklistWhere(filter: WorklistFilter): { sql: string; params: (string | number)[] } {
  const clauses: string[] = [];
  const params: (string | number)[] = [];
  if (filter.priority && filter.priority.length > 0) {
    clauses.push(`j.state = 'done' AND x.study_uid IS NULL AND l.priority IN ${placeholders(filter.priority.length)}`);
    params.push(...filter.priority);
  }
  if (filter.state && filter.state.length > 0) {
    clauses.push(`j.state IN ${placeholders(filter.state.length)}`);
    params.push(...filter.state);
  }
  if (filter.modality && filter.modality.length > 0) {
    clauses.push(`l.modality IN ${placeholders(filter.modality.length)}`);
    params.push(...filter.modality.map((m) => m.toUpperCase()));
  }
  if (filter.since !== undefined) {
    clauses.push(`j.enqueued_at >= ?`);
    params.push(filter.since);
  }
  if (filter.until !== undefined) {
    clauses.push(`j.enqueued_at < ?`);
    params.push(filter.until);
  }
  return { sql: clauses.length > 0 ? `WHERE ${clauses.map((c) => `(${c})`).join(' AND ')}` : '', params };
}

interface FeedbackRow {
  id: string;
  study_uid: string;
  finding_code: string;
  verdict: FeedbackVerdict;
  note: string | null;
  created_by: string;
  result_key: string | null;
  created_at: number;
}

function toFeedback(row: FeedbackRow): Feedback {
  return {
    id: row.id,
    studyInstanceUID: row.study_uid,
    findingCode: row.finding_code,
    verdict: row.verdict,
    ...(row.note !== null ? { note: row.note } : {}),
    by: row.created_by,
    ...(row.result_key !== null ? { resultKey: row.result_key } : {}),
    createdAt: row.created_at,
  };
}

interface JobRow {
  study_uid: string;
  orthanc_id: string | null;
  source: string;
  state: JobState;
  attempts: number;
  next_attempt_at: number;
  reason: string | null;
  error_code: string | null;
  timings: string | null;
  enqueued_at: number;
  updated_at: number;
  lease_owner?: string | null;
  lease_until?: number | null;
}

function toJob(row: JobRow): Job {
  return {
    studyInstanceUID: row.study_uid,
    ...(row.orthanc_id ? { orthancId: row.orthanc_id } : {}),
    source: row.source as StudyRef['source'],
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    ...(row.reason ? { reason: row.reason } : {}),
    ...(row.error_code ? { errorCode: row.error_code } : {}),
    ...(row.timings ? { timings: JSON.parse(row.timings) as Record<string, number> } : {}),
    enqueuedAt: row.enqueued_at,
    updatedAt: row.updated_at,
    ...(row.state === 'running' && row.lease_owner ? { leaseOwner: row.lease_owner } : {}),
    ...(row.state === 'running' && typeof row.lease_until === 'number' ? { leaseUntil: row.lease_until } : {}),
  };
}

interface RetractionRow {
  study_uid: string;
  result_key: string;
  result_keys: string;
  cause: Retraction['cause'];
  reason: string | null;
  requested_by: string | null;
  state: RetractionState;
  attempts: number;
  next_attempt_at: number;
  error_code: string | null;
  last_error: string | null;
  written: string;
  notes: string;
  lease_owner: string | null;
  lease_until: number | null;
  requested_at: number;
  updated_at: number;
  done_at: number | null;
}

function toRetraction(row: RetractionRow): Retraction {
  return {
    studyInstanceUID: row.study_uid,
    resultKey: row.result_key,
    resultKeys: JSON.parse(row.result_keys) as string[],
    cause: row.cause,
    ...(row.reason !== null ? { reason: row.reason } : {}),
    ...(row.requested_by !== null ? { requestedBy: row.requested_by } : {}),
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    ...(row.error_code !== null ? { errorCode: row.error_code } : {}),
    ...(row.last_error !== null ? { lastError: row.last_error } : {}),
    written: JSON.parse(row.written) as Retraction['written'],
    notes: JSON.parse(row.notes) as string[],
    requestedAt: row.requested_at,
    updatedAt: row.updated_at,
    ...(row.done_at !== null ? { doneAt: row.done_at } : {}),
    ...(row.state === 'running' && row.lease_owner !== null ? { leaseOwner: row.lease_owner } : {}),
    ...(row.state === 'running' && row.lease_until !== null ? { leaseUntil: row.lease_until } : {}),
  };
}

/**
 * Makes `db.prepare` return one compiled statement per SQL text: every method here prepares
 * its statement where it runs it (readable), and compiling them again for each job cost ~2 ms
 * of every study's CPU. The texts are constants or built from constants (filters, IN lists of
 * a page), so the cache stays small; it stops growing at 500 entries all the same.
 */
function cachePreparedStatements(db: Database.Database): void {
  const compile = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let statement = cache.get(sql);
    if (statement === undefined) {
      statement = compile(sql);
      if (cache.size < 500) cache.set(sql, statement);
    }
    return statement;
  }) as typeof db.prepare;
}

/** SQLite (WAL) job store; `:memory:` gives the in-process store used by `analyze` and unit tests. */
export class SqliteJobStore implements JobStore {
  private readonly db: Database.Database;

  constructor(
    file: string,
    private readonly clock: () => number = Date.now,
  ) {
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // FULL, explicitly: better-sqlite3 is built to default a reopened WAL database to NORMAL,
    // where a power loss can drop the last commits — acknowledged work nobody sends again (a
    // webhook's 202, a retraction or feedback the API accepted). An fsync per commit is the price.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    cachePreparedStatements(this.db);
    this.migrate();
    // A job left running by a crashed process is not reset here (another worker may share the
    // store): its lease expires and claim() takes it again.
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      const migration = MIGRATIONS[v] as string | Migration;
      this.db.transaction(() => {
        this.db.exec(typeof migration === 'string' ? migration : migration.sql);
        if (typeof migration !== 'string') migration.backfill?.(this.db);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  enqueue(refs: readonly StudyRef[], cursor?: { name: string; value: string }, options: EnqueueOptions = {}): void {
    const now = this.clock();
    const due = now + Math.max(0, options.settleMs ?? 0);
    const barrier = options.settleMs !== undefined ? (options.barrier ?? null) : null;
    const upsert = this.db.prepare(
      `INSERT INTO jobs (study_uid, orthanc_id, source, state, attempts, next_attempt_at, enqueued_at, updated_at, settle_barrier)
       VALUES (@uid, @orthancId, @source, 'queued', 0, @due, @now, @now, @barrier)
       ON CONFLICT (study_uid) DO UPDATE SET
         -- A running job is marked to run again when it finishes (new series may have arrived);
         -- its next_attempt_at (unused while it runs) keeps the settle time for that rerun.
         rerun = CASE WHEN state = 'running' THEN 1 ELSE rerun END,
         state = CASE WHEN state = 'running' THEN 'running' ELSE 'queued' END,
         attempts = CASE WHEN state = 'running' THEN attempts ELSE 0 END,
         next_attempt_at = CASE WHEN state = 'running' AND @due = @now THEN next_attempt_at ELSE @due END,
         orthanc_id = COALESCE(@orthancId, orthanc_id),
         settle_barrier = @barrier,
         updated_at = @now`,
    );
    const setCursor = this.db.prepare(`INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`);
    this.db.transaction(() => {
      for (const ref of refs) upsert.run({ uid: ref.studyInstanceUID, orthancId: ref.orthancId ?? null, source: ref.source, now, due, barrier });
      if (cursor) setCursor.run(cursor.name, cursor.value);
    })();
  }

  nextSettleAt(): number | undefined {
    const row = this.db
      .prepare(
        `SELECT MIN(next_attempt_at) AS due FROM jobs
         WHERE state = 'queued' AND settle_barrier IS NOT NULL
           AND next_attempt_at > COALESCE((SELECT CAST(value AS INTEGER) FROM cursors WHERE name = settle_barrier), 0)`,
      )
      .get() as { due: number | null };
    return row.due ?? undefined;
  }

  nextDueAt(): number | undefined {
    // A job past due that waits for its barrier is left out: the poll that lifts it wakes the workers.
    const row = this.db
      .prepare(`SELECT MIN(next_attempt_at) AS due FROM jobs WHERE state = 'queued' AND (settle_barrier IS NULL OR next_attempt_at > ?)`)
      .get(this.clock()) as { due: number | null };
    return row.due ?? undefined;
  }

  enqueueUnseen(seenSet: string, studies: readonly { ref: StudyRef; fingerprint: string }[], cursor?: { name: string; value: string }): StudyRef[] {
    const now = this.clock();
    const known = this.db.prepare(`SELECT fingerprint FROM ingest_seen WHERE seen_set = ? AND study_uid = ?`);
    const mark = this.db.prepare(
      `INSERT INTO ingest_seen (seen_set, study_uid, fingerprint, seen_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (seen_set, study_uid) DO UPDATE SET fingerprint = excluded.fingerprint, seen_at = excluded.seen_at`,
    );
    return this.db.transaction(() => {
      const fresh: StudyRef[] = [];
      for (const { ref, fingerprint } of studies) {
        const row = known.get(seenSet, ref.studyInstanceUID) as { fingerprint: string } | undefined;
        if (row?.fingerprint !== fingerprint && !fresh.some((r) => r.studyInstanceUID === ref.studyInstanceUID)) fresh.push(ref);
        mark.run(seenSet, ref.studyInstanceUID, fingerprint, now);
      }
      this.enqueue(fresh, cursor);
      return fresh;
    })();
  }

  pruneSeen(seenSet: string, before: number): number {
    return this.db.prepare(`DELETE FROM ingest_seen WHERE seen_set = ? AND seen_at < ?`).run(seenSet, before).changes;
  }

  getCursor(name: string): string | undefined {
    const row = this.db.prepare(`SELECT value FROM cursors WHERE name = ?`).get(name) as { value: string } | undefined;
    return row?.value;
  }

  claim(now: number, lease: { owner: string; leaseMs: number } = { owner: 'local', leaseMs: DEFAULT_LEASE_MS }, studyInstanceUID?: string): Job | undefined {
    const row = this.claimRow<JobRow>('jobs', 'queued', 'enqueued_at', now, lease, studyInstanceUID, JOB_BARRIER);
    return row ? toJob(row) : undefined;
  }

  /**
   * The one claim of both queues (jobs, retractions): the first due row, waiting or running
   * under an expired lease, taken with a fresh lease. The state-and-lease guard on the UPDATE
   * makes the claim safe when two processes race for the same row. `table` and the columns are
   * constants of this class, never input.
   */
  private claimRow<R extends { study_uid: string; state: string; attempts: number; lease_until?: number | null }>(
    table: 'jobs' | 'retractions',
    waiting: 'queued' | 'pending',
    tieBreak: 'enqueued_at' | 'requested_at',
    now: number,
    lease: { owner: string; leaseMs: number },
    studyInstanceUID: string | undefined,
    /** Jobs only: their settle barrier, and clearing it when taken. */
    barrier?: { where: string; clear: string },
  ): R | undefined {
    return this.db.transaction(() => {
      const row = this.db
        .prepare(
          `SELECT * FROM ${table}
           WHERE ((state = '${waiting}' AND next_attempt_at <= @now)
                  -- A dead worker's job, once any settle time an enqueue set while it ran is over.
                  OR (state = 'running' AND COALESCE(lease_until, 0) < @now AND next_attempt_at <= @now))
             AND (@uid IS NULL OR study_uid = @uid) ${barrier?.where ?? ''}
           ORDER BY next_attempt_at, ${tieBreak} LIMIT 1`,
        )
        .get({ now, uid: studyInstanceUID ?? null }) as R | undefined;
      if (!row) return undefined;
      const until = now + lease.leaseMs;
      const changed = this.db
        .prepare(
          `UPDATE ${table} SET state = 'running', attempts = attempts + 1, updated_at = @now, lease_owner = @owner, lease_until = @until ${barrier?.clear ?? ''}
           WHERE study_uid = @uid AND state = @state AND COALESCE(lease_until, 0) = @oldUntil`,
        )
        .run({ now, owner: lease.owner, until, uid: row.study_uid, state: row.state, oldUntil: row.lease_until ?? 0 }).changes;
      if (changed === 0) return undefined;
      return { ...row, state: 'running', attempts: row.attempts + 1, lease_owner: lease.owner, lease_until: until };
    })();
  }

  renewLease(studyInstanceUID: string, owner: string, until: number): boolean {
    return (
      this.db
        .prepare(`UPDATE jobs SET lease_until = ? WHERE study_uid = ? AND state = 'running' AND lease_owner = ?`)
        .run(until, studyInstanceUID, owner).changes > 0
    );
  }

  get(studyInstanceUID: string): Job | undefined {
    const row = this.db.prepare(`SELECT * FROM jobs WHERE study_uid = ?`).get(studyInstanceUID) as JobRow | undefined;
    return row ? toJob(row) : undefined;
  }

  finish(studyInstanceUID: string, state: 'done' | 'skipped', reason: string | undefined, timings?: Record<string, number>): void {
    const now = this.clock();
    this.db
      .prepare(
        `UPDATE jobs SET
           state = CASE WHEN rerun = 1 THEN 'queued' ELSE @state END,
           -- A rerun waits out the settle time its enqueue asked for (see enqueue).
           next_attempt_at = CASE WHEN rerun = 1 THEN MAX(@now, next_attempt_at) ELSE @now END,
           attempts = CASE WHEN rerun = 1 THEN 0 ELSE attempts END, rerun = 0,
           reason = @reason, error_code = NULL, timings = @timings, updated_at = @now, lease_owner = NULL, lease_until = NULL
         WHERE study_uid = @uid`,
      )
      .run({ uid: studyInstanceUID, state, reason: reason ?? null, timings: timings ? JSON.stringify(timings) : null, now });
  }

  fail(studyInstanceUID: string, errorCode: string, message: string, retryAt: number | undefined): void {
    const now = this.clock();
    this.db
      .prepare(
        `UPDATE jobs SET
           state = CASE WHEN rerun = 1 THEN 'queued' ELSE @state END,
           next_attempt_at = CASE WHEN rerun = 1 THEN MAX(@now, next_attempt_at) ELSE @next END,
           attempts = CASE WHEN rerun = 1 THEN 0 ELSE attempts END, rerun = 0,
           reason = @message, error_code = @code, updated_at = @now, lease_owner = NULL, lease_until = NULL
         WHERE study_uid = @uid`,
      )
      .run({ uid: studyInstanceUID, state: retryAt === undefined ? 'failed' : 'queued', next: retryAt ?? now, message, code: errorCode, now });
  }

  saveResult(result: StoredResult): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO results (result_key, study_uid, body, created_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (result_key) DO UPDATE SET body = excluded.body`,
        )
        .run(result.resultKey, result.studyInstanceUID, JSON.stringify(result), result.createdAt);
      refreshLatest(this.db, result.studyInstanceUID);
    })();
  }

  latestResult(studyInstanceUID: string): StoredResult | undefined {
    const body = latestBody(this.db, studyInstanceUID);
    return body === undefined ? undefined : (JSON.parse(body) as StoredResult);
  }

  jobs(filter: { state?: JobState } = {}): Job[] {
    const rows = (
      filter.state === undefined
        ? this.db.prepare(`SELECT * FROM jobs ORDER BY updated_at DESC`).all()
        : this.db.prepare(`SELECT * FROM jobs WHERE state = ? ORDER BY updated_at DESC`).all(filter.state)
    ) as JobRow[];
    return rows.map(toJob);
  }

  worklist(query: WorklistQuery = {}): WorklistEntry[] {
    const where = worklistWhere(query);
    const limit = Math.max(0, Math.floor(query.limit ?? DEFAULT_LIMIT));
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    const rows = this.db
      .prepare(
        `SELECT j.*, l.modality AS latest_modality, r.body AS latest_body,
           x.cause AS retraction_cause, x.state AS retraction_state, x.requested_at AS retraction_at
         FROM ${WORKLIST_FROM}
         LEFT JOIN results r ON r.result_key = l.result_key
         ${where.sql}
         ORDER BY
           CASE WHEN j.state = 'done' AND x.study_uid IS NULL AND l.priority_rank IS NOT NULL THEN l.priority_rank ELSE ${NO_PRIORITY_RANK} END,
           CASE WHEN j.state = 'done' AND x.study_uid IS NULL AND l.top_probability IS NOT NULL THEN l.top_probability ELSE 0 END DESC,
           j.enqueued_at, j.study_uid
         LIMIT ? OFFSET ?`,
      )
      .all(...where.params, limit, offset) as (JobRow & {
      latest_modality: string | null;
      latest_body: string | null;
      retraction_cause: Retraction['cause'] | null;
      retraction_state: RetractionState | null;
      retraction_at: number | null;
    })[];
    const images = new Map<string, ImageKind[]>();
    if (rows.length > 0) {
      const found = this.db
        .prepare(`SELECT study_uid, kind FROM images WHERE study_uid IN ${placeholders(rows.length)} ORDER BY kind DESC`)
        .all(...rows.map((r) => r.study_uid)) as { study_uid: string; kind: ImageKind }[];
      for (const { study_uid, kind } of found) images.set(study_uid, [...(images.get(study_uid) ?? []), kind]);
    }
    return rows.map((row): WorklistEntry => {
      const retracted = row.retraction_cause !== null;
      const result = row.state === 'done' && !retracted && row.latest_body !== null ? (JSON.parse(row.latest_body) as StoredResult) : undefined;
      return {
        studyInstanceUID: row.study_uid,
        state: row.state,
        ...(result ? { priority: result.priority, findings: result.findings } : {}),
        ...(retracted ? { retracted: { cause: row.retraction_cause!, state: row.retraction_state!, requestedAt: row.retraction_at! } } : {}),
        ...(row.latest_modality ? { modality: row.latest_modality } : {}),
        ...(row.reason ? { reason: row.reason } : {}),
        ...(row.error_code ? { errorCode: row.error_code } : {}),
        images: images.get(row.study_uid) ?? [],
        receivedAt: row.enqueued_at,
        updatedAt: row.updated_at,
      };
    });
  }

  countWorklist(filter: WorklistFilter = {}): number {
    const where = worklistWhere(filter);
    const row = this.db
      .prepare(`SELECT COUNT(*) AS n FROM ${WORKLIST_FROM} ${where.sql}`)
      .get(...where.params) as { n: number };
    return row.n;
  }

  study(studyInstanceUID: string): StudyRecord | undefined {
    const job = this.get(studyInstanceUID);
    if (!job) return undefined;
    const result = this.latestResult(studyInstanceUID);
    const retraction = this.getRetraction(studyInstanceUID);
    return { job, ...(result ? { result } : {}), ...(retraction ? { retraction } : {}) };
  }

  requeue(studyInstanceUID: string): Job | undefined {
    const now = this.clock();
    this.db
      .prepare(
        `UPDATE jobs SET
           -- A running job keeps running and runs again when it finishes (as enqueue does).
           rerun = CASE WHEN state = 'running' THEN 1 ELSE rerun END,
           attempts = CASE WHEN state = 'running' THEN attempts ELSE 0 END,
           next_attempt_at = CASE WHEN state = 'running' THEN next_attempt_at ELSE @now END,
           reason = CASE WHEN state = 'running' THEN reason ELSE NULL END,
           error_code = CASE WHEN state = 'running' THEN error_code ELSE NULL END,
           state = CASE WHEN state = 'running' THEN 'running' ELSE 'queued' END,
           updated_at = @now
         WHERE study_uid = @uid`,
      )
      .run({ uid: studyInstanceUID, now });
    return this.get(studyInstanceUID);
  }

  addFeedback(feedback: NewFeedback): Feedback {
    const stored: Feedback = { ...feedback, id: randomUUID(), createdAt: this.clock() };
    this.db
      .prepare(
        `INSERT INTO feedback (id, study_uid, finding_code, verdict, note, created_by, result_key, created_at)
         VALUES (@id, @uid, @code, @verdict, @note, @by, @resultKey, @createdAt)`,
      )
      .run({
        id: stored.id,
        uid: stored.studyInstanceUID,
        code: stored.findingCode,
        verdict: stored.verdict,
        note: stored.note ?? null,
        by: stored.by,
        resultKey: stored.resultKey ?? null,
        createdAt: stored.createdAt,
      });
    return stored;
  }

  listFeedback(studyInstanceUID?: string): Feedback[] {
    const rows = (
      studyInstanceUID === undefined
        ? this.db.prepare(`SELECT * FROM feedback ORDER BY created_at, id`).all()
        : this.db.prepare(`SELECT * FROM feedback WHERE study_uid = ? ORDER BY created_at, id`).all(studyInstanceUID)
    ) as FeedbackRow[];
    return rows.map(toFeedback);
  }

  saveImage(studyInstanceUID: string, kind: ImageKind, png: Uint8Array, resultKey?: string): void {
    this.db
      .prepare(
        `INSERT INTO images (study_uid, kind, png, result_key, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (study_uid, kind) DO UPDATE SET
           png = excluded.png, result_key = excluded.result_key, created_at = excluded.created_at`,
      )
      .run(studyInstanceUID, kind, Buffer.from(png.buffer, png.byteOffset, png.byteLength), resultKey ?? null, this.clock());
  }

  getImage(studyInstanceUID: string, kind: ImageKind): StoredImage | undefined {
    const row = this.db.prepare(`SELECT * FROM images WHERE study_uid = ? AND kind = ?`).get(studyInstanceUID, kind) as
      | { study_uid: string; kind: ImageKind; png: Buffer; result_key: string | null; created_at: number }
      | undefined;
    if (!row) return undefined;
    return {
      studyInstanceUID: row.study_uid,
      kind: row.kind,
      png: row.png,
      ...(row.result_key !== null ? { resultKey: row.result_key } : {}),
      createdAt: row.created_at,
    };
  }

  audit(entry: AuditEntry): void {
    this.db
      .prepare(
        `INSERT INTO audit (at, target, action, study_uid, resource, result_key, model_version, outcome, detail)
         VALUES (@at, @target, @action, @uid, @resource, @resultKey, @modelVersion, @outcome, @detail)`,
      )
      .run({
        at: this.clock(),
        target: entry.target,
        action: entry.action,
        uid: entry.studyInstanceUID,
        resource: entry.resource,
        resultKey: entry.resultKey,
        modelVersion: entry.modelVersion,
        outcome: entry.outcome,
        detail: entry.detail ?? null,
      });
  }

  auditLog(filter: { studyInstanceUID?: string } = {}): AuditRecord[] {
    const rows = (
      filter.studyInstanceUID === undefined
        ? this.db.prepare(`SELECT * FROM audit ORDER BY id`).all()
        : this.db.prepare(`SELECT * FROM audit WHERE study_uid = ? ORDER BY id`).all(filter.studyInstanceUID)
    ) as { id: number; at: number; target: string; action: string; study_uid: string; resource: string; result_key: string; model_version: string; outcome: 'ok' | 'error'; detail: string | null }[];
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      target: r.target,
      action: r.action,
      studyInstanceUID: r.study_uid,
      resource: r.resource,
      resultKey: r.result_key,
      modelVersion: r.model_version,
      outcome: r.outcome,
      ...(r.detail !== null ? { detail: r.detail } : {}),
    }));
  }

  countByState(): Record<JobState, number> {
    const counts: Record<JobState, number> = { queued: 0, running: 0, done: 0, failed: 0, skipped: 0 };
    const rows = this.db.prepare(`SELECT state, COUNT(*) AS n FROM jobs GROUP BY state`).all() as { state: JobState; n: number }[];
    for (const { state, n } of rows) if (state in counts) counts[state] = n;
    return counts;
  }

  purgeImages(before: number): number {
    return this.db.prepare(`DELETE FROM images WHERE created_at < ?`).run(before).changes;
  }

  purgeText(before: number): { feedbackNotes: number; retractionReasons: number } {
    return this.db.transaction(() => ({
      feedbackNotes: this.db.prepare(`UPDATE feedback SET note = NULL WHERE created_at < ? AND note IS NOT NULL`).run(before).changes,
      // A pending retraction still needs its reason for the Provenance it will write.
      retractionReasons: this.db
        .prepare(`UPDATE retractions SET reason = NULL WHERE requested_at < ? AND reason IS NOT NULL AND state IN ('done', 'failed')`)
        .run(before).changes,
    }))();
  }

  resultsOf(studyInstanceUID: string): StoredResult[] {
    const rows = this.db
      .prepare(`SELECT body FROM results WHERE study_uid = ? ORDER BY created_at, rowid`)
      .all(studyInstanceUID) as { body: string }[];
    return rows.map((r) => JSON.parse(r.body) as StoredResult);
  }

  requestRetraction(request: NewRetraction): { retraction: Retraction; created: boolean } | undefined {
    return this.db.transaction(() => {
      const results = this.resultsOf(request.studyInstanceUID);
      const latest = this.latestResult(request.studyInstanceUID);
      if (!latest) return undefined;
      const existing = this.getRetraction(request.studyInstanceUID);
      if (existing && existing.resultKey === latest.resultKey && existing.state !== 'failed') return { retraction: existing, created: false };
      // Never replaced under its runner, whose progress and end would be written onto the new
      // request: a running retraction ends first (or its lease expires and it is run again).
      if (existing?.state === 'running') return { retraction: existing, created: false };
      const now = this.clock();
      this.db
        .prepare(
          `INSERT INTO retractions (study_uid, result_key, result_keys, cause, reason, requested_by, state, attempts, next_attempt_at,
             written, notes, requested_at, updated_at)
           VALUES (@uid, @key, @keys, @cause, @reason, @by, 'pending', 0, @now, @written, '[]', @now, @now)
           ON CONFLICT (study_uid) DO UPDATE SET
             result_key = excluded.result_key, result_keys = excluded.result_keys, cause = excluded.cause,
             reason = excluded.reason, requested_by = excluded.requested_by, state = 'pending', attempts = 0,
             next_attempt_at = excluded.next_attempt_at, error_code = NULL, last_error = NULL,
             written = excluded.written, notes = excluded.notes, lease_owner = NULL, lease_until = NULL,
             requested_at = excluded.requested_at, updated_at = excluded.updated_at, done_at = NULL`,
        )
        .run({
          uid: request.studyInstanceUID,
          key: latest.resultKey,
          keys: JSON.stringify(results.map((r) => r.resultKey)),
          cause: request.cause,
          reason: request.reason ?? null,
          by: request.requestedBy ?? null,
          now,
          written: JSON.stringify({ fhir: false, pacs: false, metadata: false }),
        });
      return { retraction: this.getRetraction(request.studyInstanceUID)!, created: true };
    })();
  }

  getRetraction(studyInstanceUID: string): Retraction | undefined {
    const row = this.db.prepare(`SELECT * FROM retractions WHERE study_uid = ?`).get(studyInstanceUID) as RetractionRow | undefined;
    return row ? toRetraction(row) : undefined;
  }

  retractions(filter: { state?: RetractionState } = {}): Retraction[] {
    const rows = (
      filter.state === undefined
        ? this.db.prepare(`SELECT * FROM retractions ORDER BY updated_at DESC, study_uid`).all()
        : this.db.prepare(`SELECT * FROM retractions WHERE state = ? ORDER BY updated_at DESC, study_uid`).all(filter.state)
    ) as RetractionRow[];
    return rows.map(toRetraction);
  }

  claimRetraction(now: number, lease: { owner: string; leaseMs: number }, studyInstanceUID?: string): Retraction | undefined {
    const row = this.claimRow<RetractionRow>('retractions', 'pending', 'requested_at', now, lease, studyInstanceUID);
    return row ? toRetraction(row) : undefined;
  }

  renewRetractionLease(studyInstanceUID: string, owner: string, until: number): boolean {
    return (
      this.db
        .prepare(`UPDATE retractions SET lease_until = ? WHERE study_uid = ? AND state = 'running' AND lease_owner = ?`)
        .run(until, studyInstanceUID, owner).changes > 0
    );
  }

  saveRetractionProgress(studyInstanceUID: string, progress: Pick<Retraction, 'written' | 'notes'>): void {
    this.db
      .prepare(`UPDATE retractions SET written = ?, notes = ?, updated_at = ? WHERE study_uid = ?`)
      .run(JSON.stringify(progress.written), JSON.stringify(progress.notes), this.clock(), studyInstanceUID);
  }

  finishRetraction(studyInstanceUID: string): void {
    const now = this.clock();
    this.db
      .prepare(
        `UPDATE retractions SET state = 'done', error_code = NULL, last_error = NULL, updated_at = ?, done_at = ?,
           lease_owner = NULL, lease_until = NULL
         WHERE study_uid = ?`,
      )
      .run(now, now, studyInstanceUID);
  }

  failRetraction(studyInstanceUID: string, errorCode: string, message: string, retryAt: number | undefined, countAttempt = true): void {
    this.db
      .prepare(
        `UPDATE retractions SET state = @state, next_attempt_at = @next, error_code = @code, last_error = @message,
           attempts = attempts - @uncount, updated_at = @now, lease_owner = NULL, lease_until = NULL
         WHERE study_uid = @uid`,
      )
      .run({
        uid: studyInstanceUID,
        state: retryAt === undefined ? 'failed' : 'pending',
        next: retryAt ?? this.clock(),
        code: errorCode,
        message,
        uncount: countAttempt ? 0 : 1,
        now: this.clock(),
      });
  }

  sweepCandidates(since: number, after: string, limit: number): string[] {
    const rows = this.db
      .prepare(
        `SELECT j.study_uid FROM ${WORKLIST_FROM}
         WHERE j.state = 'done' AND j.updated_at >= ? AND j.study_uid > ? AND l.result_key IS NOT NULL AND x.study_uid IS NULL
         ORDER BY j.study_uid LIMIT ?`,
      )
      .all(since, after, limit) as { study_uid: string }[];
    return rows.map((r) => r.study_uid);
  }

  close(): void {
    this.db.close();
  }
}
