/** Feedback, the audit log and retention, on SQLite. */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Feedback } from '../../domain/records.ts';
import type { AuditLog, FeedbackStore, Retention } from '../ports.ts';
import { toAuditRecord, toFeedback, type AuditRow, type FeedbackRow } from '../rows.ts';
import { writeTransaction } from './sql.ts';
import { requestVerification } from './verifications.ts';

export function sqliteFeedback(db: Database.Database, clock: () => number): FeedbackStore {
  return {
    async addFeedback(feedback) {
      const stored: Feedback = { ...feedback, id: randomUUID(), createdAt: clock() };
      writeTransaction(db, () => {
        db.prepare(
          `INSERT INTO feedback (id, study_uid, finding_code, verdict, note, created_by, result_key, created_at)
           VALUES (@id, @uid, @code, @verdict, @note, @by, @resultKey, @createdAt)`,
        ).run({
          id: stored.id,
          uid: stored.studyInstanceUID,
          code: stored.findingCode,
          verdict: stored.verdict,
          note: stored.note ?? null,
          by: stored.by,
          resultKey: stored.resultKey ?? null,
          createdAt: stored.createdAt,
        });
        if (stored.verdict === 'accept' && stored.resultKey) {
          requestVerification(db, { resultKey: stored.resultKey, studyInstanceUID: stored.studyInstanceUID, reader: stored.by, feedbackId: stored.id, now: stored.createdAt });
        }
      });
      return stored;
    },

    async listFeedback(uid) {
      const rows = (
        uid === undefined
          ? db.prepare(`SELECT * FROM feedback ORDER BY created_at, id`).all()
          : db.prepare(`SELECT * FROM feedback WHERE study_uid = ? ORDER BY created_at, id`).all(uid)
      ) as FeedbackRow[];
      return rows.map(toFeedback);
    },
  };
}

/** Append-only: the table's triggers refuse UPDATE and DELETE (migration 3). */
export function sqliteAudit(db: Database.Database, clock: () => number): AuditLog {
  return {
    async audit(entry) {
      db.prepare(
        `INSERT INTO audit (at, target, action, study_uid, resource, result_key, model_version, outcome, detail)
         VALUES (@at, @target, @action, @uid, @resource, @resultKey, @modelVersion, @outcome, @detail)`,
      ).run({
        at: clock(),
        target: entry.target,
        action: entry.action,
        uid: entry.studyInstanceUID,
        resource: entry.resource,
        resultKey: entry.resultKey,
        modelVersion: entry.modelVersion,
        outcome: entry.outcome,
        detail: entry.detail ?? null,
      });
    },

    async auditLog(filter = {}) {
      const rows = (
        filter.studyInstanceUID === undefined
          ? db.prepare(`SELECT * FROM audit ORDER BY id`).all()
          : db.prepare(`SELECT * FROM audit WHERE study_uid = ? ORDER BY id`).all(filter.studyInstanceUID)
      ) as AuditRow[];
      return rows.map(toAuditRecord);
    },
  };
}

export function sqliteRetention(db: Database.Database): Retention {
  return {
    async pruneJobs(before) {
      return db.prepare(`DELETE FROM jobs WHERE state IN ('done', 'failed', 'skipped') AND updated_at < ?`).run(before).changes;
    },

    async purgeImages(before) {
      return db.transaction(() => db.prepare(`DELETE FROM images WHERE created_at < ?`).run(before).changes + db.prepare(`DELETE FROM picture_sources WHERE created_at < ?`).run(before).changes)();
    },

    async purgeText(before) {
      return writeTransaction(db, () => ({
        feedbackNotes: db.prepare(`UPDATE feedback SET note = NULL WHERE created_at < ? AND note IS NOT NULL`).run(before).changes,
        // A pending retraction still needs its reason for the Provenance it will write.
        retractionReasons: db
          .prepare(`UPDATE retractions SET reason = NULL WHERE requested_at < ? AND reason IS NOT NULL AND state IN ('done', 'failed')`)
          .run(before).changes,
      }));
    },
  };
}
