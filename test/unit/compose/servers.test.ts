import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { readSmartKey } from '../../../src/adapters/fhir/smart-auth.ts';
import { connectServers } from '../../../src/compose/servers.ts';
import { TriageError } from '../../../src/domain/errors.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'pacs-triage-transport-'));
function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}
const pkcs8 = { type: 'pkcs8', format: 'pem' } as const;
const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export(pkcs8) as string;
const ecPem = (namedCurve: string): string => generateKeyPairSync('ec', { namedCurve }).privateKey.export(pkcs8) as string;
const rsaKey = file('rsa.pem', rsaPem);
const p384Key = file('p384.pem', ecPem('P-384'));
const p256Key = file('p256.pem', ecPem('P-256'));


function problemsOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(TriageError);
    expect((err as TriageError).code).toBe('CONFIG_INVALID');
    return (err as TriageError).message;
  }
  throw new Error('expected a configuration error');
}

const smart = { tokenUrl: 'https://auth.example/token', clientId: 'pacs-triage', privateKeyFile: rsaKey, keyId: 'k1' };

describe('config: pacs.tls, fhir.tls and fhir.auth.smart', () => {
  it('accepts TLS files on https servers and SMART auth; rejectUnauthorized defaults to true; scope and alg are optional', () => {
    const config = loadConfig({
      env: {},
      overrides: {
        pacs: { baseUrl: 'https://pacs.example', tls: { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem', passphrase: 'p' } },
        fhir: { baseUrl: 'https://fhir.example/R4', tls: { caFile: '/ca.pem' }, auth: { smart } },
      },
    });
    expect(config.pacs?.tls).toEqual({ caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem', passphrase: 'p', rejectUnauthorized: true });
    expect(config.fhir?.auth).toEqual({ smart });
    expect(loadConfig({ env: {}, overrides: { fhir: { baseUrl: 'http://f', auth: { token: 't' } } } }).fhir?.auth).toEqual({ token: 't' });
  });

  it('reads TLS and SMART settings from the environment: …_KEY_FILE / …_CERT_FILE name the files (keys of the schema), PASSPHRASE_FILE reads the secret from its file', () => {
    const secret = file('passphrase', '0123\n');
    const cert = file('cert.pem', '-----BEGIN CERTIFICATE-----\nMII…\n-----END CERTIFICATE-----\n');
    const config = loadConfig({
      env: {
        PACS_TRIAGE_FHIR__BASE_URL: 'https://fhir.example/R4',
        PACS_TRIAGE_FHIR__TLS__KEY_FILE: p384Key,
        PACS_TRIAGE_FHIR__TLS__CERT_FILE: cert,
        PACS_TRIAGE_FHIR__TLS__PASSPHRASE_FILE: secret,
        PACS_TRIAGE_FHIR__TLS__REJECT_UNAUTHORIZED: 'false',
        PACS_TRIAGE_FHIR__AUTH__SMART__TOKEN_URL: 'https://auth.example/token',
        PACS_TRIAGE_FHIR__AUTH__SMART__CLIENT_ID: '42',
        PACS_TRIAGE_FHIR__AUTH__SMART__PRIVATE_KEY_FILE: rsaKey,
        PACS_TRIAGE_FHIR__AUTH__SMART__KEY_ID: 'k1',
        PACS_TRIAGE_FHIR__AUTH__SMART__ALG: 'RS384',
      },
    });
    expect(config.fhir?.tls).toEqual({ keyFile: p384Key, certFile: cert, passphrase: '0123', rejectUnauthorized: false });
    expect(config.fhir?.auth?.smart).toMatchObject({ clientId: '42', alg: 'RS384', privateKeyFile: rsaKey });
    const problems: string[] = [];
    expect(readSmartKey(config.fhir!.auth!.smart!, 'fhir.auth.smart', problems)?.alg).toBe('RS384');
    expect(problems).toEqual([]);
  });

  it('lists every mistake in the new sections with its path, at once', () => {
    const message = problemsOf(() =>
      loadConfig({
        env: {},
        overrides: {
          pacs: { baseUrl: 'https://pacs.example', tls: { certFile: '/c.pem', passphrase: 'p', verify: false } },
          fhir: {
            baseUrl: 'https://fhir.example',
            tls: { keyFile: '/k.pem' },
            auth: { smart: { tokenUrl: 'ftp://auth', clientId: '', privateKeyFile: '/k.pem', alg: 'RS256' } },
          },
        },
      }),
    );
    for (const where of [
      'pacs.tls: Unrecognized key: "verify"',
      'fhir.auth.smart.tokenUrl:',
      'fhir.auth.smart.clientId:',
      'fhir.auth.smart.keyId:',
      'fhir.auth.smart.alg:',
    ]) {
      expect(message).toContain(where);
    }
    const refinements = problemsOf(() =>
      loadConfig({ env: {}, overrides: { pacs: { baseUrl: 'https://pacs.example', tls: { certFile: '/c.pem', passphrase: 'p' } }, fhir: { baseUrl: 'https://f', tls: { keyFile: '/k.pem' } } } }),
    );
    expect(refinements).toContain('pacs.tls.keyFile: a client certificate needs both certFile and keyFile');
    expect(refinements).toContain('pacs.tls.passphrase: a passphrase needs keyFile');
    expect(refinements).toContain('fhir.tls.certFile: a client certificate needs both certFile and keyFile');
  });

  it('refuses tls on an http server (it would be ignored), and token together with smart', () => {
    const message = problemsOf(() =>
      loadConfig({ env: {}, overrides: { pacs: { baseUrl: 'http://pacs', tls: { caFile: '/ca.pem' } }, fhir: { baseUrl: 'https://f', auth: { token: 't', smart } } } }),
    );
    expect(message).toContain('pacs.tls: tls needs an https baseUrl');
    expect(message).toContain('fhir.auth: set exactly one of token or smart');
    const both = problemsOf(() =>
      loadConfig({
        env: {},
        overrides: { fhir: { baseUrl: 'https://f', tls: { ca: 'not pem', caFile: '/ca.pem' }, auth: { smart: { ...smart, privateKey: rsaPem } } } },
      }),
    );
    expect(both).toContain('fhir.tls.ca: must be PEM text');
    expect(both).toContain('fhir.auth.smart.privateKey: set privateKey or privateKeyFile, not both');
    expect(problemsOf(() => loadConfig({ env: {}, overrides: { fhir: { baseUrl: 'https://f', auth: {} } } }))).toContain('fhir.auth: set exactly one of token or smart');
  });
});

describe('connecting the servers: files named by the config are read at start', () => {
  it('every unreadable TLS file and the SMART key are listed together, each with its config path and file', () => {
    const message = problemsOf(() =>
      connectServers(
        loadConfig({
          env: {},
          overrides: {
            pacs: { baseUrl: 'https://pacs.example', tls: { caFile: path.join(dir, 'no-ca.pem') } },
            fhir: { baseUrl: 'https://fhir.example', tls: { caFile: path.join(dir, 'no-fhir-ca.pem') }, auth: { smart: { ...smart, privateKeyFile: path.join(dir, 'no-key.pem') } } },
          },
        }),
      ),
    );
    expect(message).toContain(`pacs.tls.caFile: cannot read ${path.join(dir, 'no-ca.pem')}`);
    expect(message).toContain(`fhir.tls.caFile: cannot read ${path.join(dir, 'no-fhir-ca.pem')}`);
    expect(message).toContain(`fhir.auth.smart.privateKeyFile: cannot read ${path.join(dir, 'no-key.pem')}`);
  });

  it('the SMART key must suit RS384 (RSA) or ES384 (EC P-384), and agree with alg when it is given', () => {
    const check = (privateKeyFile: string, alg?: 'RS384' | 'ES384'): { alg?: string; problems: string[] } => {
      const problems: string[] = [];
      const key = readSmartKey({ ...smart, privateKeyFile, ...(alg ? { alg } : {}) }, 'fhir.auth.smart', problems);
      return { ...(key ? { alg: key.alg } : {}), problems };
    };
    expect(check(rsaKey)).toEqual({ alg: 'RS384', problems: [] });
    expect(check(p384Key)).toEqual({ alg: 'ES384', problems: [] });
    expect(check(p256Key).problems).toEqual([`  - fhir.auth.smart.privateKeyFile: ${p256Key} must be an RSA key (RS384) or an EC P-384 key (ES384)`]);
    expect(check(p384Key, 'RS384').problems).toEqual([`  - fhir.auth.smart.alg: RS384 does not fit the key in ${p384Key} (ES384 does)`]);
    expect(check(file('not-a-key.pem', 'hello')).problems[0]).toMatch(/fhir\.auth\.smart\.privateKeyFile: .* is not an unencrypted PEM private key/);
  });

  it('with readable files the FHIR client is built with SMART auth, and doctor can name it without the secret', () => {
    const servers = connectServers(
      loadConfig({ env: {}, overrides: { pacs: { baseUrl: 'http://pacs.example' }, fhir: { baseUrl: 'https://fhir.example', auth: { smart: { ...smart, privateKeyFile: p384Key } } } } }),
    );
    try {
      expect(servers.fhir?.authKind).toBe('SMART backend services (client pacs-triage)');
    } finally {
      servers.close();
    }
  });
});
