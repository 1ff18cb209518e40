/**
 * Connections of the PostgreSQL engine: how a connection is configured (the store's schema as
 * search_path, bigint as JS numbers, TLS), transactions, and the one place driver errors become
 * TriageErrors. Nothing here logs: SQL parameters and row contents never reach a message.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { TriageError } from '../../domain/errors.ts';

export interface PostgresTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  rejectUnauthorized?: boolean;
}

export interface PostgresConnection {
  /** postgres://… (may hold the password: never put it in a message). */
  url: string;
  /** A lower-case SQL identifier (config/schema.ts checks it), so it needs no quoting. */
  schema: string;
  poolSize?: number;
  tls?: PostgresTls;
}

/** What a statement runs on: the pool (one statement, autocommit) or a transaction's client. */
export type Sql = Pick<pg.PoolClient, 'query'>;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * int8 (COUNT(*), epoch-ms columns, identities) as a JS number: every such value here is an
 * epoch ms or a count, far below 2^53. The driver's default is a string. Per connection, not
 * pg.types.setTypeParser, which would change every other pg user in the process.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

function readPem(file: string, key: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TriageError('CONFIG_INVALID', `store.tls.${key}: cannot read ${file}: ${(err as Error).message}`, { cause: err, where: `store.tls.${key}` });
  }
}

/** The driver's settings for one connection of this store (pooled or dedicated). */
export function clientConfig(c: PostgresConnection, applicationName = 'pacs-triage'): pg.ClientConfig {
  if (!SCHEMA_NAME.test(c.schema)) throw new TriageError('CONFIG_INVALID', 'store.schema must be a lower-case SQL identifier', { where: 'store.schema' });
  const tls = c.tls;
  return {
    connectionString: c.url,
    options: `-c search_path=${c.schema}`,
    types,
    application_name: applicationName,
    keepAlive: true,
    connectionTimeoutMillis: 10_000,
    // A process that hangs inside a transaction would hold its row locks (a job's FOR UPDATE)
    // and the queue behind them; the server ends such a session instead.
    idle_in_transaction_session_timeout: 60_000,
    ...(tls
      ? {
          ssl: {
            rejectUnauthorized: tls.rejectUnauthorized ?? true,
            ...(tls.caFile ? { ca: readPem(tls.caFile, 'caFile') } : {}),
            ...(tls.certFile ? { cert: readPem(tls.certFile, 'certFile') } : {}),
            ...(tls.keyFile ? { key: readPem(tls.keyFile, 'keyFile') } : {}),
          },
        }
      : {}),
  };
}

export function openPool(config: pg.ClientConfig, poolSize: number, onError: (err: TriageError) => void): pg.Pool {
  const pool = new pg.Pool({ ...config, max: poolSize, idleTimeoutMillis: 30_000 });
  // An idle pooled connection that breaks (server restart, network) is dropped by the pool; the
  // event must have a listener or Node ends the process.
  pool.on('error', (err) => onError(storeError(err)));
  return pool;
}

/** A key for pg_advisory_lock: a hash of what it guards, within this store's schema (several deployments may share a database). */
export const LOCK_KEY = `hashtextextended($1, 0)`;
export function lockName(schema: string, what: string): string {
  return `pacs-triage:${schema}:${what}`;
}

/** Serialization failures and deadlocks: the transaction did nothing and may simply run again. */
const RETRY_SQLSTATES = new Set(['40001', '40P01']);

/**
 * Runs `fn` in a transaction (READ COMMITTED; rows it changes are locked with FOR UPDATE first).
 * `fn` may run again after a deadlock, so it must keep its state in its own scope.
 */
export async function transaction<T>(pool: pg.Pool, fn: (sql: Sql) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const value = await fn(client);
      await client.query('COMMIT');
      return value;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e instanceof Error ? e : new Error(String(e));
      });
      if (attempt < 3 && RETRY_SQLSTATES.has((err as { code?: string }).code ?? '')) continue;
      throw err;
    } finally {
      // A client whose ROLLBACK failed is in an unknown state: destroyed, not pooled again.
      client.release(broken);
    }
  }
}

/** Node's socket errors and the driver's own messages when a connection ends or cannot start. */
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|not queryable|Cannot use a pool after calling end/;
/** Certificate failures (as src/adapters/http reports them): a configuration problem, not worth retrying. */
const TLS_ERRNO = /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$)/;

/**
 * The TriageError for a driver error. The server's messages name objects, not values, except
 * data exceptions (class 22) that quote the offending input: those give their SQLSTATE only.
 */
export function storeError(err: unknown): TriageError {
  if (err instanceof TriageError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message.replace(/\s+/g, ' ').trim() : String(err);
  const where = 'state.postgres';
  if (TLS_ERRNO.test(code) || /SSL|TLS|certificate/i.test(code === '' ? message : '')) {
    return new TriageError('TLS_FAILED', `postgres: TLS failed (${code || message}); check store.tls and the server's certificate`, { cause: err, where });
  }
  // 08: connection exception; 57P0x: the server is shutting down or starting; 53300: too many connections.
  if (CONNECTION_ERRNOS.has(code) || /^08/.test(code) || /^57P0[123]$/.test(code) || code === '53300' || (code === '' && CONNECTION_MESSAGES.test(message))) {
    return new TriageError('UPSTREAM_UNAVAILABLE', `postgres unavailable: ${code ? `${code} ` : ''}${message}`, { cause: err, where });
  }
  if (RETRY_SQLSTATES.has(code)) return new TriageError('UPSTREAM_UNAVAILABLE', `postgres: transaction conflict (${code}); try again`, { cause: err, where });
  if (code === '28P01' || code === '28000') return new TriageError('UPSTREAM_AUTH', `postgres refused the login (${code}); check store.url`, { cause: err, where });
  if (/^[0-9A-Z]{5}$/.test(code)) {
    return new TriageError('INTERNAL', code.startsWith('22') ? `postgres error ${code}` : `postgres error ${code}: ${message}`, { cause: err, where });
  }
  return new TriageError('INTERNAL', `postgres: ${message}`, { cause: err, where });
}

/** The same object, each method's failure turned into a TriageError (storeError). */
export function guarded<T extends object>(methods: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(methods)) {
    out[name] =
      typeof value === 'function'
        ? async (...args: unknown[]) => {
            try {
              return (await (value as (...a: unknown[]) => Promise<unknown>)(...args)) as unknown;
            } catch (err) {
              throw storeError(err);
            }
          }
        : value;
  }
  return out as T;
}
