/**
 * Retractions on PostgreSQL: durable work with leases, like jobs, and the same steps as
 * state/sqlite/retractions.ts. A claim takes its row with FOR UPDATE SKIP LOCKED; a request is
 * made under the study's lock (its results are read, then the retraction written).
 */
import type pg from 'pg';
import type { Retraction } from '../../domain/records.ts';
import type { Lease, RetractionQueue } from '../ports.ts';
import { toRetraction, WORKLIST_FROM, type RetractionRow } from '../rows.ts';
import { transaction, type Sql } from './database.ts';
import { latestResult, resultsOf } from './results.ts';
import { boundMs, lockStudy, notify, wholeMs } from './sql.ts';

export async function readRetraction(sql: Sql, uid: string): Promise<Retraction | undefined> {
  const { rows } = await sql.query<RetractionRow>(`SELECT * FROM retractions WHERE study_uid = $1`, [uid]);
  return rows[0] ? toRetraction(rows[0]) : undefined;
}

export function postgresRetractions(pool: pg.Pool, schema: string, clock: () => number): RetractionQueue {
  return {
    async requestRetraction(request) {
      return transaction(pool, async (sql) => {
        await lockStudy(sql, schema, request.studyInstanceUID);
        const latest = await latestResult(sql, request.studyInstanceUID);
        if (!latest) return undefined;
        const results = await resultsOf(sql, request.studyInstanceUID);
        const existing = await readRetraction(sql, request.studyInstanceUID);
        if (existing && existing.resultKey === latest.resultKey && existing.state !== 'failed') return { retraction: existing, created: false };
        // Never replaced under its runner, whose progress and end would be written onto the new
        // request: a running retraction ends first (or its lease expires and it is run again).
        if (existing?.state === 'running') return { retraction: existing, created: false };
        const { rows } = await sql.query<RetractionRow>(
          `INSERT INTO retractions (study_uid, result_key, result_keys, cause, reason, requested_by, state, attempts, next_attempt_at,
             written, notes, requested_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, '[]', $7, $7)
           ON CONFLICT (study_uid) DO UPDATE SET
             result_key = excluded.result_key, result_keys = excluded.result_keys, cause = excluded.cause,
             reason = excluded.reason, requested_by = excluded.requested_by, state = 'pending', attempts = 0,
             next_attempt_at = excluded.next_attempt_at, error_code = NULL, last_error = NULL,
             written = excluded.written, notes = excluded.notes, lease_owner = NULL, lease_until = NULL,
             requested_at = excluded.requested_at, updated_at = excluded.updated_at, done_at = NULL
           RETURNING *`,
          [
            request.studyInstanceUID,
            latest.resultKey,
            JSON.stringify(results.map((r) => r.resultKey)),
            request.cause,
            request.reason ?? null,
            request.requestedBy ?? null,
            clock(),
            JSON.stringify({ fhir: false, pacs: false, metadata: false }),
          ],
        );
        await notify(sql, schema, 'retraction');
        return { retraction: toRetraction(rows[0]!), created: true };
      });
    },

    async getRetraction(uid) {
      return readRetraction(pool, uid);
    },

    async retractions(filter = {}) {
      const { rows } =
        filter.state === undefined
          ? await pool.query<RetractionRow>(`SELECT * FROM retractions ORDER BY updated_at DESC, study_uid`)
          : await pool.query<RetractionRow>(`SELECT * FROM retractions WHERE state = $1 ORDER BY updated_at DESC, study_uid`, [filter.state]);
      return rows.map(toRetraction);
    },

    async claimRetraction(at, lease: Lease, uid) {
      const now = wholeMs(at);
      return transaction(pool, async (sql) => {
        const { rows } = await sql.query<RetractionRow>(
          `SELECT * FROM retractions
           WHERE ((state = 'pending' AND next_attempt_at <= $1) OR (state = 'running' AND COALESCE(lease_until, 0) < $1 AND next_attempt_at <= $1))
             AND ($2::text IS NULL OR study_uid = $2)
           ORDER BY next_attempt_at, requested_at LIMIT 1
           FOR UPDATE SKIP LOCKED`,
          [now, uid ?? null],
        );
        const row = rows[0];
        if (!row) return undefined;
        const claimed = await sql.query<RetractionRow>(
          `UPDATE retractions SET state = 'running', attempts = attempts + 1, updated_at = $1, lease_owner = $2, lease_until = $3
           WHERE study_uid = $4 RETURNING *`,
          [now, lease.owner, wholeMs(now + lease.leaseMs), row.study_uid],
        );
        return toRetraction(claimed.rows[0]!);
      });
    },

    async renewRetractionLease(uid, owner, until) {
      const { rowCount } = await pool.query(`UPDATE retractions SET lease_until = $1 WHERE study_uid = $2 AND state = 'running' AND lease_owner = $3`, [
        wholeMs(until),
        uid,
        owner,
      ]);
      return (rowCount ?? 0) > 0;
    },

    async saveRetractionProgress(uid, progress) {
      await pool.query(`UPDATE retractions SET written = $1, notes = $2, updated_at = $3 WHERE study_uid = $4`, [
        JSON.stringify(progress.written),
        JSON.stringify(progress.notes),
        clock(),
        uid,
      ]);
    },

    async finishRetraction(uid) {
      await pool.query(
        `UPDATE retractions SET state = 'done', error_code = NULL, last_error = NULL, updated_at = $1, done_at = $1, lease_owner = NULL, lease_until = NULL
         WHERE study_uid = $2`,
        [clock(), uid],
      );
    },

    async failRetraction(uid, errorCode, message, retryAt, countAttempt = true) {
      await transaction(pool, async (sql) => {
        const now = clock();
        const { rowCount } = await sql.query(
          `UPDATE retractions SET state = $2, next_attempt_at = $3, error_code = $4, last_error = $5,
             attempts = attempts - $6, updated_at = $7, lease_owner = NULL, lease_until = NULL
           WHERE study_uid = $1`,
          [uid, retryAt === undefined ? 'failed' : 'pending', retryAt === undefined ? now : wholeMs(retryAt), errorCode, message, countAttempt ? 0 : 1, now],
        );
        if (retryAt !== undefined && (rowCount ?? 0) > 0) await notify(sql, schema, 'retraction');
      });
    },

    async sweepCandidates(since, after, limit) {
      const { rows } = await pool.query<{ study_uid: string }>(
        `SELECT j.study_uid FROM ${WORKLIST_FROM}
         WHERE j.state = 'done' AND j.updated_at >= $1 AND j.study_uid > $2 AND l.result_key IS NOT NULL AND x.study_uid IS NULL
         ORDER BY j.study_uid LIMIT $3`,
        [boundMs(since), after, Math.max(0, Math.floor(limit))],
      );
      return rows.map((r) => r.study_uid);
    },
  };
}
