/**
 * Results, the latest result per study, the worklist pictures and the worklist itself, on
 * PostgreSQL: the same tables, filters and pages as state/sqlite/results.ts, and the same ranking
 * and entries (state/rows.ts), so both engines answer alike.
 */
import type pg from 'pg';
import type { ImageKind, StoredResult, WorklistFilter } from '../../domain/records.ts';
import type { ResultStore } from '../ports.ts';
import { DEFAULT_WORKLIST_LIMIT, latestRow, pictureKinds, toPictureSource, WORKLIST_COLUMNS, WORKLIST_FROM, worklistEntry, type WorklistRow } from '../rows.ts';
import { transaction, type Sql } from './database.ts';
import { boundMs, lockStudy, wholeMs } from './sql.ts';
import { STUDY_COLUMNS, studyColumnValues, studyFieldClauses, worklistOrder } from '../worklist-sql.ts';

async function latestBody(sql: Sql, studyUid: string): Promise<string | undefined> {
  const { rows } = await sql.query<{ body: string }>(`SELECT body FROM results WHERE study_uid = $1 ORDER BY created_at DESC, seq DESC LIMIT 1`, [studyUid]);
  return rows[0]?.body;
}

export async function latestResult(sql: Sql, studyUid: string): Promise<StoredResult | undefined> {
  const body = await latestBody(sql, studyUid);
  return body === undefined ? undefined : (JSON.parse(body) as StoredResult);
}

export async function resultsOf(sql: Sql, studyUid: string): Promise<StoredResult[]> {
  const { rows } = await sql.query<{ body: string }>(`SELECT body FROM results WHERE study_uid = $1 ORDER BY created_at, seq`, [studyUid]);
  return rows.map((r) => JSON.parse(r.body) as StoredResult);
}

/** Points study_latest at the study's latest result (the one latestResult returns). */
async function refreshLatest(sql: Sql, studyUid: string): Promise<void> {
  const result = await latestResult(sql, studyUid);
  if (!result) return;
  const row = latestRow(result);
  const study = studyColumnValues(result);
  await sql.query(
    `INSERT INTO study_latest (study_uid, result_key, priority, priority_rank, top_probability, modality, created_at, ${STUDY_COLUMNS.join(', ')})
     VALUES ($1, $2, $3, $4, $5, $6, $7, ${STUDY_COLUMNS.map((_, i) => `$${i + 8}`).join(', ')})
     ON CONFLICT (study_uid) DO UPDATE SET
       result_key = excluded.result_key, priority = excluded.priority, priority_rank = excluded.priority_rank,
       top_probability = excluded.top_probability, modality = excluded.modality, created_at = excluded.created_at,
       ${STUDY_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}`,
    [studyUid, row.resultKey, row.priority, row.rank, row.top, row.modality, wholeMs(row.createdAt), ...study],
  );
}

/** WHERE clause of a worklist filter (over WORKLIST_FROM); its parameters are appended to `params`. */
function worklistWhere(filter: WorklistFilter, params: unknown[]): string {
  const p = (value: unknown): string => `$${params.push(value)}`;
  const clauses: string[] = [];
  if (filter.priority && filter.priority.length > 0) clauses.push(`j.state = 'done' AND x.study_uid IS NULL AND l.priority = ANY(${p(filter.priority)}::text[])`);
  if (filter.state && filter.state.length > 0) clauses.push(`j.state = ANY(${p(filter.state)}::text[])`);
  if (filter.modality && filter.modality.length > 0) clauses.push(`l.modality = ANY(${p(filter.modality.map((m) => m.toUpperCase()))}::text[])`);
  if (filter.since !== undefined) clauses.push(`j.enqueued_at >= ${p(boundMs(filter.since))}`);
  if (filter.until !== undefined) clauses.push(`j.enqueued_at < ${p(boundMs(filter.until))}`);
  clauses.push(...studyFieldClauses(filter, p));
  return clauses.length > 0 ? `WHERE ${clauses.map((c) => `(${c})`).join(' AND ')}` : '';
}

export function postgresResults(pool: pg.Pool, schema: string, clock: () => number): Omit<ResultStore, 'study'> {
  return {
    async saveResult(result) {
      await transaction(pool, async (sql) => {
        await lockStudy(sql, schema, result.studyInstanceUID);
        await sql.query(
          `INSERT INTO results (result_key, study_uid, body, created_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (result_key) DO UPDATE SET body = excluded.body`,
          [result.resultKey, result.studyInstanceUID, JSON.stringify(result), wholeMs(result.createdAt)],
        );
        await refreshLatest(sql, result.studyInstanceUID);
      });
    },

    async latestResult(uid) {
      return latestResult(pool, uid);
    },

    async resultsOf(uid) {
      return resultsOf(pool, uid);
    },

    async saveImage(uid, kind, png, resultKey) {
      await pool.query(
        `INSERT INTO images (study_uid, kind, png, result_key, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (study_uid, kind) DO UPDATE SET png = excluded.png, result_key = excluded.result_key, created_at = excluded.created_at`,
        [uid, kind, Buffer.from(png.buffer, png.byteOffset, png.byteLength), resultKey ?? null, clock()],
      );
    },

    async getImage(uid, kind) {
      const { rows } = await pool.query<{ study_uid: string; kind: ImageKind; png: Buffer; result_key: string | null; created_at: number }>(
        `SELECT * FROM images WHERE study_uid = $1 AND kind = $2`,
        [uid, kind],
      );
      const row = rows[0];
      if (!row) return undefined;
      return { studyInstanceUID: row.study_uid, kind: row.kind, png: row.png, ...(row.result_key !== null ? { resultKey: row.result_key } : {}), createdAt: row.created_at };
    },

    async savePictureSource(uid, data, hasHeat, resultKey) {
      await transaction(pool, async (sql) => {
        await sql.query(
          `INSERT INTO picture_sources (study_uid, data, has_heat, result_key, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (study_uid) DO UPDATE SET data = excluded.data, has_heat = excluded.has_heat, result_key = excluded.result_key, created_at = excluded.created_at`,
          [uid, Buffer.from(data.buffer, data.byteOffset, data.byteLength), hasHeat, resultKey, clock()],
        );
        await sql.query(`DELETE FROM images WHERE study_uid = $1`, [uid]);
      });
    },

    async getPictureSource(uid) {
      const { rows } = await pool.query<Parameters<typeof toPictureSource>[0]>(`SELECT * FROM picture_sources WHERE study_uid = $1`, [uid]);
      return rows[0] ? toPictureSource(rows[0]) : undefined;
    },

    async worklist(query = {}) {
      const params: unknown[] = [];
      const where = worklistWhere(query, params);
      const limit = `$${params.push(Math.max(0, Math.floor(query.limit ?? DEFAULT_WORKLIST_LIMIT)))}`;
      const offset = `$${params.push(Math.max(0, Math.floor(query.offset ?? 0)))}`;
      const { rows } = await pool.query<WorklistRow>(
        `SELECT ${WORKLIST_COLUMNS}
         FROM ${WORKLIST_FROM}
         LEFT JOIN results r ON r.result_key = l.result_key
         ${where}
         ${worklistOrder(query.sort)}
         LIMIT ${limit} OFFSET ${offset}`,
        params,
      );
      let images = new Map<string, ImageKind[]>();
      if (rows.length > 0) {
        const uids = rows.map((r) => r.study_uid);
        const drawn = await pool.query<{ study_uid: string; kind: ImageKind }>(`SELECT study_uid, kind FROM images WHERE study_uid = ANY($1::text[])`, [uids]);
        const sources = await pool.query<{ study_uid: string; has_heat: boolean }>(`SELECT study_uid, has_heat FROM picture_sources WHERE study_uid = ANY($1::text[])`, [uids]);
        images = pictureKinds(drawn.rows, sources.rows);
      }
      return rows.map((row) => worklistEntry(row, images.get(row.study_uid) ?? []));
    },

    async countWorklist(filter: WorklistFilter = {}) {
      const params: unknown[] = [];
      const where = worklistWhere(filter, params);
      const { rows } = await pool.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${WORKLIST_FROM} ${where}`, params);
      return rows[0]?.n ?? 0;
    },
  };
}
