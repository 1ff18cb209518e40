/**
 * TLS to the upstreams against a real HTTPS server on loopback. The certificates are made at
 * test time with openssl in a temporary folder (nothing committed): a CA, a server certificate
 * for 127.0.0.1 it signs, a client certificate it signs (key encrypted with a passphrase), and a
 * second CA that signs nothing we serve.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FhirClient } from '../../../../src/adapters/fhir/client.ts';
import { HttpClient } from '../../../../src/adapters/http/client.ts';
import { readTlsFiles } from '../../../../src/adapters/http/tls.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'pacs-triage-tls-'));
const f = (name: string): string => path.join(dir, name);
const openssl = (...args: string[]): void => {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
};
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function makeCa(name: string): void {
  openssl('req', '-x509', ...EC, '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`), '-days', '1', '-subj', `/CN=${name}`);
}
function issue(name: string, subject: string, ext: string): void {
  openssl('req', '-new', ...EC, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subject);
  writeFileSync(f(`${name}.ext`), ext);
  openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '1', '-extfile', f(`${name}.ext`));
}

interface Server {
  url: string;
  close(): Promise<void>;
  /** Common names of the client certificates the server saw. */
  clients: string[];
}
async function serve(mutual: boolean): Promise<Server> {
  const clients: string[] = [];
  const server = https.createServer(
    {
      key: readFileSync(f('server.key')),
      cert: readFileSync(f('server.crt')),
      ...(mutual ? { ca: readFileSync(f('ca.crt')), requestCert: true, rejectUnauthorized: true } : {}),
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      if (peer?.subject?.CN) clients.push(String(peer.subject.CN));
      res.setHeader('content-type', 'application/fhir+json');
      res.end(JSON.stringify({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' }));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    clients,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let plain: Server;
let mutual: Server;
beforeAll(async () => {
  makeCa('ca');
  makeCa('other-ca');
  issue('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  issue('client', '/CN=pacs-triage', 'extendedKeyUsage=clientAuth\n');
  openssl('pkcs8', '-topk8', '-in', f('client.key'), '-out', f('client-encrypted.key'), '-passout', 'pass:s3cret');
  plain = await serve(false);
  mutual = await serve(true);
});
afterAll(async () => {
  await plain?.close();
  await mutual?.close();
});

function client(url: string, tls: Parameters<typeof readTlsFiles>[0]): HttpClient {
  const problems: string[] = [];
  const options = readTlsFiles(tls, 'pacs.tls', problems);
  expect(problems).toEqual([]);
  return new HttpClient({ baseUrl: url, timeoutMs: 5000, name: 'pacs', ...(options ? { tls: options } : {}) });
}

describe('TLS to an upstream', () => {
  it('a server certificate from the CA in caFile is trusted', async () => {
    const http = client(plain.url, { caFile: f('ca.crt') });
    try {
      expect((await http.request({ path: 'metadata' })).status).toBe(200);
    } finally {
      http.close();
    }
  });

  it('a certificate from a CA we do not trust fails at once with TLS_FAILED — terminal, since retrying cannot change a certificate', async () => {
    for (const tls of [{ caFile: f('other-ca.crt') }, undefined]) {
      const http = client(plain.url, tls);
      const labels: (string | number)[] = [];
      http.onError = (_target, status) => labels.push(status);
      try {
        const err = await http.request({ path: 'metadata' }).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'TLS_FAILED', retryable: false });
        expect((err as Error).message).toMatch(/TLS failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY):.*check pacs\.tls/);
        expect(labels).toEqual(['tls']);
      } finally {
        http.close();
      }
    }
  });

  it('rejectUnauthorized: false accepts any certificate (test rigs only)', async () => {
    const http = client(plain.url, { rejectUnauthorized: false });
    try {
      expect((await http.request({ path: 'metadata' })).status).toBe(200);
    } finally {
      http.close();
    }
  });

  it('a server that requires a client certificate gets ours (encrypted key opened with the passphrase); without one it is TLS_FAILED', async () => {
    const withCert = client(mutual.url, { caFile: f('ca.crt'), certFile: f('client.crt'), keyFile: f('client-encrypted.key'), passphrase: 's3cret' });
    try {
      expect((await withCert.request({ path: 'metadata' })).status).toBe(200);
      expect(mutual.clients).toEqual(['pacs-triage']);
    } finally {
      withCert.close();
    }
    const without = client(mutual.url, { caFile: f('ca.crt') });
    try {
      await expect(without.request({ path: 'metadata' })).rejects.toMatchObject({ code: 'TLS_FAILED', retryable: false });
    } finally {
      without.close();
    }
  });

  it('the FHIR client uses fhir.tls the same way', async () => {
    const problems: string[] = [];
    const tls = readTlsFiles({ caFile: f('ca.crt'), certFile: f('client.crt'), keyFile: f('client.key') }, 'fhir.tls', problems);
    const fhir = new FhirClient({ baseUrl: `${mutual.url}/fhir`, timeoutMs: 5000, ...(tls ? { tls } : {}) });
    try {
      expect(await fhir.capabilities()).toMatchObject({ fhirVersion: '4.0.1' });
    } finally {
      fhir.close();
    }
    const untrusted = new FhirClient({ baseUrl: `${plain.url}/fhir`, timeoutMs: 5000 });
    await expect(untrusted.capabilities()).rejects.toMatchObject({ code: 'TLS_FAILED', where: 'fhir GET /fhir/metadata' });
    untrusted.close();
  });

  it('readTlsFiles lists every unreadable or wrong file with its config path', () => {
    const problems: string[] = [];
    readTlsFiles({ caFile: f('missing.crt'), certFile: f('client.key'), keyFile: f('client-encrypted.key'), passphrase: 'wrong' }, 'fhir.tls', problems);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(new RegExp(`^  - fhir\\.tls\\.caFile: cannot read ${f('missing.crt')}: ENOENT`));
    expect(problems[1]).toBe(`  - fhir.tls.certFile: ${f('client.key')} holds no PEM certificate`);
    expect(problems[2]).toMatch(/^ {2}- fhir\.tls\.keyFile: .* is not a private key that the passphrase opens/);
    expect(problems.join('\n')).not.toContain('wrong');
  });
});
