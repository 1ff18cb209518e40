/**
 * Retractions on SQLite: durable work with leases, like jobs. A retraction's life is short
 * (pending → running → done, or failed on a terminal error) and each step is one statement.
 */
import type Database from 'better-sqlite3';
import type { Retraction } from '../../domain/records.ts';
import type { Lease, RetractionQueue } from '../ports.ts';
import { toRetraction, WORKLIST_FROM, type RetractionRow } from '../rows.ts';
import { writeTransaction } from './sql.ts';
import { latestResultSync, resultsOfSync } from './results.ts';

export function readRetraction(db: Database.Database, uid: string): Retraction | undefined {
  const row = db.prepare(`SELECT * FROM retractions WHERE study_uid = ?`).get(uid) as RetractionRow | undefined;
  return row ? toRetraction(row) : undefined;
}

export function sqliteRetractions(db: Database.Database, clock: () => number): RetractionQueue {
  return {
    async requestRetraction(request) {
      return writeTransaction(db, () => {
        const results = resultsOfSync(db, request.studyInstanceUID);
        const latest = latestResultSync(db, request.studyInstanceUID);
        if (!latest) return undefined;
        const existing = readRetraction(db, request.studyInstanceUID);
        if (existing && existing.resultKey === latest.resultKey && existing.state !== 'failed') return { retraction: existing, created: false };
        // Never replaced under its runner, whose progress and end would be written onto the new
        // request: a running retraction ends first (or its lease expires and it is run again).
        if (existing?.state === 'running') return { retraction: existing, created: false };
        const now = clock();
        db.prepare(
          `INSERT INTO retractions (study_uid, result_key, result_keys, cause, reason, requested_by, state, attempts, next_attempt_at,
             written, notes, requested_at, updated_at)
           VALUES (@uid, @key, @keys, @cause, @reason, @by, 'pending', 0, @now, @written, '[]', @now, @now)
           ON CONFLICT (study_uid) DO UPDATE SET
             result_key = excluded.result_key, result_keys = excluded.result_keys, cause = excluded.cause,
             reason = excluded.reason, requested_by = excluded.requested_by, state = 'pending', attempts = 0,
             next_attempt_at = excluded.next_attempt_at, error_code = NULL, last_error = NULL,
             written = excluded.written, notes = excluded.notes, lease_owner = NULL, lease_until = NULL,
             requested_at = excluded.requested_at, updated_at = excluded.updated_at, done_at = NULL`,
        ).run({
          uid: request.studyInstanceUID,
          key: latest.resultKey,
          keys: JSON.stringify(results.map((r) => r.resultKey)),
          cause: request.cause,
          reason: request.reason ?? null,
          by: request.requestedBy ?? null,
          now,
          written: JSON.stringify({ fhir: false, pacs: false, metadata: false }),
        });
        return { retraction: readRetraction(db, request.studyInstanceUID)!, created: true };
      });
    },

    async getRetraction(uid) {
      return readRetraction(db, uid);
    },

    async retractions(filter = {}) {
      const rows = (
        filter.state === undefined
          ? db.prepare(`SELECT * FROM retractions ORDER BY updated_at DESC, study_uid`).all()
          : db.prepare(`SELECT * FROM retractions WHERE state = ? ORDER BY updated_at DESC, study_uid`).all(filter.state)
      ) as RetractionRow[];
      return rows.map(toRetraction);
    },

    async claimRetraction(now, lease: Lease, uid) {
      return writeTransaction(db, () => {
        const row = db
          .prepare(
            `SELECT * FROM retractions
             WHERE ((state = 'pending' AND next_attempt_at <= @now) OR (state = 'running' AND COALESCE(lease_until, 0) < @now AND next_attempt_at <= @now))
               AND (@uid IS NULL OR study_uid = @uid)
             ORDER BY next_attempt_at, requested_at LIMIT 1`,
          )
          .get({ now, uid: uid ?? null }) as RetractionRow | undefined;
        if (!row) return undefined;
        const until = now + lease.leaseMs;
        db.prepare(`UPDATE retractions SET state = 'running', attempts = attempts + 1, updated_at = ?, lease_owner = ?, lease_until = ? WHERE study_uid = ?`).run(
          now,
          lease.owner,
          until,
          row.study_uid,
        );
        return toRetraction({ ...row, state: 'running', attempts: row.attempts + 1, updated_at: now, lease_owner: lease.owner, lease_until: until });
      });
    },

    async renewRetractionLease(uid, owner, until) {
      return db.prepare(`UPDATE retractions SET lease_until = ? WHERE study_uid = ? AND state = 'running' AND lease_owner = ?`).run(until, uid, owner).changes > 0;
    },

    async saveRetractionProgress(uid, progress) {
      db.prepare(`UPDATE retractions SET written = ?, notes = ?, updated_at = ? WHERE study_uid = ?`).run(JSON.stringify(progress.written), JSON.stringify(progress.notes), clock(), uid);
    },

    async finishRetraction(uid) {
      const now = clock();
      db.prepare(
        `UPDATE retractions SET state = 'done', error_code = NULL, last_error = NULL, updated_at = ?, done_at = ?, lease_owner = NULL, lease_until = NULL WHERE study_uid = ?`,
      ).run(now, now, uid);
    },

    async failRetraction(uid, errorCode, message, retryAt, countAttempt = true) {
      db.prepare(
        `UPDATE retractions SET state = @state, next_attempt_at = @next, error_code = @code, last_error = @message,
           attempts = attempts - @uncount, updated_at = @now, lease_owner = NULL, lease_until = NULL
         WHERE study_uid = @uid`,
      ).run({ uid, state: retryAt === undefined ? 'failed' : 'pending', next: retryAt ?? clock(), code: errorCode, message, uncount: countAttempt ? 0 : 1, now: clock() });
    },

    async sweepCandidates(since, after, limit) {
      const rows = db
        .prepare(
          `SELECT j.study_uid FROM ${WORKLIST_FROM}
           WHERE j.state = 'done' AND j.updated_at >= ? AND j.study_uid > ? AND l.result_key IS NOT NULL AND x.study_uid IS NULL
           ORDER BY j.study_uid LIMIT ?`,
        )
        .all(since, after, limit) as { study_uid: string }[];
      return rows.map((r) => r.study_uid);
    },
  };
}
