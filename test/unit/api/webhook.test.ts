import type { Store } from '../../../src/state/ports.ts';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { secretMatches, WEBHOOK_SECRET_HEADER } from '../../../src/pipeline/ingest/webhook.ts';
import { openSqliteStore } from '../../../src/state/sqlite/index.ts';

const SECRET = 'webhook-secret-0123456789';
const API_TOKEN = 'api-token-0123456789abc';
const UID = '1.2.826.0.1.3680043.10.999.42';
let store: Store;
let server: Server;
let base = '';

beforeAll(async () => {
  store = openSqliteStore(':memory:');
  const app = createApp({ store, token: API_TOKEN, shadow: false, status: () => ({ provider: 'cpu', model: 'm@1' }), webhook: { secret: SECRET, bodyLimit: '1kb' } });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
});

const hook = (body: unknown, headers: Record<string, string>): Promise<Response> =>
  fetch(`${base}/webhooks/orthanc`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('POST /webhooks/orthanc', () => {
  it('401 without the secret header, 403 with a wrong one; nothing enqueued', async () => {
    const none = await hook({ StudyInstanceUID: UID }, {});
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    // The API's bearer token is not the webhook's secret.
    expect((await hook({ StudyInstanceUID: UID }, { [WEBHOOK_SECRET_HEADER]: API_TOKEN })).status).toBe(403);
    expect((await hook({ StudyInstanceUID: UID }, { [WEBHOOK_SECRET_HEADER]: `${SECRET}x` })).status).toBe(403);
    expect((await hook({ StudyInstanceUID: UID }, { [WEBHOOK_SECRET_HEADER]: SECRET.slice(0, -1) })).status).toBe(403);
    expect(await store.jobs()).toEqual([]);
  });

  it('202 with the right secret: the study is queued from source webhook, with Orthanc\'s id', async () => {
    const res = await hook({ StudyInstanceUID: UID, OrthancId: '6e2c0ec2-5d99c8ca-c1c21cee-79a09605-68391d12', ChangeType: 'StableStudy' }, { [WEBHOOK_SECRET_HEADER]: SECRET });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ studyInstanceUID: UID, state: 'queued' });
    expect(await store.get(UID)).toMatchObject({ source: 'webhook', state: 'queued', orthancId: '6e2c0ec2-5d99c8ca-c1c21cee-79a09605-68391d12' });
  });

  it('400 for a body without a valid UID, 413 over the body limit, 400 for malformed JSON', async () => {
    const h = { [WEBHOOK_SECRET_HEADER]: SECRET };
    expect((await hook({ StudyInstanceUID: 'not a uid' }, h)).status).toBe(400);
    expect((await hook({}, h)).status).toBe(400);
    expect((await hook({ StudyInstanceUID: UID, pad: 'x'.repeat(2048) }, h)).status).toBe(413);
    expect((await hook('{"StudyInstanceUID":', h)).status).toBe(400);
  });

  it('NewInstance: 409 without ingest.stableAgeS; nothing enqueued', async () => {
    const res = await hook({ StudyInstanceUID: '1.2.3.409', SeriesInstanceUID: '1.2.3.409.1', ChangeType: 'NewInstance' }, { [WEBHOOK_SECRET_HEADER]: SECRET });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/ingest\.stableAgeS/);
    expect(await store.get('1.2.3.409')).toBeUndefined();
  });

  it('NewInstance with stableAgeS: each post pushes the study back to settle; our own series is acknowledged and ignored; a series UID is required', async () => {
    let now = 10_000;
    const settling = openSqliteStore(':memory:', { clock: () => now });
    const app = createApp({
      store: settling,
      shadow: false,
      status: () => ({ provider: 'cpu', model: 'm@1' }),
      webhook: { secret: SECRET, stableAgeMs: 1_000, isOwnSeries: (_study, series) => series === '1.2.3.7.99' },
    });
    const s = await new Promise<Server>((resolve) => {
      const x = app.listen(0, '127.0.0.1', () => resolve(x));
    });
    const post = (body: unknown): Promise<Response> =>
      fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/webhooks/orthanc`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [WEBHOOK_SECRET_HEADER]: SECRET },
        body: JSON.stringify(body),
      });
    try {
      expect((await post({ StudyInstanceUID: '1.2.3.7', SeriesInstanceUID: '1.2.3.7.1', ChangeType: 'NewInstance' })).status).toBe(202);
      expect(await settling.nextDueAt()).toBe(11_000);
      now = 10_400;
      expect((await post({ StudyInstanceUID: '1.2.3.7', SeriesInstanceUID: '1.2.3.7.2', ChangeType: 'NewInstance' })).status).toBe(202);
      expect(await settling.nextDueAt()).toBe(11_400);
      expect(await settling.claim(11_399)).toBeUndefined();
      const ours = await post({ StudyInstanceUID: '1.2.3.7', SeriesInstanceUID: '1.2.3.7.99', ChangeType: 'NewInstance' });
      expect(ours.status).toBe(200);
      expect(await ours.json()).toEqual({ studyInstanceUID: '1.2.3.7', ignored: 'our own result' });
      expect(await settling.nextDueAt()).toBe(11_400);
      expect((await post({ StudyInstanceUID: '1.2.3.8', ChangeType: 'NewInstance' })).status).toBe(400);
      // A StableStudy post is due at once, as without stableAgeS.
      expect((await post({ StudyInstanceUID: '1.2.3.9', ChangeType: 'StableStudy' })).status).toBe(202);
      expect(await settling.nextDueAt()).toBe(10_400);
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
      await settling.close();
    }
  });

  it('the route does not exist without a webhook secret configured', async () => {
    const app = createApp({ store, shadow: false, status: () => ({ provider: 'cpu', model: 'm@1' }) });
    const s = await new Promise<Server>((resolve) => {
      const x = app.listen(0, '127.0.0.1', () => resolve(x));
    });
    const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/webhooks/orthanc`, { method: 'POST', headers: { [WEBHOOK_SECRET_HEADER]: SECRET } });
    expect(res.status).toBe(404);
    await new Promise<void>((resolve) => s.close(() => resolve()));
  });
});

describe('webhook secret', () => {
  it('compares in constant time over hashes (any length)', () => {
    expect(secretMatches(SECRET, SECRET)).toBe(true);
    expect(secretMatches('short', SECRET)).toBe(false);
    expect(secretMatches(undefined, SECRET)).toBe(false);
  });

  it('config: ≥ 16 characters, required by the webhook mode', () => {
    expect(configSchema.safeParse({ ingest: { webhook: { secret: 'too-short' } } }).success).toBe(false);
    const missing = configSchema.safeParse({ ingest: { modes: ['webhook'] } });
    expect(missing.success).toBe(false);
    expect(JSON.stringify(missing.error?.issues)).toContain('the webhook mode needs ingest.webhook.secret');
    expect(configSchema.parse({ ingest: { modes: ['orthanc-changes', 'webhook'], webhook: { secret: SECRET } } }).ingest).toMatchObject({ modes: ['orthanc-changes', 'webhook'], webhook: { secret: SECRET, bodyLimit: '4kb' } });
    expect(configSchema.safeParse({ pacs: { baseUrl: 'http://x:1', kind: 'dicomweb' }, ingest: { modes: ['orthanc-changes'] } }).success).toBe(false);
  });
});
