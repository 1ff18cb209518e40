/** Results, the latest result per study, the worklist pictures and the worklist itself, on SQLite. */
import type Database from 'better-sqlite3';
import type { ImageKind, StoredResult, WorklistFilter } from '../../domain/records.ts';
import type { ResultStore } from '../ports.ts';
import { DEFAULT_WORKLIST_LIMIT, latestRow, pictureKinds, toPictureSource, WORKLIST_COLUMNS, WORKLIST_FROM, worklistEntry, type WorklistRow } from '../rows.ts';
import { placeholders, writeTransaction } from './sql.ts';
import { STUDY_COLUMNS, studyColumnValues, studyFieldClauses, worklistOrder } from '../worklist-sql.ts';

function latestBody(db: Database.Database, studyUid: string): string | undefined {
  const row = db
    .prepare(`SELECT body FROM results WHERE study_uid = ? ORDER BY created_at DESC, rowid DESC LIMIT 1`)
    .get(studyUid) as { body: string } | undefined;
  return row?.body;
}

/**
 * Points study_latest at the study's latest result (the one latestResult returns). `schema2`: the
 * columns of schema version 2 only, for its migration's backfill (the study columns come at 9).
 */
export function refreshLatest(db: Database.Database, studyUid: string, schema2 = false): void {
  const body = latestBody(db, studyUid);
  if (body === undefined) return;
  const result = JSON.parse(body) as StoredResult;
  const row = latestRow(result);
  if (schema2) {
    db.prepare(
      `INSERT INTO study_latest (study_uid, result_key, priority, priority_rank, top_probability, modality, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(studyUid, row.resultKey, row.priority, row.rank, row.top, row.modality, row.createdAt);
    return;
  }
  db.prepare(
    `INSERT INTO study_latest (study_uid, result_key, priority, priority_rank, top_probability, modality, created_at, ${STUDY_COLUMNS.join(', ')})
     VALUES (?, ?, ?, ?, ?, ?, ?, ${STUDY_COLUMNS.map(() => '?').join(', ')})
     ON CONFLICT (study_uid) DO UPDATE SET
       result_key = excluded.result_key, priority = excluded.priority, priority_rank = excluded.priority_rank,
       top_probability = excluded.top_probability, modality = excluded.modality, created_at = excluded.created_at,
       ${STUDY_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}`,
  ).run(studyUid, row.resultKey, row.priority, row.rank, row.top, row.modality, row.createdAt, ...studyColumnValues(result));
}

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
  clauses.push(...studyFieldClauses(filter, (value) => (params.push(value), '?')));
  return { sql: clauses.length > 0 ? `WHERE ${clauses.map((c) => `(${c})`).join(' AND ')}` : '', params };
}


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

    async savePictureSource(uid, data, hasHeat, resultKey) {
      writeTransaction(db, () => {
        db.prepare(
          `INSERT INTO picture_sources (study_uid, data, has_heat, result_key, created_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (study_uid) DO UPDATE SET data = excluded.data, has_heat = excluded.has_heat, result_key = excluded.result_key, created_at = excluded.created_at`,
        ).run(uid, Buffer.from(data.buffer, data.byteOffset, data.byteLength), hasHeat ? 1 : 0, resultKey, clock());
        db.prepare(`DELETE FROM images WHERE study_uid = ?`).run(uid);
      });
    },

    async getPictureSource(uid) {
      const row = db.prepare(`SELECT * FROM picture_sources WHERE study_uid = ?`).get(uid) as Parameters<typeof toPictureSource>[0] | undefined;
      return row ? toPictureSource(row) : undefined;
    },

    async worklist(query = {}) {
      const where = worklistWhere(query);
      const limit = Math.max(0, Math.floor(query.limit ?? DEFAULT_WORKLIST_LIMIT));
      const offset = Math.max(0, Math.floor(query.offset ?? 0));
      const rows = db
        .prepare(
          `SELECT ${WORKLIST_COLUMNS}
           FROM ${WORKLIST_FROM}
           LEFT JOIN results r ON r.result_key = l.result_key
           ${where.sql}
           ${worklistOrder(query.sort)}
           LIMIT ? OFFSET ?`,
        )
        .all(...where.params, limit, offset) as WorklistRow[];
      let images = new Map<string, ImageKind[]>();
      if (rows.length > 0) {
        const uids = rows.map((r) => r.study_uid);
        const drawn = db.prepare(`SELECT study_uid, kind FROM images WHERE study_uid IN ${placeholders(uids.length)}`).all(...uids) as { study_uid: string; kind: ImageKind }[];
        const sources = db.prepare(`SELECT study_uid, has_heat FROM picture_sources WHERE study_uid IN ${placeholders(uids.length)}`).all(...uids) as { study_uid: string; has_heat: number }[];
        images = pictureKinds(drawn, sources);
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
