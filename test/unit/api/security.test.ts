/**
 * Safe by default: every route of the OpenAPI document refuses a caller without the token except
 * the documented public ones, a foreign Host gets 421 (DNS rebinding), /readyz tells a stranger
 * only ready or not, and `serve` will not start without a token.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { request } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.ts';
import { openApiDocument } from '../../../src/api/openapi.ts';
import { ROUTES } from '../../../src/api/routes.ts';
import { bearerMatches } from '../../../src/api/auth.ts';
import { main } from '../../../src/cli.ts';
import { loadConfig } from '../../../src/config/load.ts';
import type { Store } from '../../../src/state/ports.ts';
import { seededStore, TOKEN } from '../../harness/api-seed.ts';

const METRICS_TOKEN = 'metrics-only-token-0123456789';
const UID = '1.2.826.0.1.3680043.10.999.2';
let store: Store;
let server: Server;
let port = 0;

beforeAll(async () => {
  store = await seededStore();
  const app = createApp({
    store,
    token: TOKEN,
    metricsToken: METRICS_TOKEN,
    hosts: { host: '127.0.0.1', allowed: ['triage.example.org'] },
    shadow: false,
    status: () => ({ provider: 'cpu', model: 'm@1' }),
    metrics: { contentType: 'text/plain; version=0.0.4', text: async () => 'pacs_triage_jobs{state="done"} 1\n' },
    ready: async () => ({ ready: false, checks: { pacs: { ok: true }, fhir: { ok: false, detail: 'UPSTREAM_UNAVAILABLE: fhir answered 503' } } }),
    webhook: { secret: 'a-webhook-secret-of-16+' },
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** A raw request (fetch will not send a Host of our choosing). */
function call(method: string, pathname: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: pathname, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const concrete = (p: string): string => p.replace('{uid}', UID);
const documented = Object.entries(openApiDocument.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => [m.toUpperCase(), p, ops[m] as { security?: unknown[] }] as const));

describe('unauthenticated requests', () => {
  it.each(documented.map(([m, p, op]) => [m, p, (op.security ?? []).length === 0] as const))('%s %s: 401 unless documented public', async (method, p, isPublic) => {
    const res = await call(method, concrete(p));
    if (isPublic) expect(res.status, res.body).not.toBe(401);
    else expect(res.status, res.body).toBe(401);
  });

  it('the public routes are exactly the documented few', () => {
    expect(ROUTES.filter((r) => r.access === 'public').map((r) => r.path).sort()).toEqual(['/', '/app.css', '/app.js', '/filters.js', '/healthz', '/openapi.json', '/readyz', '/view.js']);
  });

  it('an unknown /api path answers 401 too (nothing is learnt without the token)', async () => {
    expect((await call('GET', '/api/nothing-here')).status).toBe(401);
  });
});

describe('tokens', () => {
  it('"bearer" in any case is the same scheme; a wrong or missing token is refused; the metrics token reads only /metrics and /readyz details', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) expect((await call('GET', '/api/worklist', { authorization: `${scheme} ${TOKEN}` })).status).toBe(200);
    expect((await call('GET', '/api/worklist', { authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect((await call('GET', '/api/worklist', { authorization: TOKEN })).status).toBe(401);
    expect((await call('GET', '/metrics')).status).toBe(401);
    expect((await call('GET', '/metrics', { authorization: `Bearer ${METRICS_TOKEN}` })).status).toBe(200);
    expect((await call('GET', '/metrics', { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await call('GET', '/api/worklist', { authorization: `Bearer ${METRICS_TOKEN}` })).status).toBe(401);
  });

  it('compares digests: a prefix, a longer token and an empty one all fail the same way', () => {
    expect(bearerMatches(`Bearer ${TOKEN}`, [TOKEN])).toBe(true);
    expect(bearerMatches(`Bearer ${TOKEN.slice(0, 5)}`, [TOKEN])).toBe(false);
    expect(bearerMatches(`Bearer ${TOKEN}${TOKEN}`, [TOKEN])).toBe(false);
    expect(bearerMatches('Bearer ', [TOKEN])).toBe(false);
    expect(bearerMatches(undefined, [TOKEN])).toBe(false);
    expect(bearerMatches(`Bearer ${TOKEN}`, [undefined, TOKEN])).toBe(true);
  });

  it('/readyz without a token says ready or not, nothing about the upstreams; with one, which check failed', async () => {
    const anonymous = await call('GET', '/readyz');
    expect(anonymous.status).toBe(503);
    expect(JSON.parse(anonymous.body)).toEqual({ status: 'not ready' });
    const detailed = await call('GET', '/readyz', { authorization: `Bearer ${METRICS_TOKEN}` });
    expect(JSON.parse(detailed.body)).toMatchObject({ status: 'not ready', checks: { fhir: { ok: false } } });
  });
});

describe('the Host header (DNS rebinding)', () => {
  it.each([['attacker.example'], ['attacker.example:8080'], ['127.0.0.1.nip.io']])('Host %s: 421 on every route, public ones too', async (host) => {
    for (const p of ['/healthz', '/', '/api/worklist']) {
      const res = await call('GET', p, { host, authorization: `Bearer ${TOKEN}` });
      expect(res.status).toBe(421);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'MISDIRECTED' } });
    }
  });

  it.each([['localhost'], [`localhost:${8080}`], ['127.0.0.1'], ['[::1]:8080'], ['Triage.Example.org'], ['triage.example.org:443']])('Host %s is accepted', async (host) => {
    expect((await call('GET', '/healthz', { host })).status).toBe(200);
  });
});

describe('serve without a token', () => {
  it('exits 2 before opening anything, saying what to set', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'no-token-'));
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ pacs: { baseUrl: 'http://127.0.0.1:9' }, store: { path: path.join(dir, 's.sqlite') } }));
    let stderr = '';
    const code = await main(['serve', '--config', file], { stdout: () => undefined, stderr: (s) => (stderr += s) });
    expect(code).toBe(2);
    expect(stderr).toContain('api.token');
    expect(stderr).toContain('PACS_TRIAGE_API__TOKEN');
    expect(stderr).toContain('api.auth: none');
  });

  it('api.auth none is refused on a host that is not loopback; allowed on loopback', () => {
    expect(() => loadConfig({ env: {}, overrides: { api: { host: '0.0.0.0', auth: 'none' } } })).toThrow(/api\.auth: none is allowed only on a loopback host/);
    expect(loadConfig({ env: {}, overrides: { api: { host: '127.0.0.1', auth: 'none' } } }).api.auth).toBe('none');
  });
});

describe('/api/jobs is paged', () => {
  it('limit and offset as the worklist, with the total', async () => {
    const page = JSON.parse((await call('GET', '/api/jobs?limit=2&offset=1', { authorization: `Bearer ${TOKEN}` })).body) as { total: number; limit: number; offset: number; items: unknown[] };
    expect(page).toMatchObject({ total: 7, limit: 2, offset: 1 });
    expect(page.items).toHaveLength(2);
    expect((await call('GET', '/api/jobs?limit=201', { authorization: `Bearer ${TOKEN}` })).status).toBe(400);
  });
});
