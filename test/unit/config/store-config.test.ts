/** `store`: the engine and its settings, validated with every mistake listed at its path, and the URL never echoed. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { TriageError } from '../../../src/domain/errors.ts';

function problems(env: Record<string, string>): string {
  try {
    loadConfig({ env });
  } catch (err) {
    expect(err).toBeInstanceOf(TriageError);
    return (err as TriageError).message;
  }
  throw new Error('expected the configuration to be refused');
}

describe('store config', () => {
  it('defaults to SQLite; postgres takes its URL from a *_FILE secret, and its pool size and schema', () => {
    expect(loadConfig({ env: {} }).store).toEqual({ kind: 'sqlite', path: '.state/pacs-triage.sqlite', poolSize: 10, schema: 'pacs_triage' });
    const secret = path.join(mkdtempSync(path.join(tmpdir(), 'store-config-')), 'url');
    writeFileSync(secret, 'postgres://triage:s3cret@db:5432/pacs\n');
    const store = loadConfig({
      env: { PACS_TRIAGE_STORE__KIND: 'postgres', PACS_TRIAGE_STORE__URL_FILE: secret, PACS_TRIAGE_STORE__POOL_SIZE: '4', PACS_TRIAGE_STORE__TLS__CA_FILE: '/run/secrets/ca.pem' },
    }).store;
    expect(store).toEqual({
      kind: 'postgres',
      path: '.state/pacs-triage.sqlite',
      url: 'postgres://triage:s3cret@db:5432/pacs',
      poolSize: 4,
      schema: 'pacs_triage',
      tls: { caFile: '/run/secrets/ca.pem', rejectUnauthorized: true },
    });
  });

  it('a postgres kind without url is an error naming store.url, listed with every other mistake', () => {
    const message = problems({ PACS_TRIAGE_STORE__KIND: 'postgres', PACS_TRIAGE_STORE__POOL_SIZE: '0', PACS_TRIAGE_STORE__SCHEMA: 'Pacs-Triage', PACS_TRIAGE_API__PORT: '99999' });
    expect(message).toContain('store.url: store.kind postgres needs store.url');
    expect(message).toContain('store.poolSize:');
    expect(message).toContain('store.schema: must be a lower-case SQL identifier');
    expect(message).toContain('api.port:');
  });

  it('refuses postgres settings on SQLite, a URL of another scheme (without echoing it), half a client certificate, and TLS set twice', () => {
    expect(problems({ PACS_TRIAGE_STORE__URL: 'postgres://u:pw@db/pacs' })).toContain('store.url: store.url needs store.kind postgres');
    const wrong = problems({ PACS_TRIAGE_STORE__KIND: 'postgres', PACS_TRIAGE_STORE__URL: 'mysql://u:hunter2@db/pacs', PACS_TRIAGE_STORE__TLS__CERT_FILE: '/c.pem' });
    expect(wrong).toContain('store.url: must be a postgres:// or postgresql:// URL');
    expect(wrong).not.toContain('hunter2');
    expect(wrong).toContain('store.tls.keyFile: a client certificate needs both certFile and keyFile');
    expect(problems({ PACS_TRIAGE_STORE__KIND: 'postgres', PACS_TRIAGE_STORE__URL: 'postgres://db/pacs?sslmode=require', PACS_TRIAGE_STORE__TLS__CA_FILE: '/ca.pem' })).toContain(
      'store.tls: set TLS in store.tls or in the URL',
    );
  });
});
