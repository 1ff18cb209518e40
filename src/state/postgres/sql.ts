/** Small SQL pieces the PostgreSQL modules share. */
import type { WakeKind } from '../ports.ts';
import { LOCK_KEY, lockName, type Sql } from './database.ts';

/** The channel of wake-ups; the payload is `<schema>:<kind>`, so deployments sharing a database do not wake each other. */
export const WAKE_CHANNEL = 'pacs_triage_jobs';

/** Tells listening replicas that work became due; sent when the surrounding transaction commits (or at once outside one). */
export async function notify(sql: Sql, schema: string, kind: WakeKind): Promise<void> {
  await sql.query(`SELECT pg_notify('${WAKE_CHANNEL}', $1)`, [`${schema}:${kind}`]);
}

/**
 * Serialises the writers of one study's derived rows (its latest result, its retraction) until
 * the transaction ends: two replicas saving results of one study at once would each compute
 * "the latest" without seeing the other's row.
 */
export async function lockStudy(sql: Sql, schema: string, studyUid: string): Promise<void> {
  await sql.query(`SELECT pg_advisory_xact_lock(${LOCK_KEY})`, [lockName(schema, `study:${studyUid}`)]);
}

/** A page's LIMIT: null is no limit in PostgreSQL (SQLite's -1). */
export function pageLimit(limit: number | undefined): number | null {
  return limit === undefined ? null : Math.max(0, Math.floor(limit));
}

/**
 * A time as the bigint columns hold it (whole ms). PostgreSQL refuses a fraction where SQLite
 * would store it as it is; a caller's clock may give one (performance.now()).
 */
export function wholeMs(t: number): number {
  return Number.isFinite(t) ? Math.floor(t) : 0;
}

/** A bound for `column >= t` or `column < t` over whole ms: the same rows as the fractional `t` selects. */
export function boundMs(t: number): number {
  return Math.ceil(t);
}
