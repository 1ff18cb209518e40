import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.ts';
import { SqliteJobStore } from '../../../src/state/sqlite-store.ts';
import type { StoredResult } from '../../../src/state/store.ts';

const store = new SqliteJobStore(':memory:');
let server: Server;
let base = '';

beforeAll(async () => {
  store.enqueue([
    { studyInstanceUID: '1.1', source: 'cli' },
    { studyInstanceUID: '1.2', source: 'cli' },
    { studyInstanceUID: '1.3', source: 'cli' },
  ]);
  for (const [uid, priority, p] of [['1.1', 'urgent', 0.6], ['1.2', 'stat', 0.9]] as const) {
    store.claim(Date.now());
    store.saveResult({
      resultKey: uid,
      studyInstanceUID: uid,
      priority,
      findings: [{ code: 'x', display: 'X', probability: p, threshold: 0.5, positive: true }],
      createdAt: 1,
    } as StoredResult);
    store.finish(uid, 'done', undefined);
  }
  store.claim(Date.now());
  store.fail('1.3', 'DICOM_UNREADABLE', 'not DICOM', undefined);
  const app = createApp({ store, token: 'a-token-of-sixteen+', shadow: true, status: () => ({ provider: 'cpu', model: 'm@1' }) });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const auth = { authorization: 'Bearer a-token-of-sixteen+' };

describe('API', () => {
  it('/healthz needs no token and says which provider runs', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(await res.json()).toEqual({ status: 'ok', shadow: true, provider: 'cpu', model: 'm@1' });
  });

  it('/api routes answer 401 without the bearer token', async () => {
    const res = await fetch(`${base}/api/worklist`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect((await fetch(`${base}/api/worklist`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
  });

  it('/api/worklist ranks by priority, then shows failures with their reasons', async () => {
    const body = (await (await fetch(`${base}/api/worklist`, { headers: auth })).json()) as { shadow: boolean; items: { studyInstanceUID: string; priority?: string; reason?: string }[] };
    expect(body.shadow).toBe(true);
    expect(body.items.map((i) => [i.studyInstanceUID, i.priority ?? i.reason])).toEqual([
      ['1.2', 'stat'],
      ['1.1', 'urgent'],
      ['1.3', 'not DICOM'],
    ]);
  });

  it('/api/jobs filters by state and refuses an unknown one with a clear 400', async () => {
    const failed = (await (await fetch(`${base}/api/jobs?state=failed`, { headers: auth })).json()) as { items: { studyInstanceUID: string; errorCode: string }[] };
    expect(failed.items.map((j) => [j.studyInstanceUID, j.errorCode])).toEqual([['1.3', 'DICOM_UNREADABLE']]);
    const bad = await fetch(`${base}/api/jobs?state=nope`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/state must be one of/);
  });
});
