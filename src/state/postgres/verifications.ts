/** Verifications on PostgreSQL: the same rows and steps as state/sqlite/verifications.ts; claims skip locked rows. */
import type pg from 'pg';
import type { Lease, VerificationQueue } from '../ports.ts';
import { REQUEST_VERIFICATION, toVerification, type VerificationRow } from '../verification-rows.ts';
import type { Sql } from './database.ts';
import { boundMs, wholeMs } from './sql.ts';

const REQUEST = REQUEST_VERIFICATION.replace(/\?(\d)/g, '$$$1');

/** Records the verification of an accept (inside the feedback's transaction). */
export async function requestVerification(sql: Sql, v: { resultKey: string; studyInstanceUID: string; reader: string; feedbackId: string; now: number }): Promise<void> {
  await sql.query(REQUEST, [v.resultKey, v.studyInstanceUID, v.reader, v.feedbackId, wholeMs(v.now)]);
}

export function postgresVerifications(pool: pg.Pool, clock: () => number): VerificationQueue {
  return {
    async getVerification(key) {
      const { rows } = await pool.query<VerificationRow>(`SELECT * FROM verifications WHERE result_key = $1`, [key]);
      return rows[0] ? toVerification(rows[0]) : undefined;
    },

    async verifications(filter = {}) {
      const { rows } = await pool.query<VerificationRow>(
        `SELECT * FROM verifications WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR study_uid = $2) ORDER BY updated_at DESC, result_key`,
        [filter.state ?? null, filter.studyInstanceUID ?? null],
      );
      return rows.map(toVerification);
    },

    async claimVerification(now, lease: Lease) {
      const at = boundMs(now);
      const until = at + lease.leaseMs;
      // One statement: the row is taken by whoever locks it first; the others pass over it.
      const { rows } = await pool.query<VerificationRow>(
        `UPDATE verifications SET state = 'running', attempts = attempts + 1, updated_at = $1, lease_owner = $2, lease_until = $3
         WHERE result_key = (
           SELECT result_key FROM verifications
           WHERE (state = 'pending' AND next_attempt_at <= $1) OR (state = 'running' AND COALESCE(lease_until, 0) < $1)
           ORDER BY next_attempt_at, requested_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        [at, lease.owner, until],
      );
      return rows[0] ? toVerification(rows[0]) : undefined;
    },

    async finishVerification(key, outcome) {
      const now = clock();
      await pool.query(
        `UPDATE verifications SET state = 'done', outcome = $1, error_code = NULL, last_error = NULL, updated_at = $2, done_at = $2, lease_owner = NULL, lease_until = NULL
         WHERE result_key = $3`,
        [outcome, now, key],
      );
    },

    async failVerification(key, errorCode, message, retryAt) {
      const now = clock();
      await pool.query(
        `UPDATE verifications SET state = $1, next_attempt_at = $2, error_code = $3, last_error = $4, updated_at = $5, lease_owner = NULL, lease_until = NULL
         WHERE result_key = $6`,
        [retryAt === undefined ? 'failed' : 'pending', wholeMs(retryAt ?? now), errorCode, message, now, key],
      );
    },
  };
}
