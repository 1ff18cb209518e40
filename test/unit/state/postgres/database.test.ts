/**
 * The PostgreSQL engine's connection settings and its one error mapping (no server needed; the
 * engine itself runs against a real one in test/integration/postgres-store.test.ts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { TriageError } from '../../../../src/domain/errors.ts';
import { clientConfig, guarded, storeError } from '../../../../src/state/postgres/database.ts';

/** A server error as the driver raises it. */
function serverError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR', detail: 'Key (study_uid)=(1.2.3) already exists.' });
}

describe('postgres connection settings', () => {
  it('puts the store in its schema, reads bigint as a number, and reads the TLS files', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pg-tls-'));
    writeFileSync(path.join(dir, 'ca.pem'), 'CA');
    const config = clientConfig({ url: 'postgres://db/pacs', schema: 'pacs_triage', tls: { caFile: path.join(dir, 'ca.pem'), rejectUnauthorized: false } });
    expect(config.options).toBe('-c search_path=pacs_triage');
    expect(config.ssl).toEqual({ rejectUnauthorized: false, ca: Buffer.from('CA') });
    const int8 = config.types!.getTypeParser(pg.types.builtins.INT8, 'text') as (v: string) => unknown;
    expect(int8('1700000000123')).toBe(1_700_000_000_123);
    const text = config.types!.getTypeParser(pg.types.builtins.TEXT, 'text') as (v: string) => unknown;
    expect(text('x')).toBe('x');
    expect(clientConfig({ url: 'postgres://db/pacs', schema: 'pacs_triage' }).ssl).toBeUndefined();
  });

  it('refuses a schema name that would need quoting, and a TLS file it cannot read, as configuration errors', () => {
    expect(() => clientConfig({ url: 'postgres://db/pacs', schema: 'x; DROP TABLE jobs' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => clientConfig({ url: 'postgres://db/pacs', schema: 's', tls: { caFile: '/nonexistent/ca.pem' } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', where: 'store.tls.caFile' }),
    );
  });
});

describe('postgres errors', () => {
  it('a connection that cannot start or broke is UPSTREAM_UNAVAILABLE (retryable)', () => {
    for (const err of [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      serverError('57P01', 'terminating connection due to administrator command'),
      serverError('08006', 'connection failure'),
      serverError('53300', 'sorry, too many clients already'),
      serverError('40P01', 'deadlock detected'),
    ]) {
      const e = storeError(err);
      expect(e).toBeInstanceOf(TriageError);
      expect(e).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true, where: 'state.postgres' });
    }
  });

  it('a refused login and a bad certificate are not retried; other server errors are INTERNAL without the values a data error quotes', () => {
    expect(storeError(serverError('28P01', 'password authentication failed for user "triage"')).code).toBe('UPSTREAM_AUTH');
    expect(storeError(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })).code).toBe('TLS_FAILED');
    const unique = storeError(serverError('23505', 'duplicate key value violates unique constraint "jobs_pkey"'));
    expect(unique).toMatchObject({ code: 'INTERNAL', message: 'postgres error 23505: duplicate key value violates unique constraint "jobs_pkey"' });
    expect(unique.message).not.toContain('1.2.3'); // the detail names the row
    expect(storeError(serverError('22P02', 'invalid input syntax for type bigint: "1.2.840.113619"')).message).toBe('postgres error 22P02');
    const own = new TriageError('NOT_FOUND', 'x');
    expect(storeError(own)).toBe(own);
  });

  it('guarded: each method\'s failure comes out as a TriageError; values pass through', async () => {
    const methods = guarded({
      async ok(n: number) {
        return n + 1;
      },
      async broken(): Promise<void> {
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
    });
    expect(await methods.ok(1)).toBe(2);
    await expect(methods.broken()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
  });
});
