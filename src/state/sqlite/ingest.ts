/** Ingest cursors and the seen-set of polling ingest, on SQLite. */
import type Database from 'better-sqlite3';
import type { StudyRef } from '../../domain/types.ts';
import type { IngestState } from '../ports.ts';
import { writeTransaction } from './sql.ts';
import { enqueueRows, setCursor } from './jobs.ts';

export function sqliteIngestState(db: Database.Database, clock: () => number): IngestState {
  return {
    async getCursor(name) {
      const row = db.prepare(`SELECT value FROM cursors WHERE name = ?`).get(name) as { value: string } | undefined;
      return row?.value;
    },

    async enqueueUnseen(seenSet, studies, cursor) {
      const now = clock();
      const known = db.prepare(`SELECT fingerprint FROM ingest_seen WHERE seen_set = ? AND study_uid = ?`);
      const mark = db.prepare(
        `INSERT INTO ingest_seen (seen_set, study_uid, fingerprint, seen_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (seen_set, study_uid) DO UPDATE SET fingerprint = excluded.fingerprint, seen_at = excluded.seen_at`,
      );
      return writeTransaction(db, () => {
        const fresh: StudyRef[] = [];
        for (const { ref, fingerprint } of studies) {
          const row = known.get(seenSet, ref.studyInstanceUID) as { fingerprint: string } | undefined;
          if (row?.fingerprint !== fingerprint && !fresh.some((r) => r.studyInstanceUID === ref.studyInstanceUID)) fresh.push(ref);
          mark.run(seenSet, ref.studyInstanceUID, fingerprint, now);
        }
        enqueueRows(db, fresh, now, {});
        if (cursor) setCursor(db, cursor);
        return fresh;
      });
    },

    async pruneSeen(seenSet, before) {
      return db.prepare(`DELETE FROM ingest_seen WHERE seen_set = ? AND seen_at < ?`).run(seenSet, before).changes;
    },
  };
}
