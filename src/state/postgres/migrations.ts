/**
 * The PostgreSQL engine's schema: versioned migrations recorded in schema_migrations, append
 * only, run under an advisory lock so that replicas starting together migrate once. Version 1 is
 * the SQLite engine's schema at its version 6, table for table (state/sqlite/migrations.ts).
 *
 * Times are bigint epoch ms from the engine's clock; JSON bodies are text, as on SQLite: they are
 * stored and read whole, never queried inside, and text keeps them byte for byte (jsonb would
 * refuse a \u0000 that SQLite takes). Every study UID and id that is ordered or compared is
 * COLLATE "C": the sweep's `study_uid > cursor` pages and the worklist's tie-break must order as
 * SQLite does (bytewise), whatever the database's locale (en_US ignores the dots in a UID).
 */
import type pg from 'pg';
import { LOCK_KEY, lockName } from './database.ts';

/** Versioned migrations; the index + 1 is the version they lead to. Append only. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     study_uid text COLLATE "C" PRIMARY KEY,
     orthanc_id text,
     source text NOT NULL,
     state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'skipped')),
     attempts integer NOT NULL DEFAULT 0,
     next_attempt_at bigint NOT NULL,
     reason text,
     error_code text,
     rerun boolean NOT NULL DEFAULT false,
     timings text,
     enqueued_at bigint NOT NULL,
     updated_at bigint NOT NULL,
     lease_owner text,
     lease_until bigint,
     settle_barrier text
   );
   -- The claim's order over the claimable states, in one index (DESIGN.md style 13).
   CREATE INDEX jobs_due ON jobs (next_attempt_at, enqueued_at) WHERE state IN ('queued', 'running');
   CREATE INDEX jobs_enqueued ON jobs (enqueued_at);
   CREATE INDEX jobs_updated ON jobs (state, updated_at);
   CREATE INDEX jobs_recent ON jobs (updated_at DESC, study_uid);
   CREATE TABLE results (
     result_key text PRIMARY KEY,
     study_uid text COLLATE "C" NOT NULL,
     body text NOT NULL,
     created_at bigint NOT NULL,
     -- Insertion order, the tie-break SQLite's rowid gives (an upsert keeps it).
     seq bigint GENERATED ALWAYS AS IDENTITY
   );
   CREATE INDEX results_study ON results (study_uid, created_at, seq);
   CREATE TABLE cursors (name text PRIMARY KEY, value text NOT NULL);
   CREATE TABLE study_latest (
     study_uid text COLLATE "C" PRIMARY KEY,
     result_key text NOT NULL,
     priority text NOT NULL,
     priority_rank integer NOT NULL,
     top_probability double precision NOT NULL,
     modality text,
     created_at bigint NOT NULL
   );
   CREATE INDEX study_latest_rank ON study_latest (priority_rank, top_probability);
   CREATE TABLE feedback (
     id text COLLATE "C" PRIMARY KEY,
     study_uid text COLLATE "C" NOT NULL,
     finding_code text NOT NULL,
     verdict text NOT NULL CHECK (verdict IN ('accept', 'reject')),
     note text,
     created_by text NOT NULL,
     result_key text,
     created_at bigint NOT NULL
   );
   CREATE INDEX feedback_study ON feedback (study_uid, created_at);
   CREATE INDEX feedback_age ON feedback (created_at);
   CREATE TABLE images (
     study_uid text COLLATE "C" NOT NULL,
     kind text COLLATE "C" NOT NULL CHECK (kind IN ('thumbnail', 'saliency')),
     png bytea NOT NULL,
     result_key text,
     created_at bigint NOT NULL,
     PRIMARY KEY (study_uid, kind)
   );
   CREATE TABLE audit (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     at bigint NOT NULL,
     target text NOT NULL,
     action text NOT NULL,
     study_uid text COLLATE "C" NOT NULL,
     resource text NOT NULL,
     result_key text NOT NULL,
     model_version text NOT NULL,
     outcome text NOT NULL,
     detail text
   );
   CREATE INDEX audit_study ON audit (study_uid, id);
   -- Append-only, for every role that can write the table: statement triggers refuse even an
   -- UPDATE or DELETE that matches no row, and TRUNCATE (which row triggers do not see).
   CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     RAISE EXCEPTION 'audit is append-only';
   END $$;
   CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
     FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
   CREATE TABLE ingest_seen (
     seen_set text NOT NULL,
     study_uid text COLLATE "C" NOT NULL,
     fingerprint text NOT NULL,
     seen_at bigint NOT NULL,
     PRIMARY KEY (seen_set, study_uid)
   );
   CREATE INDEX ingest_seen_age ON ingest_seen (seen_set, seen_at);
   CREATE TABLE retractions (
     study_uid text COLLATE "C" PRIMARY KEY,
     result_key text NOT NULL,
     result_keys text NOT NULL,
     cause text NOT NULL CHECK (cause IN ('marked-wrong', 'study-deleted')),
     reason text,
     requested_by text,
     state text NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
     attempts integer NOT NULL DEFAULT 0,
     next_attempt_at bigint NOT NULL,
     error_code text,
     last_error text,
     written text NOT NULL,
     notes text NOT NULL,
     lease_owner text,
     lease_until bigint,
     requested_at bigint NOT NULL,
     updated_at bigint NOT NULL,
     done_at bigint
   );
   CREATE INDEX retractions_due ON retractions (state, next_attempt_at);
   CREATE INDEX retractions_key ON retractions (result_key);`,
  // 2: scheduling classes (live, retry, backfill): claims take the lowest rank first, by the index.
  `ALTER TABLE jobs ADD COLUMN class_rank integer NOT NULL DEFAULT 0;
   CREATE INDEX jobs_class_due ON jobs (class_rank, next_attempt_at, enqueued_at) WHERE state IN ('queued', 'running');`,
  // 3: what the worklist pictures are drawn from, kept instead of the pictures (drawn at first view).
  `CREATE TABLE picture_sources (
     study_uid text COLLATE "C" PRIMARY KEY,
     data bytea NOT NULL,
     has_heat boolean NOT NULL,
     result_key text,
     created_at bigint NOT NULL
   );
   CREATE INDEX picture_sources_age ON picture_sources (created_at);`,
  // 4: the worklist's study fields (state/worklist-sql.ts), as SQLite's version 9; "C" so that
  // they order bytewise as on SQLite. Never the patient's name or ID.
  `ALTER TABLE study_latest
     ADD COLUMN accession_number text COLLATE "C",
     ADD COLUMN study_description text COLLATE "C",
     ADD COLUMN study_date text COLLATE "C",
     ADD COLUMN study_time text COLLATE "C",
     ADD COLUMN patient_sex text COLLATE "C",
     ADD COLUMN patient_age_days integer;
   CREATE INDEX study_latest_accession ON study_latest (accession_number);
   CREATE INDEX study_latest_study_date ON study_latest (study_date, study_time);`,
  // 5: verifications, as SQLite's version 10.
  `CREATE TABLE verifications (
     result_key text COLLATE "C" PRIMARY KEY,
     study_uid text COLLATE "C" NOT NULL,
     reader text NOT NULL,
     verified_at bigint NOT NULL,
     feedback_id text NOT NULL,
     state text NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
     attempts integer NOT NULL DEFAULT 0,
     next_attempt_at bigint NOT NULL,
     error_code text,
     last_error text,
     outcome text,
     lease_owner text,
     lease_until bigint,
     requested_at bigint NOT NULL,
     updated_at bigint NOT NULL,
     done_at bigint
   );
   CREATE INDEX verifications_due ON verifications (state, next_attempt_at);
   CREATE INDEX verifications_study ON verifications (study_uid);`,
];

/**
 * Creates the schema when missing and brings it to the latest version, one transaction per
 * version. A session advisory lock (on the store's schema) makes a second replica wait, then find
 * nothing left to do. A database already at a newer version (a newer replica migrated it during a
 * rolling upgrade) is used as it is: migrations only add.
 */
export async function migrate(pool: pg.Pool, schema: string, now: number): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const lock = [lockName(schema, 'migrate')];
    await client.query(`SELECT pg_advisory_lock(${LOCK_KEY})`, lock);
    try {
      // Looked up first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the
      // schema exists, which a role that only uses a schema prepared for it may not have.
      const found = await client.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]);
      if (found.rowCount === 0) await client.query(`CREATE SCHEMA ${schema}`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)`);
      const { rows } = await client.query<{ version: number }>(`SELECT COALESCE(MAX(version), 0)::integer AS version FROM schema_migrations`);
      for (let v = rows[0]?.version ?? 0; v < MIGRATIONS.length; v++) {
        await client.query('BEGIN');
        try {
          await client.query(MIGRATIONS[v] as string);
          await client.query(`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, [v + 1, now]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${LOCK_KEY})`, lock).catch((err: unknown) => {
        // Held by this session still: destroying the connection is what lets the lock go.
        broken = err instanceof Error ? err : new Error(String(err));
      });
    }
  } finally {
    client.release(broken);
  }
}
