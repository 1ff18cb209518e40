import http from 'node:http';
import type { AddressInfo } from 'node:net';
import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FhirClient, searchQuery } from '../../../../src/adapters/fhir/client.ts';
import { CircuitBreaker } from '../../../../src/adapters/http/breaker.ts';
import { retryAfterSeconds } from '../../../../src/adapters/http/client.ts';

const ORIGIN = 'http://fhir.test';
const BASE = `${ORIGIN}/fhir/R4`;
const FHIR_JSON = { 'content-type': 'application/fhir+json' };
const bundle = (ids: string[], next?: string) => ({
  resourceType: 'Bundle',
  type: 'searchset',
  entry: ids.map((id) => ({ resource: { resourceType: 'Observation', id }, search: { mode: 'match' } })),
  ...(next ? { link: [{ relation: 'next', url: next }] } : {}),
});

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});

describe('FhirClient: the exact requests', () => {
  const fhir = new FhirClient({ baseUrl: `${BASE}/`, token: 'tkn', timeoutMs: 1000 });

  it('search: GET with the bearer token and Accept: application/fhir+json; a list repeats the parameter', async () => {
    nock(ORIGIN, { reqheaders: { authorization: 'Bearer tkn', accept: 'application/fhir+json' }, badheaders: ['content-type'] })
      .get('/fhir/R4/Observation')
      .query({ subject: 'Patient/p1', date: ['ge2026-01-01', 'le2026-02-01'], _count: '5' })
      .reply(200, bundle(['o1']), FHIR_JSON);
    const found = await fhir.search('Observation', { subject: 'Patient/p1', date: ['ge2026-01-01', 'le2026-02-01'], _count: 5 });
    expect(found.map((r) => r.id)).toEqual(['o1']);
  });

  it('search keeps only match entries, stops at max, and follows same-origin next links up to maxPages', async () => {
    const paged = new FhirClient({ baseUrl: BASE, timeoutMs: 1000, maxPages: 2 });
    const include = { resource: { resourceType: 'Patient', id: 'p1' }, search: { mode: 'include' } };
    nock(ORIGIN)
      .get('/fhir/R4/Observation')
      .query({ subject: 'Patient/p1' })
      .reply(200, { ...bundle(['o1'], `${BASE}?_getpages=abc&_getpagesoffset=1`), entry: [...bundle(['o1']).entry, include] }, FHIR_JSON)
      .get('/fhir/R4')
      .query({ _getpages: 'abc', _getpagesoffset: '1' })
      .reply(200, bundle(['o2'], `${BASE}?_getpages=abc&_getpagesoffset=2`), FHIR_JSON);
    expect((await paged.search('Observation', { subject: 'Patient/p1' })).map((r) => r.id)).toEqual(['o1', 'o2']);
    nock(ORIGIN).get('/fhir/R4/Observation').query(true).reply(200, bundle(['a', 'b', 'c'], `${BASE}/Observation?page=2`), FHIR_JSON);
    expect((await paged.search('Observation', {}, 2)).map((r) => r.id)).toEqual(['a', 'b']); // no second request
  });

  it('a next link to another origin is not followed (it would carry our token there): a terminal error naming it', async () => {
    nock(ORIGIN).get('/fhir/R4/Observation').reply(200, bundle(['o1'], 'https://elsewhere.example/fhir/Observation?page=2'), FHIR_JSON);
    const err = await fhir.search('Observation', {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UPSTREAM_REJECTED', retryable: false });
    expect((err as Error).message).toMatch(/next link points to https:\/\/elsewhere\.example, not to http:\/\/fhir\.test/);
  });

  it('transaction: POST to the base URL with Content-Type application/fhir+json and the bundle as body', async () => {
    const tx = { resourceType: 'Bundle', type: 'transaction', entry: [] };
    nock(ORIGIN, { reqheaders: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', authorization: 'Bearer tkn' } })
      .post('/fhir/R4', tx)
      .reply(200, { resourceType: 'Bundle', type: 'transaction-response', entry: [] }, FHIR_JSON);
    expect(await fhir.transaction(tx)).toMatchObject({ type: 'transaction-response' });
  });

  it('update: PUT with If-Match W/"version"; a body-less answer takes the new version from the ETag', async () => {
    const order = { resourceType: 'ServiceRequest', id: 'sr1', meta: { versionId: '3' }, priority: 'stat' };
    nock(ORIGIN, { reqheaders: { 'if-match': 'W/"3"', 'content-type': 'application/fhir+json' } })
      .put('/fhir/R4/ServiceRequest/sr1', order)
      .reply(200, { ...order, meta: { versionId: '4' } }, FHIR_JSON);
    expect((await fhir.update(order)).meta?.versionId).toBe('4');
    nock(ORIGIN).put('/fhir/R4/ServiceRequest/sr1').reply(200, '', { etag: 'W/"5"' });
    expect((await fhir.update(order)).meta?.versionId).toBe('5');
    nock(ORIGIN).put('/fhir/R4/ServiceRequest/sr1').reply(412, { resourceType: 'OperationOutcome' }, FHIR_JSON);
    await expect(fhir.update(order)).rejects.toMatchObject({ code: 'UPSTREAM_REJECTED', status: 412, retryable: false });
  });

  it('capabilities: GET [base]/metadata', async () => {
    nock(ORIGIN).get('/fhir/R4/metadata').reply(200, { resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' }, FHIR_JSON);
    expect(await fhir.capabilities()).toMatchObject({ fhirVersion: '4.0.1' });
  });

  it('searchQuery encodes like URLSearchParams: commas and bars inside one value, lists repeated', () => {
    expect(searchQuery({ code: 'http://loinc.org|1,http://loinc.org|2', _count: 3, date: ['ge1', 'le2'] })).toBe(
      '?code=http%3A%2F%2Floinc.org%7C1%2Chttp%3A%2F%2Floinc.org%7C2&_count=3&date=ge1&date=le2',
    );
    expect(searchQuery({})).toBe('');
  });
});

describe('FhirClient: failures', () => {
  const fhir = new FhirClient({ baseUrl: BASE, timeoutMs: 300 });

  it('5xx retryable, 429 retryable with Retry-After (seconds or HTTP date), 4xx terminal', async () => {
    nock(ORIGIN).get('/fhir/R4/Patient').query(true).reply(503, 'down');
    await expect(fhir.search('Patient', { identifier: 'x' })).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503, retryable: true });
    nock(ORIGIN).get('/fhir/R4/Patient').query(true).reply(429, '', { 'retry-after': '7' });
    await expect(fhir.search('Patient', { identifier: 'x' })).rejects.toMatchObject({ code: 'UPSTREAM_THROTTLED', retryAfterS: 7, retryable: true });
    nock(ORIGIN).get('/fhir/R4/Patient').query(true).reply(400, { resourceType: 'OperationOutcome' }, FHIR_JSON);
    await expect(fhir.search('Patient', { identifier: 'x' })).rejects.toMatchObject({ code: 'UPSTREAM_REJECTED', status: 400, retryable: false });
    nock(ORIGIN).get('/fhir/R4/Patient').query(true).reply(401, '');
    await expect(fhir.search('Patient', { identifier: 'x' })).rejects.toMatchObject({ code: 'UPSTREAM_AUTH', retryable: false });
    expect(retryAfterSeconds('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10);
  });

  it('a 2xx whose body is not JSON, or a search answered with something other than a Bundle, is FHIR_MALFORMED (retryable)', async () => {
    nock(ORIGIN).get('/fhir/R4/Patient').reply(200, '{"resourceType": "Bundle", "entry": [{', FHIR_JSON);
    await expect(fhir.search('Patient', {})).rejects.toMatchObject({ code: 'FHIR_MALFORMED', retryable: true });
    nock(ORIGIN).get('/fhir/R4/Patient').reply(200, '<html>proxy</html>', { 'content-type': 'text/html' });
    await expect(fhir.search('Patient', {})).rejects.toMatchObject({ code: 'FHIR_MALFORMED' });
    nock(ORIGIN).get('/fhir/R4/Patient').reply(200, { resourceType: 'OperationOutcome' }, FHIR_JSON);
    await expect(fhir.search('Patient', {})).rejects.toMatchObject({ code: 'FHIR_MALFORMED' });
    nock(ORIGIN).post('/fhir/R4').reply(200, '"a string"', FHIR_JSON);
    await expect(fhir.transaction({ resourceType: 'Bundle' })).rejects.toMatchObject({ code: 'FHIR_MALFORMED' });
  });

  it('no answer within timeoutMs is UPSTREAM_TIMEOUT; a refused connection UPSTREAM_UNAVAILABLE; both retryable', async () => {
    nock(ORIGIN).get('/fhir/R4/metadata').delay(1000).reply(200, {});
    await expect(fhir.capabilities()).rejects.toMatchObject({ code: 'UPSTREAM_TIMEOUT', retryable: true });
    nock.enableNetConnect('127.0.0.1');
    try {
      const closed = http.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((r) => closed.close(r));
      const refused = new FhirClient({ baseUrl: `http://127.0.0.1:${port}/fhir`, timeoutMs: 1000 });
      await expect(refused.capabilities()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
    } finally {
      nock.disableNetConnect();
    }
  });

  it('reports every failure with its label and feeds the breaker: transient failures open it, terminal ones do not', async () => {
    const watched = new FhirClient({ baseUrl: BASE, timeoutMs: 1000 });
    const labels: (number | string)[] = [];
    watched.onError = (target, status) => labels.push(`${target}:${status}`);
    watched.breaker = new CircuitBreaker('fhir', { failureThreshold: 2, openMs: 60_000 });
    nock(ORIGIN).get('/fhir/R4/metadata').reply(400, '').get('/fhir/R4/metadata').reply(200, 'garbage').get('/fhir/R4/metadata').reply(500, '');
    for (let i = 0; i < 3; i++) await watched.capabilities().catch(() => undefined);
    await expect(watched.capabilities()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' }); // open: no request sent
    expect(labels).toEqual(['fhir:400', 'fhir:malformed', 'fhir:500', 'fhir:circuit_open']);
  });
});
