/** Feedback, the audit log and retention, on SQLite. */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Feedback, FeedbackVerdict } from '../../domain/records.ts';
import type { AuditLog, FeedbackStore, Retention } from '../ports.ts';
import { writeTransaction } from './sql.ts';

interface FeedbackRow {
  id: string;
  study_uid: string;
  finding_code: string;
  verdict: FeedbackVerdict;
  note: string | null;
  created_by: string;
  result_key: string | null;
  created_at: number;
}

function toFeedback(row: FeedbackRow): Feedback {
  return {
    id: row.id,
    studyInstanceUID: row.study_uid,
    findingCode: row.finding_code,
    verdict: row.verdict,
    ...(row.note !== null ? { note: row.note } : {}),
    by: row.created_by,
    ...(row.result_key !== null ? { resultKey: row.result_key } : {}),
    createdAt: row.created_at,
  };
}

export function sqliteFeedback(db: Database.Database, clock: () => number): FeedbackStore {
  return {
    async addFeedback(feedback) {
      const stored: Feedback = { ...feedback, id: randomUUID(), createdAt: clock() };
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

interface AuditRow {
  id: number;
  at: number;
  target: string;
  action: string;
  study_uid: string;
  resource: string;
  result_key: string;
  model_version: string;
  outcome: 'ok' | 'error';
  detail: string | null;
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
      return rows.map((r) => ({
        id: r.id,
        at: r.at,
        target: r.target,
        action: r.action,
        studyInstanceUID: r.study_uid,
        resource: r.resource,
        resultKey: r.result_key,
        modelVersion: r.model_version,
        outcome: r.outcome,
        ...(r.detail !== null ? { detail: r.detail } : {}),
      }));
    },
  };
}

export function sqliteRetention(db: Database.Database): Retention {
  return {
    async pruneJobs(before) {
      return db.prepare(`DELETE FROM jobs WHERE state IN ('done', 'failed', 'skipped') AND updated_at < ?`).run(before).changes;
    },

    async purgeImages(before) {
      return db.prepare(`DELETE FROM images WHERE created_at < ?`).run(before).changes;
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
