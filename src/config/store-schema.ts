/** `store`: which engine keeps the state (SQLite on one machine, PostgreSQL for replicas), validated with the rest. */
import { z } from 'zod';

export const postgresUrl = z.string().refine((u) => {
  try {
    return ['postgres:', 'postgresql:'].includes(new URL(u).protocol);
  } catch {
    return false;
  }
}, 'must be a postgres:// or postgresql:// URL');
/** URL parameters through which the driver takes TLS settings; they override store.tls, so not both. */
export const URL_TLS_PARAMS = ['ssl', 'sslmode', 'sslcert', 'sslkey', 'sslrootcert'];

/**
 * The job store: SQLite (one machine, nothing to run) or PostgreSQL (replicas sharing one
 * database; see DESIGN.md "Deployment shapes"). `url` holds the password, so it usually comes
 * from PACS_TRIAGE_STORE__URL_FILE. Settings of the other engine are refused, not ignored.
 */
export const store = z
  .object({
    kind: z.enum(['sqlite', 'postgres']).default('sqlite'),
    /** SQLite: the database file. */
    path: z.string().min(1).default('.state/pacs-triage.sqlite'),
    /** PostgreSQL: postgres://user:password@host:5432/database (TLS here or in store.tls). */
    url: postgresUrl.optional(),
    /** PostgreSQL: connections per replica (each worker's transaction holds one while it runs). */
    poolSize: z.number().int().min(1).max(100).default(10),
    /** PostgreSQL: TLS to the server; absent: as the URL says (sslmode), else none. */
    tls: z
      .object({
        caFile: z.string().min(1).optional(),
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
        rejectUnauthorized: z.boolean().default(true),
      })
      .strict()
      .superRefine((t, ctx) => {
        if ((t.certFile === undefined) !== (t.keyFile === undefined)) {
          ctx.addIssue({ code: 'custom', path: [t.certFile === undefined ? 'certFile' : 'keyFile'], message: 'a client certificate needs both certFile and keyFile' });
        }
      })
      .optional(),
    /** PostgreSQL: the schema the tables live in (created when missing); one per deployment. */
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier (letters, digits, _; at most 63)')
      .default('pacs_triage'),
  })
  .strict()
  .superRefine(
    (s, ctx) => {
      if (s.kind !== 'sqlite' && s.kind !== 'postgres') return; // reported already
      if (s.kind === 'postgres' && s.url === undefined) ctx.addIssue({ code: 'custom', path: ['url'], message: 'store.kind postgres needs store.url (or PACS_TRIAGE_STORE__URL_FILE)' });
      if (s.kind !== 'postgres') {
        for (const key of ['url', 'tls'] as const) {
          if (s[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `store.${key} needs store.kind postgres` });
        }
      }
      if (s.tls !== undefined && s.url !== undefined && URL_TLS_PARAMS.some((p) => URL.canParse(s.url!) && new URL(s.url!).searchParams.has(p))) {
        ctx.addIssue({ code: 'custom', path: ['tls'], message: `set TLS in store.tls or in the URL (${URL_TLS_PARAMS.join(', ')}), not both` });
      }
    },
    // Also beside other mistakes in store (a bad poolSize), so that all of them are listed at once.
    { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
  )
  .prefault({});

/**
 * The one configuration schema: file (YAML/JSON) + PACS_TRIAGE_* environment + defaults.
 * Every default here is what a first run on embedded data needs; servers are optional so that
 * `analyze` works with no PACS or FHIR server at all.
 */
