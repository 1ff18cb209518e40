/** Verifications on SQLite: durable work with leases, like retractions; each step one statement. */
import type Database from 'better-sqlite3';
import type { Lease, VerificationQueue } from '../ports.ts';
import { REQUEST_VERIFICATION, toVerification, type VerificationRow } from '../verification-rows.ts';
import { writeTransaction } from './sql.ts';

/** better-sqlite3 binds numbered parameters by name: ?1 → @p1. */
const REQUEST = REQUEST_VERIFICATION.replace(/\?(\d)/g, '@p$1');

/** Records the verification of an accept (inside the feedback's transaction). */
export function requestVerification(db: Database.Database, v: { resultKey: string; studyInstanceUID: string; reader: string; feedbackId: string; now: number }): void {
  db.prepare(REQUEST).run({ p1: v.resultKey, p2: v.studyInstanceUID, p3: v.reader, p4: v.feedbackId, p5: v.now });
}

export function sqliteVerifications(db: Database.Database, clock: () => number): VerificationQueue {
  return {
    async getVerification(key) {
      const row = db.prepare(`SELECT * FROM verifications WHERE result_key = ?`).get(key) as VerificationRow | undefined;
      return row ? toVerification(row) : undefined;
    },

    async verifications(filter = {}) {
      const rows = db
        .prepare(
          `SELECT * FROM verifications WHERE (@state IS NULL OR state = @state) AND (@uid IS NULL OR study_uid = @uid)
           ORDER BY updated_at DESC, result_key`,
        )
        .all({ state: filter.state ?? null, uid: filter.studyInstanceUID ?? null }) as VerificationRow[];
      return rows.map(toVerification);
    },

    async claimVerification(now, lease: Lease) {
      return writeTransaction(db, () => {
        const row = db
          .prepare(
            `SELECT * FROM verifications
             WHERE (state = 'pending' AND next_attempt_at <= @now) OR (state = 'running' AND COALESCE(lease_until, 0) < @now)
             ORDER BY next_attempt_at, requested_at LIMIT 1`,
          )
          .get({ now }) as VerificationRow | undefined;
        if (!row) return undefined;
        const until = now + lease.leaseMs;
        db.prepare(`UPDATE verifications SET state = 'running', attempts = attempts + 1, updated_at = ?, lease_owner = ?, lease_until = ? WHERE result_key = ?`).run(
          now,
          lease.owner,
          until,
          row.result_key,
        );
        return toVerification({ ...row, state: 'running', attempts: row.attempts + 1, updated_at: now, lease_owner: lease.owner, lease_until: until });
      });
    },

    async finishVerification(key, outcome) {
      const now = clock();
      db.prepare(
        `UPDATE verifications SET state = 'done', outcome = ?, error_code = NULL, last_error = NULL, updated_at = ?, done_at = ?, lease_owner = NULL, lease_until = NULL
         WHERE result_key = ?`,
      ).run(outcome, now, now, key);
    },

    async failVerification(key, errorCode, message, retryAt) {
      db.prepare(
        `UPDATE verifications SET state = @state, next_attempt_at = @next, error_code = @code, last_error = @message, updated_at = @now, lease_owner = NULL, lease_until = NULL
         WHERE result_key = @key`,
      ).run({ key, state: retryAt === undefined ? 'failed' : 'pending', next: retryAt ?? clock(), code: errorCode, message, now: clock() });
    },
  };
}
