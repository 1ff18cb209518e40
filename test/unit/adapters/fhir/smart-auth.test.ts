import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FhirClient } from '../../../../src/adapters/fhir/client.ts';
import { ASSERTION_LIFETIME_S, SmartAuth, clientAssertion, defaultSmartScope, type SmartKey } from '../../../../src/adapters/fhir/smart-auth.ts';

const AUTH = 'http://auth.test';
const TOKEN_URL = `${AUTH}/oauth2/token`;
const FHIR = 'http://fhir.test';
const BASE = `${FHIR}/fhir/R4`;
const SCOPE = 'system/Patient.read system/RiskAssessment.write';
const FHIR_JSON = { 'content-type': 'application/fhir+json' };

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' });

interface Jwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}
function decode(jwt: string): Jwt {
  const [h, c, s] = jwt.split('.') as [string, string, string];
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown>,
    signingInput: `${h}.${c}`,
    signature: Buffer.from(s, 'base64url'),
  };
}
function verifies(jwt: Jwt, publicKey: KeyObject): boolean {
  const alg = jwt.header['alg'];
  return alg === 'ES384'
    ? verify('sha384', Buffer.from(jwt.signingInput), { key: publicKey, dsaEncoding: 'ieee-p1363' }, jwt.signature)
    : verify('sha384', Buffer.from(jwt.signingInput), publicKey, jwt.signature);
}

/** A clock the test moves. */
function clock(start = Date.parse('2026-03-01T10:00:00Z')): { now: () => number; advance: (s: number) => void } {
  let t = start;
  return { now: () => t, advance: (s) => (t += s * 1000) };
}

function smart(key: SmartKey, now?: () => number): SmartAuth {
  return new SmartAuth({ tokenUrl: TOKEN_URL, clientId: 'pacs-triage', keyId: 'key-1', scope: SCOPE, key, timeoutMs: 1000, ...(now ? { now } : {}) });
}

/** Expects one token request; records its form fields; answers with `token`. */
function tokenEndpoint(token: string, expiresIn = 300, forms: Record<string, string>[] = []): Record<string, string>[] {
  nock(AUTH, { reqheaders: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, badheaders: ['authorization'] })
    .post('/oauth2/token', (body: Record<string, string>) => {
      forms.push(body);
      return true;
    })
    .reply(200, { access_token: token, token_type: 'bearer', expires_in: expiresIn, scope: SCOPE });
  return forms;
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});

describe('SMART Backend Services: the client assertion', () => {
  it.each([
    ['RS384', { key: rsa.privateKey, alg: 'RS384' as const }, rsa.publicKey],
    ['ES384', { key: ec.privateKey, alg: 'ES384' as const }, ec.publicKey],
  ])('%s: header alg/kid/typ, iss = sub = client id, aud = token URL, exp within 5 minutes, jti; signature verifies', async (_name, key, publicKey) => {
    const jwt = decode(await clientAssertion({ clientId: 'pacs-triage', tokenUrl: TOKEN_URL, keyId: 'key-1', key, nowS: 1_772_359_200, jti: 'j-1' }));
    expect(jwt.header).toEqual({ alg: key.alg, kid: 'key-1', typ: 'JWT' });
    expect(jwt.claims).toEqual({ iss: 'pacs-triage', sub: 'pacs-triage', aud: TOKEN_URL, exp: 1_772_359_200 + ASSERTION_LIFETIME_S, jti: 'j-1' });
    expect(ASSERTION_LIFETIME_S).toBeLessThanOrEqual(300);
    expect(verifies(jwt, publicKey)).toBe(true);
    expect(verifies(jwt, createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey))).toBe(false);
  });

  it('the default scope reads the clinical context and writes only our results; ServiceRequest write only with writeOrderPriority', () => {
    const scope = defaultSmartScope(false).split(' ');
    expect(scope).toEqual(expect.arrayContaining(['system/Patient.read', 'system/ServiceRequest.read', 'system/DiagnosticReport.read', 'system/Observation.read', 'system/ImagingStudy.read']));
    expect(scope).toEqual(expect.arrayContaining(['system/RiskAssessment.write', 'system/Device.write', 'system/Provenance.write']));
    expect(scope).not.toContain('system/ServiceRequest.write');
    expect(scope.some((s) => s.includes('*'))).toBe(false);
    expect(defaultSmartScope(true).split(' ')).toContain('system/ServiceRequest.write');
  });
});

describe('SMART Backend Services: tokens for the FHIR client', () => {
  it('sends the exact token request (form fields, signed assertion), then the token as bearer; two calls share one token', async () => {
    const c = clock();
    const auth = smart({ key: rsa.privateKey, alg: 'RS384' }, c.now);
    const fhir = new FhirClient({ baseUrl: BASE, smart: auth, timeoutMs: 1000 });
    const forms = tokenEndpoint('access-1');
    nock(FHIR, { reqheaders: { authorization: 'Bearer access-1' } })
      .get('/fhir/R4/metadata')
      .twice()
      .reply(200, { resourceType: 'CapabilityStatement' }, FHIR_JSON);
    await fhir.capabilities();
    await fhir.capabilities();
    expect(forms).toHaveLength(1);
    const form = forms[0]!;
    expect(Object.keys(form).sort()).toEqual(['client_assertion', 'client_assertion_type', 'grant_type', 'scope']);
    expect(form).toMatchObject({
      grant_type: 'client_credentials',
      scope: SCOPE,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    });
    const jwt = decode(form['client_assertion']!);
    expect(verifies(jwt, rsa.publicKey)).toBe(true);
    expect(jwt.claims).toMatchObject({ iss: 'pacs-triage', sub: 'pacs-triage', aud: TOKEN_URL, exp: c.now() / 1000 + ASSERTION_LIFETIME_S });
    expect(jwt.claims['jti']).toMatch(/^[0-9a-f-]{36}$/);
    expect(auth.requests).toBe(1);
  });

  it('concurrent callers share one token request (single flight)', async () => {
    const auth = smart({ key: ec.privateKey, alg: 'ES384' });
    const fhir = new FhirClient({ baseUrl: BASE, smart: auth, timeoutMs: 1000 });
    tokenEndpoint('shared');
    nock(FHIR, { reqheaders: { authorization: 'Bearer shared' } }).get('/fhir/R4/metadata').times(5).reply(200, { resourceType: 'CapabilityStatement' }, FHIR_JSON);
    await Promise.all(Array.from({ length: 5 }, () => fhir.capabilities()));
    expect(auth.requests).toBe(1);
  });

  it('refreshes at 80% of expires_in, with a new assertion (new jti); before that the cached token is used', async () => {
    const c = clock();
    const auth = smart({ key: rsa.privateKey, alg: 'RS384' }, c.now);
    const forms = tokenEndpoint('first', 100);
    expect(await auth.accessToken()).toBe('first');
    c.advance(79);
    expect(await auth.accessToken()).toBe('first');
    tokenEndpoint('second', 100, forms);
    c.advance(2); // 81 s: past 80% of 100 s
    expect(await auth.accessToken()).toBe('second');
    expect(forms).toHaveLength(2);
    expect(decode(forms[1]!['client_assertion']!).claims['jti']).not.toBe(decode(forms[0]!['client_assertion']!).claims['jti']);
  });

  it('a token endpoint that is down during an early refresh does not stop work while the held token is still valid', async () => {
    const c = clock();
    const auth = smart({ key: rsa.privateKey, alg: 'RS384' }, c.now);
    tokenEndpoint('held', 100);
    await auth.accessToken();
    c.advance(90);
    nock(AUTH).post('/oauth2/token').reply(503, '');
    expect(await auth.accessToken()).toBe('held');
    c.advance(20); // expired now
    nock(AUTH).post('/oauth2/token').reply(503, '', { 'retry-after': '30' });
    await expect(auth.accessToken()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503, retryAfterS: 30, retryable: true });
  });

  it('a 401 from the FHIR server drops the token, fetches a new one and retries once', async () => {
    const auth = smart({ key: rsa.privateKey, alg: 'RS384' });
    const fhir = new FhirClient({ baseUrl: BASE, smart: auth, timeoutMs: 1000 });
    tokenEndpoint('revoked');
    nock(FHIR, { reqheaders: { authorization: 'Bearer revoked' } }).get('/fhir/R4/Patient').query({ identifier: 's|1' }).reply(401, '');
    tokenEndpoint('fresh');
    nock(FHIR, { reqheaders: { authorization: 'Bearer fresh' } })
      .get('/fhir/R4/Patient')
      .query({ identifier: 's|1' })
      .reply(200, { resourceType: 'Bundle', entry: [{ resource: { resourceType: 'Patient', id: 'p1' } }] }, FHIR_JSON);
    expect((await fhir.search('Patient', { identifier: 's|1' })).map((p) => p.id)).toEqual(['p1']);
    expect(auth.requests).toBe(2);
  });

  it('a second 401 after the refresh is terminal (UPSTREAM_AUTH), with no third attempt', async () => {
    const auth = smart({ key: rsa.privateKey, alg: 'RS384' });
    const fhir = new FhirClient({ baseUrl: BASE, smart: auth, timeoutMs: 1000 });
    tokenEndpoint('a');
    tokenEndpoint('b');
    nock(FHIR).get('/fhir/R4/metadata').twice().reply(401, { resourceType: 'OperationOutcome' }, FHIR_JSON);
    await expect(fhir.capabilities()).rejects.toMatchObject({ code: 'UPSTREAM_AUTH', status: 401, retryable: false });
    expect(auth.requests).toBe(2);
  });

  it('a token endpoint refusal (invalid_client) is terminal and carries the OAuth error text, never the assertion', async () => {
    const auth = smart({ key: rsa.privateKey, alg: 'RS384' });
    nock(AUTH).post('/oauth2/token').reply(400, { error: 'invalid_client', error_description: 'no key with kid key-1' });
    const err = await auth.accessToken().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UPSTREAM_AUTH', status: 400, retryable: false });
    expect((err as Error).message).toBe(`fhir token endpoint ${TOKEN_URL} answered 400: invalid_client (no key with kid key-1)`);
    nock(AUTH).post('/oauth2/token').reply(401, 'echo: eyJhbGciOi...');
    expect(((await auth.accessToken().catch((e: unknown) => e)) as Error).message).toBe(`fhir token endpoint ${TOKEN_URL} answered 401`);
  });

  it('a token answer without access_token is terminal; one that is not JSON is retried', async () => {
    const auth = smart({ key: rsa.privateKey, alg: 'RS384' });
    nock(AUTH).post('/oauth2/token').reply(200, { token_type: 'bearer' });
    await expect(auth.accessToken()).rejects.toMatchObject({ code: 'UPSTREAM_AUTH', retryable: false });
    nock(AUTH).post('/oauth2/token').reply(200, '<html>');
    await expect(auth.accessToken()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
  });
});
