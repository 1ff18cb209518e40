/** Ingest cursors and the seen-set of polling ingest, on PostgreSQL. */
import type pg from 'pg';
import type { StudyRef } from '../../domain/types.ts';
import type { IngestState } from '../ports.ts';
import { transaction } from './database.ts';
import { barrierWaits, enqueueRows, setCursor } from './jobs.ts';
import { boundMs, notify } from './sql.ts';

export function postgresIngestState(pool: pg.Pool, schema: string, clock: () => number): IngestState {
  return {
    async getCursor(name) {
      const { rows } = await pool.query<{ value: string }>(`SELECT value FROM cursors WHERE name = $1`, [name]);
      return rows[0]?.value;
    },

    async enqueueUnseen(seenSet, studies, cursor) {
      const now = clock();
      return transaction(pool, async (sql) => {
        const uids = [...new Set(studies.map((s) => s.ref.studyInstanceUID))];
        const { rows } = await sql.query<{ study_uid: string; fingerprint: string }>(
          `SELECT study_uid, fingerprint FROM ingest_seen WHERE seen_set = $1 AND study_uid = ANY($2::text[]) FOR UPDATE`,
          [seenSet, uids],
        );
        // What each study's seen entry holds as the batch is applied in order, as SQLite's
        // row-by-row upsert sees it (a study listed twice compares with its own first entry).
        const seen = new Map(rows.map((r) => [r.study_uid, r.fingerprint]));
        const fresh: StudyRef[] = [];
        for (const { ref, fingerprint } of studies) {
          if (seen.get(ref.studyInstanceUID) !== fingerprint && !fresh.some((r) => r.studyInstanceUID === ref.studyInstanceUID)) fresh.push(ref);
          seen.set(ref.studyInstanceUID, fingerprint);
        }
        if (uids.length > 0) {
          await sql.query(
            `INSERT INTO ingest_seen (seen_set, study_uid, fingerprint, seen_at)
             SELECT $1, u, f, $4 FROM unnest($2::text[], $3::text[]) AS t (u, f)
             ON CONFLICT (seen_set, study_uid) DO UPDATE SET fingerprint = excluded.fingerprint, seen_at = excluded.seen_at`,
            [seenSet, uids, uids.map((u) => seen.get(u)), now],
          );
        }
        await enqueueRows(sql, fresh, now, {});
        if (cursor) await setCursor(sql, cursor);
        if (fresh.length > 0 || (cursor !== undefined && (await barrierWaits(sql, cursor)))) await notify(sql, schema, 'job');
        return fresh;
      });
    },

    async pruneSeen(seenSet, before) {
      const { rowCount } = await pool.query(`DELETE FROM ingest_seen WHERE seen_set = $1 AND seen_at < $2`, [seenSet, boundMs(before)]);
      return rowCount ?? 0;
    },
  };
}
