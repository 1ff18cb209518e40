/** Results, the latest result per study, the worklist pictures and the worklist itself, on SQLite. */
import type Database from 'better-sqlite3';
import type { ImageKind, JobState, Retraction, RetractionState, StoredResult, WorklistEntry, WorklistFilter } from '../../domain/records.ts';
import { PRIORITY_ORDER } from '../../domain/priority.ts';
import type { ResultStore } from '../ports.ts';
import { placeholders, writeTransaction } from './sql.ts';

const NO_PRIORITY_RANK = PRIORITY_ORDER.length;
const DEFAULT_LIMIT = 50;

function latestBody(db: Database.Database, studyUid: string): string | undefined {
  const row = db
    .prepare(`SELECT body FROM results WHERE study_uid = ? ORDER BY created_at DESC, rowid DESC LIMIT 1`)
    .get(studyUid) as { body: string } | undefined;
  return row?.body;
}

/** Points study_latest at the study's latest result (the one latestResult returns). */
export function refreshLatest(db: Database.Database, studyUid: string): void {
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

/**
 * The worklist's rows: each job, its latest result (l) and a retraction of that very result (x),
 * if any — a retraction of an older result does not hide a newer one.
 */
export const WORKLIST_FROM = `jobs j
  LEFT JOIN study_latest l ON l.study_uid = j.study_uid
  LEFT JOIN retractions x ON x.study_uid = j.study_uid AND x.result_key = l.result_key`;

/** WHERE clause and parameters of a worklist filter (over WORKLIST_FROM). */
export function worklistWhere(filter: WorklistFilter): { sql: string; params: (string | number)[] } {
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


type WorklistRow = {
  study_uid: string;
  state: JobState;
  reason: string | null;
  error_code: string | null;
  enqueued_at: number;
  updated_at: number;
  latest_modality: string | null;
  latest_body: string | null;
  retraction_cause: Retraction['cause'] | null;
  retraction_state: RetractionState | null;
  retraction_at: number | null;
};

export function sqliteResults(db: Database.Database, clock: () => number): Omit<ResultStore, 'study'> {
  return {
    async saveResult(result) {
      writeTransaction(db, () => {
        db.prepare(
          `INSERT INTO results (result_key, study_uid, body, created_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (result_key) DO UPDATE SET body = excluded.body`,
        ).run(result.resultKey, result.studyInstanceUID, JSON.stringify(result), result.createdAt);
        refreshLatest(db, result.studyInstanceUID);
      });
    },

    async latestResult(uid) {
      const body = latestBody(db, uid);
      return body === undefined ? undefined : (JSON.parse(body) as StoredResult);
    },

    async resultsOf(uid) {
      return resultsOfSync(db, uid);
    },

    async saveImage(uid, kind, png, resultKey) {
      db.prepare(
        `INSERT INTO images (study_uid, kind, png, result_key, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (study_uid, kind) DO UPDATE SET png = excluded.png, result_key = excluded.result_key, created_at = excluded.created_at`,
      ).run(uid, kind, Buffer.from(png.buffer, png.byteOffset, png.byteLength), resultKey ?? null, clock());
    },

    async getImage(uid, kind) {
      const row = db.prepare(`SELECT * FROM images WHERE study_uid = ? AND kind = ?`).get(uid, kind) as
        | { study_uid: string; kind: ImageKind; png: Buffer; result_key: string | null; created_at: number }
        | undefined;
      if (!row) return undefined;
      return { studyInstanceUID: row.study_uid, kind: row.kind, png: row.png, ...(row.result_key !== null ? { resultKey: row.result_key } : {}), createdAt: row.created_at };
    },

    async worklist(query = {}) {
      const where = worklistWhere(query);
      const limit = Math.max(0, Math.floor(query.limit ?? DEFAULT_LIMIT));
      const offset = Math.max(0, Math.floor(query.offset ?? 0));
      const rows = db
        .prepare(
          `SELECT j.study_uid, j.state, j.reason, j.error_code, j.enqueued_at, j.updated_at,
             l.modality AS latest_modality, r.body AS latest_body,
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
        .all(...where.params, limit, offset) as WorklistRow[];
      const images = new Map<string, ImageKind[]>();
      if (rows.length > 0) {
        const found = db
          .prepare(`SELECT study_uid, kind FROM images WHERE study_uid IN ${placeholders(rows.length)} ORDER BY kind DESC`)
          .all(...rows.map((r) => r.study_uid)) as { study_uid: string; kind: ImageKind }[];
        for (const { study_uid, kind } of found) images.set(study_uid, [...(images.get(study_uid) ?? []), kind]);
      }
      return rows.map((row) => worklistEntry(row, images.get(row.study_uid) ?? []));
    },

    async countWorklist(filter: WorklistFilter = {}) {
      const where = worklistWhere(filter);
      const row = db.prepare(`SELECT COUNT(*) AS n FROM ${WORKLIST_FROM} ${where.sql}`).get(...where.params) as { n: number };
      return row.n;
    },
  };
}

export function resultsOfSync(db: Database.Database, uid: string): StoredResult[] {
  const rows = db.prepare(`SELECT body FROM results WHERE study_uid = ? ORDER BY created_at, rowid`).all(uid) as { body: string }[];
  return rows.map((r) => JSON.parse(r.body) as StoredResult);
}

export function latestResultSync(db: Database.Database, uid: string): StoredResult | undefined {
  const body = latestBody(db, uid);
  return body === undefined ? undefined : (JSON.parse(body) as StoredResult);
}

/** One worklist entry from its row (the same shape on every engine). */
export function worklistEntry(row: WorklistRow, images: ImageKind[]): WorklistEntry {
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
    images,
    receivedAt: row.enqueued_at,
    updatedAt: row.updated_at,
  };
}
