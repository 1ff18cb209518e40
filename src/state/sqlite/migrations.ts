/**
 * The SQLite engine's schema: versioned migrations (user_version), append only. Plain SQL where
 * it can be (no AUTOINCREMENT outside the audit log, no OR REPLACE) so the PostgreSQL engine's
 * migrations read the same; epoch-ms INTEGER times, JSON as TEXT.
 */
import type Database from 'better-sqlite3';
import { refreshLatest } from './results.ts';

/** A migration: SQL, and optionally a step in TypeScript that fills what the SQL added. */
interface Migration {
  sql: string;
  backfill?: (db: Database.Database) => void;
}

/** Versioned migrations; the index is the schema version they lead to. Append only. */
export const MIGRATIONS: readonly (string | Migration)[] = [
  `CREATE TABLE jobs (
     study_uid TEXT PRIMARY KEY,
     orthanc_id TEXT,
     source TEXT NOT NULL,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     reason TEXT,
     error_code TEXT,
     rerun INTEGER NOT NULL DEFAULT 0,
     timings TEXT,
     enqueued_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX jobs_due ON jobs (state, next_attempt_at);
   CREATE TABLE results (
     result_key TEXT PRIMARY KEY,
     study_uid TEXT NOT NULL,
     body TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX results_study ON results (study_uid, created_at);
   CREATE TABLE cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // 2: the worklist (latest result per study, denormalised for filtering and ranking in SQL),
  // radiologists' feedback on findings, and rendered images (thumbnail, saliency overlay).
  {
    sql: `CREATE TABLE study_latest (
       study_uid TEXT PRIMARY KEY,
       result_key TEXT NOT NULL,
       priority TEXT NOT NULL,
       priority_rank INTEGER NOT NULL,
       top_probability REAL NOT NULL,
       modality TEXT,
       created_at INTEGER NOT NULL
     );
     CREATE INDEX study_latest_rank ON study_latest (priority_rank, top_probability);
     CREATE INDEX jobs_enqueued ON jobs (enqueued_at);
     CREATE TABLE feedback (
       id TEXT PRIMARY KEY,
       study_uid TEXT NOT NULL,
       finding_code TEXT NOT NULL,
       verdict TEXT NOT NULL CHECK (verdict IN ('accept', 'reject')),
       note TEXT,
       created_by TEXT NOT NULL,
       result_key TEXT,
       created_at INTEGER NOT NULL
     );
     CREATE INDEX feedback_study ON feedback (study_uid, created_at);
     CREATE TABLE images (
       study_uid TEXT NOT NULL,
       kind TEXT NOT NULL CHECK (kind IN ('thumbnail', 'saliency')),
       png BLOB NOT NULL,
       result_key TEXT,
       created_at INTEGER NOT NULL,
       PRIMARY KEY (study_uid, kind)
     );`,
    backfill: (db) => {
      const studies = db.prepare(`SELECT DISTINCT study_uid FROM results`).all() as { study_uid: string }[];
      for (const { study_uid } of studies) refreshLatest(db, study_uid, true);
    },
  },
  // 3: leases on running jobs (several workers may share a store), and the append-only audit
  // log of every write to the PACS and the FHIR server.
  `ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
   ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
   UPDATE jobs SET lease_until = 0 WHERE state = 'running';
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     target TEXT NOT NULL,
     action TEXT NOT NULL,
     study_uid TEXT NOT NULL,
     resource TEXT NOT NULL,
     result_key TEXT NOT NULL,
     model_version TEXT NOT NULL,
     outcome TEXT NOT NULL,
     detail TEXT
   );
   CREATE INDEX audit_study ON audit (study_uid, id);
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;`,
  // 4: the seen-set of polling ingest (QIDO-RS): which studies a poll already enqueued, with
  // what they held then (a study that gains instances is enqueued again).
  `CREATE TABLE ingest_seen (
     seen_set TEXT NOT NULL,
     study_uid TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     seen_at INTEGER NOT NULL,
     PRIMARY KEY (seen_set, study_uid)
   );
   CREATE INDEX ingest_seen_age ON ingest_seen (seen_set, seen_at);`,
  // 5: retractions (a result marked wrong, or its study deleted in the PACS) as durable work with
  // leases and retries, like jobs. Plain SQL (no AUTOINCREMENT, no OR REPLACE) so that another
  // database could run it; the JSON columns are TEXT.
  `CREATE TABLE retractions (
     study_uid TEXT PRIMARY KEY,
     result_key TEXT NOT NULL,
     result_keys TEXT NOT NULL,
     cause TEXT NOT NULL CHECK (cause IN ('marked-wrong', 'study-deleted')),
     reason TEXT,
     requested_by TEXT,
     state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     error_code TEXT,
     last_error TEXT,
     written TEXT NOT NULL,
     notes TEXT NOT NULL,
     lease_owner TEXT,
     lease_until INTEGER,
     requested_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     done_at INTEGER
   );
   CREATE INDEX retractions_due ON retractions (state, next_attempt_at);
   CREATE INDEX retractions_key ON retractions (result_key);
   CREATE INDEX feedback_age ON feedback (created_at);
   CREATE INDEX jobs_updated ON jobs (state, updated_at);`,
  // 6: a settling job may wait for a polling ingest to have looked past its due time (the name
  // of the cursor that holds how far it has looked): see EnqueueOptions.barrier.
  `ALTER TABLE jobs ADD COLUMN settle_barrier TEXT;`,
  // 7: scheduling classes (live, retry, backfill): claims take the lowest rank first, by the index.
  `ALTER TABLE jobs ADD COLUMN class_rank INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX jobs_class_due ON jobs (state, class_rank, next_attempt_at, enqueued_at);`,
  // 8: what the worklist pictures are drawn from, kept instead of the pictures (drawn at first view).
  `CREATE TABLE picture_sources (
     study_uid TEXT PRIMARY KEY,
     data BLOB NOT NULL,
     has_heat INTEGER NOT NULL,
     result_key TEXT,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX picture_sources_age ON picture_sources (created_at);`,
  // 9: the worklist's study fields (state/worklist-sql.ts), to filter and sort on; never the
  // patient's name or ID (those, when kept at all, stay in the result's body). Results stored
  // before have none of them to fill in.
  `ALTER TABLE study_latest ADD COLUMN accession_number TEXT;
   ALTER TABLE study_latest ADD COLUMN study_description TEXT;
   ALTER TABLE study_latest ADD COLUMN study_date TEXT;
   ALTER TABLE study_latest ADD COLUMN study_time TEXT;
   ALTER TABLE study_latest ADD COLUMN patient_sex TEXT;
   ALTER TABLE study_latest ADD COLUMN patient_age_days INTEGER;
   CREATE INDEX study_latest_accession ON study_latest (accession_number);
   CREATE INDEX study_latest_study_date ON study_latest (study_date, study_time);`,
  // 10: verifications — a reader's accept written to the EHR (RiskAssessment final + Provenance)
  // as durable work with leases and retries, one per result (state/verification-rows.ts).
  `CREATE TABLE verifications (
     result_key TEXT PRIMARY KEY,
     study_uid TEXT NOT NULL,
     reader TEXT NOT NULL,
     verified_at INTEGER NOT NULL,
     feedback_id TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     error_code TEXT,
     last_error TEXT,
     outcome TEXT,
     lease_owner TEXT,
     lease_until INTEGER,
     requested_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     done_at INTEGER
   );
   CREATE INDEX verifications_due ON verifications (state, next_attempt_at);
   CREATE INDEX verifications_study ON verifications (study_uid);`,
];

/** Brings the database to the latest schema, one transaction per version. */
export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    const migration = MIGRATIONS[v] as string | Migration;
    db.transaction(() => {
      db.exec(typeof migration === 'string' ? migration : migration.sql);
      if (typeof migration !== 'string') migration.backfill?.(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
