/** Feedback, the audit log and retention, on PostgreSQL. */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Feedback } from '../../domain/records.ts';
import type { AuditLog, FeedbackStore, Retention } from '../ports.ts';
import { toAuditRecord, toFeedback, type AuditRow, type FeedbackRow } from '../rows.ts';
import { transaction } from './database.ts';
import { boundMs } from './sql.ts';
import { requestVerification } from './verifications.ts';

export function postgresFeedback(pool: pg.Pool, clock: () => number): FeedbackStore {
  return {
    async addFeedback(feedback) {
      const stored: Feedback = { ...feedback, id: randomUUID(), createdAt: clock() };
      const resultKey = stored.verdict === 'accept' ? stored.resultKey : undefined;
      await transaction(pool, async (sql) => {
        await sql.query(
          `INSERT INTO feedback (id, study_uid, finding_code, verdict, note, created_by, result_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [stored.id, stored.studyInstanceUID, stored.findingCode, stored.verdict, stored.note ?? null, stored.by, stored.resultKey ?? null, stored.createdAt],
        );
        if (resultKey) await requestVerification(sql, { resultKey, studyInstanceUID: stored.studyInstanceUID, reader: stored.by, feedbackId: stored.id, now: stored.createdAt });
      });
      return stored;
    },

    async listFeedback(uid) {
      const { rows } =
        uid === undefined
          ? await pool.query<FeedbackRow>(`SELECT * FROM feedback ORDER BY created_at, id`)
          : await pool.query<FeedbackRow>(`SELECT * FROM feedback WHERE study_uid = $1 ORDER BY created_at, id`, [uid]);
      return rows.map(toFeedback);
    },
  };
}

/** Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE (migration 1). */
export function postgresAudit(pool: pg.Pool, clock: () => number): AuditLog {
  return {
    async audit(entry) {
      await pool.query(
        `INSERT INTO audit (at, target, action, study_uid, resource, result_key, model_version, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [clock(), entry.target, entry.action, entry.studyInstanceUID, entry.resource, entry.resultKey, entry.modelVersion, entry.outcome, entry.detail ?? null],
      );
    },

    async auditLog(filter = {}) {
      const { rows } =
        filter.studyInstanceUID === undefined
          ? await pool.query<AuditRow>(`SELECT * FROM audit ORDER BY id`)
          : await pool.query<AuditRow>(`SELECT * FROM audit WHERE study_uid = $1 ORDER BY id`, [filter.studyInstanceUID]);
      return rows.map(toAuditRecord);
    },
  };
}

export function postgresRetention(pool: pg.Pool): Retention {
  return {
    async pruneJobs(before) {
      const { rowCount } = await pool.query(`DELETE FROM jobs WHERE state IN ('done', 'failed', 'skipped') AND updated_at < $1`, [boundMs(before)]);
      return rowCount ?? 0;
    },

    async purgeImages(before) {
      return transaction(pool, async (sql) => {
        const images = await sql.query(`DELETE FROM images WHERE created_at < $1`, [boundMs(before)]);
        const sources = await sql.query(`DELETE FROM picture_sources WHERE created_at < $1`, [boundMs(before)]);
        return (images.rowCount ?? 0) + (sources.rowCount ?? 0);
      });
    },

    async purgeText(before) {
      const cut = boundMs(before);
      return transaction(pool, async (sql) => ({
        feedbackNotes: (await sql.query(`UPDATE feedback SET note = NULL WHERE created_at < $1 AND note IS NOT NULL`, [cut])).rowCount ?? 0,
        // A pending retraction still needs its reason for the Provenance it will write.
        retractionReasons:
          (await sql.query(`UPDATE retractions SET reason = NULL WHERE requested_at < $1 AND reason IS NOT NULL AND state IN ('done', 'failed')`, [cut])).rowCount ?? 0,
      }));
    },
  };
}
