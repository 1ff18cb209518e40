import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { TriageError } from '../../../src/domain/errors.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'pacs-triage-config-'));
function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('loadConfig', () => {
  it('works on defaults alone, with no servers configured', () => {
    const config = loadConfig({ env: {} });
    expect(config.uidRoot).toBe('2.25');
    expect(config.model.executionProviders).toEqual(['cpu']);
    expect(config.pacs).toBeUndefined();
    expect(config.fhir).toBeUndefined();
  });

  it('nests environment variables on "__" and camel-cases their segments', () => {
    const config = loadConfig({
      env: {
        PACS_TRIAGE_FHIR__BASE_URL: 'http://127.0.0.1:8103/fhir/R4',
        PACS_TRIAGE_MODEL__EXECUTION_PROVIDERS: 'cuda,cpu',
        PACS_TRIAGE_MODEL__MAX_BATCH: '16',
        PACS_TRIAGE_SHADOW: 'true',
      },
    });
    expect(config.fhir?.baseUrl).toBe('http://127.0.0.1:8103/fhir/R4');
    expect(config.model.executionProviders).toEqual(['cuda', 'cpu']);
    expect(config.model.maxBatch).toBe(16);
    expect(config.shadow).toBe(true);
  });

  it('takes env over file over defaults, and reads secrets from *_FILE', () => {
    const secret = file('password', 'from-a-file\n');
    const yaml = file(
      'c.yaml',
      'pacs:\n  baseUrl: http://127.0.0.1:8042\n  auth: { username: triage, password: in-yaml }\nmodel:\n  maxBatch: 4\n',
    );
    const config = loadConfig({ file: yaml, env: { PACS_TRIAGE_PACS__AUTH__PASSWORD_FILE: secret, PACS_TRIAGE_MODEL__MAX_BATCH: '2' } });
    expect(config.pacs?.auth).toEqual({ username: 'triage', password: 'from-a-file' });
    expect(config.model.maxBatch).toBe(2);
    expect(config.pacs?.dicomWebPath).toBe('/dicom-web');
  });

  it('refuses worker.backfillConcurrency above worker.concurrency; leaves it unset by default', () => {
    expect(loadConfig({ env: {} }).worker.backfillConcurrency).toBeUndefined();
    expect(() => loadConfig({ env: { PACS_TRIAGE_WORKER__CONCURRENCY: '4', PACS_TRIAGE_WORKER__BACKFILL_CONCURRENCY: '5' } })).toThrow(
      /worker\.backfillConcurrency: must be at most worker\.concurrency \(4\)/,
    );
  });

  it('lists every problem with its path in one error', () => {
    const json = file('bad.json', JSON.stringify({ uidRoot: '1.02.3', model: { maxBatch: 0 }, pacs: { baseUrl: 'ftp://x' }, typo: 1 }));
    let error: unknown;
    try {
      loadConfig({ file: json, env: { PACS_TRIAGE_API__PORT: '99999' } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TriageError);
    const message = (error as TriageError).message;
    expect((error as TriageError).code).toBe('CONFIG_INVALID');
    for (const where of ['uidRoot:', 'model.maxBatch:', 'pacs.baseUrl:', 'api.port:', '(root):']) expect(message).toContain(where);
  });

  it('a key whose own name ends in File takes the path; other *_FILE names are read from the file', () => {
    const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nnot read here\n-----END CERTIFICATE-----\n');
    const token = file('token', 'tok-from-file\n');
    const env = {
      PACS_TRIAGE_PACS__BASE_URL: 'https://pacs.example:8042',
      PACS_TRIAGE_PACS__TLS__CA_FILE: ca,
      PACS_TRIAGE_FHIR__BASE_URL: 'http://fhir.example/fhir',
      PACS_TRIAGE_FHIR__AUTH__TOKEN_FILE: token,
    };
    const config = loadConfig({ env });
    expect(config.pacs?.tls).toMatchObject({ caFile: ca });
    expect(config.fhir?.auth).toEqual({ token: 'tok-from-file' });
  });

  it('names a secret file it cannot read', () => {
    expect(() => loadConfig({ env: { PACS_TRIAGE_FHIR__AUTH__TOKEN_FILE: path.join(dir, 'missing') } })).toThrow(
      /PACS_TRIAGE_FHIR__AUTH__TOKEN_FILE: cannot read/,
    );
  });

  it('types environment values by the schema: an all-digit password stays a string, a port becomes a number (regression)', () => {
    const config = loadConfig({
      env: {
        PACS_TRIAGE_PACS__BASE_URL: 'http://127.0.0.1:8042',
        PACS_TRIAGE_PACS__AUTH__USERNAME: 'triage',
        PACS_TRIAGE_PACS__AUTH__PASSWORD: '123456',
        PACS_TRIAGE_API__PORT: '8081',
        PACS_TRIAGE_API__TOKEN: '1234567890123456',
      },
    });
    expect(config.pacs?.auth).toEqual({ username: 'triage', password: '123456' });
    expect(config.api.port).toBe(8081);
    expect(config.api.token).toBe('1234567890123456');
    expect(() => loadConfig({ env: { PACS_TRIAGE_NOT__A_KEY: '1' } })).toThrow(/\(root\)|notA?/);
  });
});
