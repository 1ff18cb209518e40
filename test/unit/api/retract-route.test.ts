/** POST /api/studies/{uid}/retract: auth, validation, the durable record, idempotence, and what the worklist and study show. */
import type { Store } from '../../../src/state/ports.ts';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.ts';
import { openSqliteStore } from '../../../src/state/sqlite/index.ts';
import { storedResult } from '../../harness/api-seed.ts';

const TOKEN = 'a-token-of-sixteen+';
const DONE = '1.2.826.0.1.3680043.10.999.11';
const RUNNING = '1.2.826.0.1.3680043.10.999.12';
const NO_RESULT = '1.2.826.0.1.3680043.10.999.13';

let store: Store;
let server: Server;
let base = '';

beforeAll(async () => {
  store = openSqliteStore(':memory:');
  for (const uid of [DONE, RUNNING]) {
    await store.enqueue([{ studyInstanceUID: uid, source: 'cli' }]);
    await store.claim(Number.MAX_SAFE_INTEGER, { owner: 'w', leaseMs: 60_000 }, uid);
    await store.saveResult(storedResult(uid, 'stat', [0.9]));
  }
  await store.finish(DONE, 'done', undefined);
  await store.enqueue([{ studyInstanceUID: NO_RESULT, source: 'cli' }]);
  const app = createApp({ store, token: TOKEN, shadow: false, status: () => ({ provider: 'cpu', model: 'm@1' }) });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const retract = (uid: string, body: unknown, token = TOKEN): Promise<Response> =>
  fetch(`${base}/api/studies/${uid}/retract`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('POST /api/studies/{uid}/retract', () => {
  it('needs the bearer token', async () => {
    const res = await retract(DONE, { reason: 'x' }, 'wrong-token-of-16+');
    expect(res.status).toBe(401);
    expect(await store.getRetraction(DONE)).toBeUndefined();
  });

  it('validates the body: every problem with its field', async () => {
    const res = await retract(DONE, { reason: ' ', by: 5, extra: true });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; problems: { path: string }[] } };
    expect(body.error.code).toBe('USAGE');
    expect(body.error.problems.map((p) => p.path).sort()).toEqual(['by', 'extra', 'reason']);
    expect((await retract(DONE, { reason: 'x'.repeat(1001) })).status).toBe(400);
    expect(await store.getRetraction(DONE)).toBeUndefined();
  });

  it('404 for an unknown study or one without a result; 409 while the study runs', async () => {
    expect((await retract('1.2.3.4', { reason: 'x' })).status).toBe(404);
    expect((await retract(NO_RESULT, { reason: 'x' })).status).toBe(404);
    const running = await retract(RUNNING, { reason: 'x' });
    expect(running.status).toBe(409);
    expect(((await running.json()) as { error: { code: string } }).error.code).toBe('CONFLICT');
  });

  it('202 and a pending retraction; again: 200, the same record, nothing new; the worklist and the study show it', async () => {
    const first = await retract(DONE, { reason: 'missed the pneumothorax', by: 'dr a' });
    expect(first.status).toBe(202);
    expect(await first.json()).toEqual({ studyInstanceUID: DONE, state: 'pending', resultKey: `key-${DONE}`, message: 'retraction queued' });
    const recorded = await store.getRetraction(DONE);
    expect(recorded).toMatchObject({ cause: 'marked-wrong', reason: 'missed the pneumothorax', requestedBy: 'dr a', state: 'pending' });
    const again = await retract(DONE, { reason: 'other words' });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { message: string }).message).toBe('already retracted (pending); nothing new is written');
    expect(await store.getRetraction(DONE)).toEqual(recorded);

    const list = (await (await fetch(`${base}/api/worklist`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: { studyInstanceUID: string; priority?: string; retracted?: object }[] };
    const entry = list.items.find((i) => i.studyInstanceUID === DONE)!;
    expect(entry.priority).toBeUndefined();
    expect(entry.retracted).toEqual({ cause: 'marked-wrong', state: 'pending', requestedAt: recorded!.requestedAt });
    const study = (await (await fetch(`${base}/api/studies/${DONE}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { retraction: Record<string, unknown> };
    expect(study.retraction).toMatchObject({ cause: 'marked-wrong', state: 'pending', coversLatestResult: true, written: { pacs: false, fhir: false, metadata: false } });
    expect(study.retraction).not.toHaveProperty('reason'); // free text stays in the store
  });
});

describe('retract without a PACS (the folder mode alone)', () => {
  it('answers 409 with the reason and records nothing', async () => {
    const local = openSqliteStore(':memory:');
    await local.enqueue([{ studyInstanceUID: DONE, source: 'folder' }]);
    const app = createApp({ store: local, token: TOKEN, shadow: false, status: () => ({ provider: 'cpu', model: 'm@1' }), retractUnavailable: 'retraction needs a PACS' });
    const s = await new Promise<Server>((resolve) => {
      const x = app.listen(0, '127.0.0.1', () => resolve(x));
    });
    try {
      const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/api/studies/${DONE}/retract`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'wrong side' }),
      });
      expect(res.status).toBe(409);
      expect(JSON.stringify(await res.json())).toContain('retraction needs a PACS');
      expect(await local.getRetraction(DONE)).toBeUndefined();
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
      await local.close();
    }
  });
});
