/**
 * What the engines share below the ports: their tables have the same columns (SQLite's schema
 * version 6 and PostgreSQL's version 1), so rows become records here, once, and the worklist's
 * ranking is one SQL text that both run. An engine differs in how it reads and locks, not in
 * what a row means or how the worklist orders.
 */
import type { AuditRecord, Feedback, FeedbackVerdict, ImageKind, JobState, Retraction, RetractionState, StoredPictureSource, StoredResult, WorklistEntry } from '../domain/records.ts';
import { PRIORITY_ORDER } from '../domain/priority.ts';

/** Rank of an entry without a (current) result: after every priority. */
export const NO_PRIORITY_RANK = PRIORITY_ORDER.length;
export const DEFAULT_WORKLIST_LIMIT = 50;

/**
 * The worklist's rows: each job, its latest result (l) and a retraction of that very result (x),
 * if any — a retraction of an older result does not hide a newer one.
 */
export const WORKLIST_FROM = `jobs j
  LEFT JOIN study_latest l ON l.study_uid = j.study_uid
  LEFT JOIN retractions x ON x.study_uid = j.study_uid AND x.result_key = l.result_key`;

/** The worklist's columns (over WORKLIST_FROM and `results r` of the latest result). */
export const WORKLIST_COLUMNS = `j.study_uid, j.state, j.reason, j.error_code, j.enqueued_at, j.updated_at,
  l.modality AS latest_modality, r.body AS latest_body,
  x.cause AS retraction_cause, x.state AS retraction_state, x.requested_at AS retraction_at`;

export interface WorklistRow {
  study_uid: string;
  state: JobState;
  reason: string | null;
  error_code: string | null;
  enqueued_at: number;
  updated_at: number;
  latest_modality: string | null;
  latest_body: string | null;
  retraction_cause: Retraction['cause'] | null;
  retraction_state: RetractionState | null;
  retraction_at: number | null;
}

/**
 * The pictures each study can show: those drawn already, and those its picture source can draw
 * (a thumbnail always, a saliency overlay when it has heat). Thumbnail first.
 */
export function pictureKinds(drawn: readonly { study_uid: string; kind: ImageKind }[], sources: readonly { study_uid: string; has_heat: boolean | number }[]): Map<string, ImageKind[]> {
  const kinds = new Map<string, Set<ImageKind>>();
  const add = (uid: string, kind: ImageKind): void => void (kinds.get(uid) ?? kinds.set(uid, new Set()).get(uid))?.add(kind);
  for (const { study_uid, kind } of drawn) add(study_uid, kind);
  for (const { study_uid, has_heat } of sources) {
    add(study_uid, 'thumbnail');
    if (has_heat) add(study_uid, 'saliency');
  }
  const order: ImageKind[] = ['thumbnail', 'saliency'];
  return new Map([...kinds].map(([uid, set]) => [uid, order.filter((k) => set.has(k))]));
}

export function toPictureSource(row: { study_uid: string; data: Buffer; has_heat: boolean | number; result_key: string | null; created_at: number | string }): StoredPictureSource {
  return {
    studyInstanceUID: row.study_uid,
    data: row.data,
    hasHeat: Boolean(row.has_heat),
    ...(row.result_key !== null ? { resultKey: row.result_key } : {}),
    createdAt: Number(row.created_at),
  };
}

/** One worklist entry from its row. */
export function worklistEntry(row: WorklistRow, images: ImageKind[]): WorklistEntry {
  const retracted = row.retraction_cause !== null;
  const latest = row.latest_body !== null ? (JSON.parse(row.latest_body) as StoredResult) : undefined;
  const result = row.state === 'done' && !retracted ? latest : undefined;
  return {
    studyInstanceUID: row.study_uid,
    state: row.state,
    // What identifies the study stays shown while it is reprocessed, failed or retracted.
    ...latest?.study,
    ...(result ? { priority: result.priority, findings: result.findings } : {}),
    ...(result?.warnings && result.warnings.length > 0 ? { warnings: result.warnings } : {}),
    ...(retracted ? { retracted: { cause: row.retraction_cause!, state: row.retraction_state!, requestedAt: row.retraction_at! } } : {}),
    ...(row.latest_modality ? { modality: row.latest_modality } : {}),
    ...(row.reason ? { reason: row.reason } : {}),
    ...(row.error_code ? { errorCode: row.error_code } : {}),
    images,
    receivedAt: row.enqueued_at,
    updatedAt: row.updated_at,
  };
}

/** The study_latest row of a study's latest result: what the worklist filters and ranks on. */
export function latestRow(result: StoredResult): { resultKey: string; priority: string; rank: number; top: number; modality: string | null; createdAt: number } {
  const findings = Array.isArray(result.findings) ? result.findings : [];
  const rank = PRIORITY_ORDER.indexOf(result.priority);
  return {
    resultKey: result.resultKey,
    priority: rank < 0 ? 'routine' : result.priority,
    rank: rank < 0 ? NO_PRIORITY_RANK - 1 : rank,
    top: Math.max(0, ...findings.map((f) => (Number.isFinite(f.probability) ? f.probability : 0))),
    modality: result.modality ? result.modality.toUpperCase() : null,
    createdAt: Number.isFinite(result.createdAt) ? result.createdAt : 0,
  };
}

export interface RetractionRow {
  study_uid: string;
  result_key: string;
  result_keys: string;
  cause: Retraction['cause'];
  reason: string | null;
  requested_by: string | null;
  state: RetractionState;
  attempts: number;
  next_attempt_at: number;
  error_code: string | null;
  last_error: string | null;
  written: string;
  notes: string;
  lease_owner: string | null;
  lease_until: number | null;
  requested_at: number;
  updated_at: number;
  done_at: number | null;
}

export function toRetraction(row: RetractionRow): Retraction {
  return {
    studyInstanceUID: row.study_uid,
    resultKey: row.result_key,
    resultKeys: JSON.parse(row.result_keys) as string[],
    cause: row.cause,
    ...(row.reason !== null ? { reason: row.reason } : {}),
    ...(row.requested_by !== null ? { requestedBy: row.requested_by } : {}),
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    ...(row.error_code !== null ? { errorCode: row.error_code } : {}),
    ...(row.last_error !== null ? { lastError: row.last_error } : {}),
    written: JSON.parse(row.written) as Retraction['written'],
    notes: JSON.parse(row.notes) as string[],
    requestedAt: row.requested_at,
    updatedAt: row.updated_at,
    ...(row.done_at !== null ? { doneAt: row.done_at } : {}),
    ...(row.state === 'running' && row.lease_owner !== null ? { leaseOwner: row.lease_owner } : {}),
    ...(row.state === 'running' && row.lease_until !== null ? { leaseUntil: row.lease_until } : {}),
  };
}

export interface FeedbackRow {
  id: string;
  study_uid: string;
  finding_code: string;
  verdict: FeedbackVerdict;
  note: string | null;
  created_by: string;
  result_key: string | null;
  created_at: number;
}

export function toFeedback(row: FeedbackRow): Feedback {
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

export interface AuditRow {
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

export function toAuditRecord(r: AuditRow): AuditRecord {
  return {
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
  };
}
