import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { StudyRef } from '../domain/types.ts';
import { PRIORITY_ORDER } from '../pipeline/priority.ts';
import type { Job, JobState, JobStore, StoredResult, WorklistEntry } from './store.ts';

/** Versioned migrations; the index is the schema version they lead to. */
const MIGRATIONS = [
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
];

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
  };
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
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    // A job left running by a crashed process is due again: nothing it started was recorded as done.
    this.db.prepare(`UPDATE jobs SET state = 'queued' WHERE state = 'running'`).run();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] as string);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  enqueue(refs: readonly StudyRef[], cursor?: { name: string; value: string }): void {
    const now = this.clock();
    const upsert = this.db.prepare(
      `INSERT INTO jobs (study_uid, orthanc_id, source, state, attempts, next_attempt_at, enqueued_at, updated_at)
       VALUES (@uid, @orthancId, @source, 'queued', 0, @now, @now, @now)
       ON CONFLICT (study_uid) DO UPDATE SET
         -- A running job is marked to run again when it finishes (new series may have arrived).
         rerun = CASE WHEN state = 'running' THEN 1 ELSE rerun END,
         state = CASE WHEN state = 'running' THEN 'running' ELSE 'queued' END,
         attempts = CASE WHEN state = 'running' THEN attempts ELSE 0 END,
         next_attempt_at = CASE WHEN state = 'running' THEN next_attempt_at ELSE @now END,
         orthanc_id = COALESCE(@orthancId, orthanc_id),
         updated_at = @now`,
    );
    const setCursor = this.db.prepare(`INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`);
    this.db.transaction(() => {
      for (const ref of refs) upsert.run({ uid: ref.studyInstanceUID, orthancId: ref.orthancId ?? null, source: ref.source, now });
      if (cursor) setCursor.run(cursor.name, cursor.value);
    })();
  }

  getCursor(name: string): string | undefined {
    const row = this.db.prepare(`SELECT value FROM cursors WHERE name = ?`).get(name) as { value: string } | undefined;
    return row?.value;
  }

  claim(now: number): Job | undefined {
    return this.db.transaction(() => {
      const row = this.db
        .prepare(`SELECT * FROM jobs WHERE state = 'queued' AND next_attempt_at <= ? ORDER BY next_attempt_at, enqueued_at LIMIT 1`)
        .get(now) as JobRow | undefined;
      if (!row) return undefined;
      this.db.prepare(`UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ? WHERE study_uid = ?`).run(now, row.study_uid);
      return toJob({ ...row, state: 'running', attempts: row.attempts + 1 });
    })();
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
           next_attempt_at = @now, attempts = CASE WHEN rerun = 1 THEN 0 ELSE attempts END, rerun = 0,
           reason = @reason, error_code = NULL, timings = @timings, updated_at = @now
         WHERE study_uid = @uid`,
      )
      .run({ uid: studyInstanceUID, state, reason: reason ?? null, timings: timings ? JSON.stringify(timings) : null, now });
  }

  fail(studyInstanceUID: string, errorCode: string, message: string, retryAt: number | undefined): void {
    const now = this.clock();
    this.db
      .prepare(
        `UPDATE jobs SET state = @state, next_attempt_at = @next, reason = @message, error_code = @code, updated_at = @now
         WHERE study_uid = @uid`,
      )
      .run({ uid: studyInstanceUID, state: retryAt === undefined ? 'failed' : 'queued', next: retryAt ?? now, message, code: errorCode, now });
  }

  saveResult(result: StoredResult): void {
    this.db
      .prepare(
        `INSERT INTO results (result_key, study_uid, body, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (result_key) DO UPDATE SET body = excluded.body`,
      )
      .run(result.resultKey, result.studyInstanceUID, JSON.stringify(result), result.createdAt);
  }

  latestResult(studyInstanceUID: string): StoredResult | undefined {
    const row = this.db
      .prepare(`SELECT body FROM results WHERE study_uid = ? ORDER BY created_at DESC, rowid DESC LIMIT 1`)
      .get(studyInstanceUID) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as StoredResult) : undefined;
  }

  jobs(filter: { state?: JobState } = {}): Job[] {
    const rows = (
      filter.state === undefined
        ? this.db.prepare(`SELECT * FROM jobs ORDER BY updated_at DESC`).all()
        : this.db.prepare(`SELECT * FROM jobs WHERE state = ? ORDER BY updated_at DESC`).all(filter.state)
    ) as JobRow[];
    return rows.map(toJob);
  }

  worklist(): WorklistEntry[] {
    const entries = this.jobs().map((job): WorklistEntry => {
      const result = job.state === 'done' ? this.latestResult(job.studyInstanceUID) : undefined;
      return {
        studyInstanceUID: job.studyInstanceUID,
        state: job.state,
        ...(result ? { priority: result.priority, findings: result.findings } : {}),
        ...(job.reason ? { reason: job.reason } : {}),
        updatedAt: job.updatedAt,
      };
    });
    const rank = (e: WorklistEntry): number => (e.priority ? PRIORITY_ORDER.indexOf(e.priority) : PRIORITY_ORDER.length);
    const top = (e: WorklistEntry): number => Math.max(0, ...(e.findings ?? []).map((f) => f.probability));
    return entries.sort((a, b) => rank(a) - rank(b) || top(b) - top(a) || b.updatedAt - a.updatedAt);
  }

  close(): void {
    this.db.close();
  }
}
