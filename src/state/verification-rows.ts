/** A verification's row, as both engines keep it (SQLite migration 10, PostgreSQL 5). */
import type { VerificationState, VerificationTask } from '../domain/records.ts';

export interface VerificationRow {
  result_key: string;
  study_uid: string;
  reader: string;
  verified_at: number;
  feedback_id: string;
  state: VerificationState;
  attempts: number;
  next_attempt_at: number;
  error_code: string | null;
  last_error: string | null;
  outcome: string | null;
  lease_owner: string | null;
  lease_until: number | null;
  requested_at: number;
  updated_at: number;
  done_at: number | null;
}

export function toVerification(row: VerificationRow): VerificationTask {
  return {
    resultKey: row.result_key,
    studyInstanceUID: row.study_uid,
    reader: row.reader,
    verifiedAt: Number(row.verified_at),
    feedbackId: row.feedback_id,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: Number(row.next_attempt_at),
    ...(row.error_code !== null ? { errorCode: row.error_code } : {}),
    ...(row.last_error !== null ? { lastError: row.last_error } : {}),
    ...(row.outcome !== null ? { outcome: row.outcome } : {}),
    requestedAt: Number(row.requested_at),
    updatedAt: Number(row.updated_at),
    ...(row.done_at !== null ? { doneAt: Number(row.done_at) } : {}),
  };
}

/**
 * The verification an accept records, in the feedback's transaction: one per result; an accept
 * after a failed one queues it again, anything else leaves it as it is. Positional parameters
 * 1–5: result key, study, reader, feedback id, now. Plain SQL both engines run (`?` → `$n`).
 */
export const REQUEST_VERIFICATION = `INSERT INTO verifications (result_key, study_uid, reader, verified_at, feedback_id, state, attempts, next_attempt_at, requested_at, updated_at)
  VALUES (?1, ?2, ?3, ?5, ?4, 'pending', 0, ?5, ?5, ?5)
  ON CONFLICT (result_key) DO UPDATE SET state = 'pending', attempts = 0, next_attempt_at = excluded.next_attempt_at,
    reader = excluded.reader, verified_at = excluded.verified_at, feedback_id = excluded.feedback_id,
    error_code = NULL, last_error = NULL, updated_at = excluded.updated_at
  WHERE verifications.state = 'failed'`;
