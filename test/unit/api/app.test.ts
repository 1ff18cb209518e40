import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.ts';
import { openApiDocument } from '../../../src/api/openapi.ts';
import type { Store } from '../../../src/state/ports.ts';
import { SEED_ORDER, TOKEN, seededStore } from '../../harness/api-seed.ts';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const STAT = '1.2.826.0.1.3680043.10.999.2';
const FAILED = '1.2.826.0.1.3680043.10.999.3';
const NO_IMAGES = '1.2.826.0.1.3680043.10.999.6';
const QUEUED = '1.2.826.0.1.3680043.10.999.7';
const UNKNOWN = '1.2.3.4.5.6';

let store: Store;
let server: Server;
let base = '';

beforeAll(async () => {
  store = await seededStore();
  const app = createApp({ store, token: TOKEN, shadow: true, status: () => ({ provider: 'cpu', model: 'm@1' }) });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const auth = { authorization: `Bearer ${TOKEN}` };
const get = (path: string, headers: Record<string, string> = auth): Promise<Response> => fetch(`${base}${path}`, { headers });
const post = (path: string, body?: unknown, headers: Record<string, string> = auth): Promise<Response> =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });

interface WorklistBody {
  shadow: boolean;
  total: number;
  limit: number;
  offset: number;
  items: { studyInstanceUID: string; state: string; priority?: string; reason?: string; modality?: string; images: string[] }[];
}
const worklist = async (query = ''): Promise<WorklistBody> => {
  const res = await get(`/api/worklist${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as WorklistBody;
};

describe('API: auth and transport', () => {
  it('/healthz needs no token and says which provider runs', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(await res.json()).toEqual({ status: 'ok', shadow: true, provider: 'cpu', model: 'm@1' });
  });

  const routes: [string, string][] = [
    ['GET', '/api/worklist'],
    ['GET', '/api/jobs'],
    ['GET', `/api/studies/${STAT}`],
    ['GET', `/api/studies/${STAT}/thumbnail.png`],
    ['GET', `/api/studies/${STAT}/saliency.png`],
    ['POST', `/api/studies/${STAT}/reprocess`],
    ['GET', `/api/studies/${STAT}/feedback`],
    ['POST', `/api/studies/${STAT}/feedback`],
    ['GET', '/api/no-such-route'],
  ];
  it.each(routes)('%s %s answers 401 without the bearer token, and with a wrong one', async (method, path) => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: TOKEN }] as Record<string, string>[]) {
      const res = await fetch(`${base}${path}`, { method, headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(await res.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: 'a valid bearer token is required' } });
    }
    expect((await store.get(STAT))?.state).toBe('done'); // the refused reprocess changed nothing
  });

  it('sends no CORS headers, even to a cross-origin request or preflight', async () => {
    const res = await get('/api/worklist', { ...auth, origin: 'http://evil.example' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${base}/api/worklist`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'GET' } });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.status).toBe(401);
  });

  it('marks API responses no-store', async () => {
    expect((await get('/api/worklist')).headers.get('cache-control')).toBe('no-store');
    expect((await get(`/api/studies/${STAT}/thumbnail.png`)).headers.get('cache-control')).toBe('no-store');
  });

  it('answers an unknown /api route with a JSON 404', async () => {
    const res = await get('/api/nope');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no such route' } });
  });
});

describe('API: worklist', () => {
  it('ranks by priority, then probability, then waiting time; failures and queued last', async () => {
    const body = await worklist();
    expect(body.shadow).toBe(true);
    expect([body.total, body.limit, body.offset]).toEqual([7, 50, 0]);
    expect(body.items.map((i) => i.studyInstanceUID)).toEqual(SEED_ORDER);
    expect(body.items.map((i) => i.priority ?? i.state)).toEqual(['stat', 'asap', 'urgent', 'urgent', 'routine', 'failed', 'queued']);
    expect(body.items.find((i) => i.studyInstanceUID === FAILED)?.reason).toBe('instance 1.2.3: not a DICOM file');
    expect(body.items[0]?.images).toEqual(['thumbnail', 'saliency']);
    expect(body.items.find((i) => i.studyInstanceUID === NO_IMAGES)?.images).toEqual([]);
  });

  it('filters by priority (list or repeated), status, modality and received date', async () => {
    const uids = async (q: string): Promise<string[]> => (await worklist(q)).items.map((i) => i.studyInstanceUID);
    expect(await uids('?priority=stat,asap')).toEqual(SEED_ORDER.slice(0, 2));
    expect(await uids('?priority=stat&priority=asap')).toEqual(SEED_ORDER.slice(0, 2));
    expect(await uids('?status=failed,queued')).toEqual(SEED_ORDER.slice(5));
    expect(await uids('?modality=dx')).toEqual([SEED_ORDER[4]]);
    expect((await worklist('?modality=CR')).total).toBe(4);
    // The store clock starts at 1_700_000_000_000 (2023-11-14T22:13:20Z) and ticks one minute per call.
    expect((await worklist('?date=2023-11-14')).total).toBe(7);
    expect((await worklist('?date=2023-11-15')).total).toBe(0);
    const all = (await worklist()).items;
    const third = [...all].sort((a, b) => a.studyInstanceUID.localeCompare(b.studyInstanceUID))[2] as unknown as { receivedAt: number };
    const since = new Date(third.receivedAt).toISOString();
    expect(await uids(`?since=${since}&status=done`)).toEqual(SEED_ORDER.filter((u) => ['.4', '.5', '.6'].some((s) => u.endsWith(s))));
    expect(await uids(`?until=${since}`)).toEqual(SEED_ORDER.filter((u) => ['.1', '.2'].some((s) => u.endsWith(s))));
  });

  it('pages with limit and offset; total counts every match', async () => {
    const first = await worklist('?limit=3');
    const second = await worklist('?limit=3&offset=3');
    const third = await worklist('?limit=3&offset=6');
    expect([first.total, first.limit, first.offset, second.offset]).toEqual([7, 3, 0, 3]);
    expect([...first.items, ...second.items, ...third.items].map((i) => i.studyInstanceUID)).toEqual(SEED_ORDER);
    expect((await worklist('?priority=urgent&limit=1&offset=1')).items.map((i) => [i.studyInstanceUID, i.priority])).toEqual([[SEED_ORDER[3], 'urgent']]);
  });

  it('refuses a bad query with a 400 that lists every problem', async () => {
    const res = await get('/api/worklist?priority=stat,soon&status=lost&modality=C-R&date=yesterday&limit=0&offset=x&sort=name&patient=x&since=2024-13');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string; problems: { path: string; message: string }[] } };
    expect(body.error.code).toBe('USAGE');
    expect(body.error.problems).toEqual([
      { path: 'priority.1', message: '"soon" is not a priority (one of stat, asap, urgent, routine)' },
      { path: 'status.0', message: '"lost" is not a status (one of queued, running, done, failed, skipped)' },
      { path: 'modality.0', message: 'must be a DICOM modality code such as CR or DX' },
      { path: 'date', message: 'must be a day, YYYY-MM-DD (UTC)' },
      { path: 'since', message: '"2024-13" is not an ISO 8601 date (YYYY-MM-DD) or date-time with a time zone' },
      { path: 'sort', message: 'must be one of priority, received, studyDate, accession, description, modality, age, with a leading - for descending' },
      { path: 'limit', message: 'must be at least 1' },
      { path: 'offset', message: 'must be a whole number' },
      { path: 'patient', message: 'is not a known field' },
    ]);
    expect(body.error.message).toMatch(/^invalid worklist query: priority\.1: "soon" is not a priority/);
    expect((await get('/api/worklist?limit=201')).status).toBe(400);
  });
});

describe('API: jobs', () => {
  it('filters by state and refuses an unknown one with a clear 400', async () => {
    const failed = (await (await get('/api/jobs?state=failed')).json()) as { items: { studyInstanceUID: string; errorCode: string; reason: string }[] };
    expect(failed.items.map((j) => [j.studyInstanceUID, j.errorCode, j.reason])).toEqual([[FAILED, 'DICOM_UNREADABLE', 'instance 1.2.3: not a DICOM file']]);
    const bad = await get('/api/jobs?state=nope');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: {
        code: 'USAGE',
        message: 'invalid jobs query: state: must be one of queued, running, done, failed, skipped',
        problems: [{ path: 'state', message: 'must be one of queued, running, done, failed, skipped' }],
      },
    });
  });
});

describe('API: one study', () => {
  it('returns findings, thresholds, model, SR and RiskAssessment references, timings and job state', async () => {
    const res = await get(`/api/studies/${STAT}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      studyInstanceUID: STAT,
      shadow: true,
      job: { studyInstanceUID: STAT, state: 'done', attempts: 1, timings: { infer: 35.7, retrieve: 40.1 } },
      result: {
        resultKey: `key-${STAT}`,
        priority: 'stat',
        modality: 'CR',
        model: { id: 'cxr-triage', version: '1.0.0', executionProvider: 'cpu' },
        sr: { seriesInstanceUID: `${STAT}.9`, sopInstanceUID: `${STAT}.9.1`, wadoRsPath: `/studies/${STAT}/series/${STAT}.9/instances/${STAT}.9.1` },
        riskAssessment: 'RiskAssessment/ra-1-2-826-0-1-3680043-10-999-2',
        written: { pacs: true, fhir: true, metadata: true },
        notes: [],
      },
      images: { thumbnail: `/api/studies/${STAT}/thumbnail.png`, saliency: `/api/studies/${STAT}/saliency.png` },
      feedback: [],
      verification: null,
    });
    const findings = (body['result'] as { findings: unknown[] }).findings;
    expect(findings[0]).toEqual({ code: 'pneumothorax', display: 'Pneumothorax', probability: 0.91, threshold: 0.5, positive: true });
    expect(findings).toHaveLength(4);
  });

  it('shows a failed job with its reason and no result; a study without images has null links', async () => {
    const failed = (await (await get(`/api/studies/${FAILED}`)).json()) as Record<string, unknown>;
    expect(failed).toMatchObject({ job: { state: 'failed', errorCode: 'DICOM_UNREADABLE', reason: 'instance 1.2.3: not a DICOM file' }, result: null, images: { thumbnail: null, saliency: null } });
    expect(((await (await get(`/api/studies/${NO_IMAGES}`)).json()) as { images: unknown }).images).toEqual({ thumbnail: null, saliency: null });
  });

  it('answers 404 for an unknown study and 400 for something that is not a UID', async () => {
    const res = await get(`/api/studies/${UNKNOWN}`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: `no study ${UNKNOWN} in the store` } });
    const bad = await get('/api/studies/not-a-uid');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: { code: 'USAGE', message: 'invalid study: uid: must be a DICOM UID (digits and dots, at most 64 characters)', problems: [{ path: 'uid', message: 'must be a DICOM UID (digits and dots, at most 64 characters)' }] },
    });
  });
});

describe('API: images', () => {
  it.each(['thumbnail', 'saliency'])('%s.png is an image/png with a PNG signature', async (kind) => {
    const res = await get(`/api/studies/${STAT}/${kind}.png`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(Array.from(bytes.subarray(0, 8))).toEqual(PNG_SIGNATURE);
    expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
  });

  it('draws a picture from its source at the first view, keeps it, and draws again from a newer source', async () => {
    const uid = SEED_ORDER[1] as string; // .5, with pictures, not viewed by the other tests
    const source = await store.getPictureSource(uid);
    expect(source?.resultKey).toBeDefined();
    expect(await store.getImage(uid, 'saliency')).toBeUndefined();
    const first = Buffer.from(await (await get(`/api/studies/${uid}/saliency.png`)).arrayBuffer());
    const kept = await store.getImage(uid, 'saliency');
    expect(kept?.png).toEqual(first);
    expect(kept?.resultKey).toBe(source?.resultKey);
    // Served from the store now: a drawing changed there is what comes back.
    await store.saveImage(uid, 'saliency', Buffer.concat([first, Buffer.from([0])]), source?.resultKey);
    expect((await (await get(`/api/studies/${uid}/saliency.png`)).arrayBuffer()).byteLength).toBe(first.length + 1);
    // A new result's source drops the old drawing (and one kept under an older key is never served).
    await store.savePictureSource(uid, source!.data, source!.hasHeat, 'a-newer-result');
    expect(await store.getImage(uid, 'saliency')).toBeUndefined();
    await store.saveImage(uid, 'saliency', Buffer.from([1, 2, 3]), source?.resultKey);
    const again = Buffer.from(await (await get(`/api/studies/${uid}/saliency.png`)).arrayBuffer());
    expect(again).toEqual(first);
    expect((await store.getImage(uid, 'saliency'))?.resultKey).toBe('a-newer-result');
  });

  it('answers 404 with a JSON error when the study has no image, or is unknown', async () => {
    const none = await get(`/api/studies/${NO_IMAGES}/saliency.png`);
    expect(none.status).toBe(404);
    expect(none.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await none.json()).toEqual({ error: { code: 'NOT_FOUND', message: `no saliency for study ${NO_IMAGES}` } });
    const unknown = await get(`/api/studies/${UNKNOWN}/thumbnail.png`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: { code: 'NOT_FOUND', message: `no study ${UNKNOWN} in the store` } });
  });
});

describe('API: reprocess', () => {
  // A store of its own: these tests change job states.
  let own: Store;
  let ownServer: Server;
  let ownBase = '';
  beforeAll(async () => {
    own = await seededStore();
    const app = createApp({ store: own, token: TOKEN, shadow: false, status: () => ({ provider: 'cpu', model: 'm@1' }) });
    ownServer = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    ownBase = `http://127.0.0.1:${(ownServer.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => ownServer.close(() => resolve())));
  const reprocess = (uid: string): Promise<Response> => fetch(`${ownBase}/api/studies/${uid}/reprocess`, { method: 'POST', headers: auth });

  it('queues a failed study again (202) with its attempts and error cleared, so a worker claims it', async () => {
    const res = await reprocess(FAILED);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ studyInstanceUID: FAILED, state: 'queued', message: 'queued' });
    expect(await own.get(FAILED)).toMatchObject({ state: 'queued', attempts: 0 });
    expect((await own.get(FAILED))?.errorCode).toBeUndefined();
    expect((await own.jobs({ state: 'queued' })).map((j) => j.studyInstanceUID).sort()).toEqual([FAILED, QUEUED].sort());
  });

  it('marks a running study to run again when its run ends', async () => {
    await own.claim(Number.MAX_SAFE_INTEGER);
    await own.claim(Number.MAX_SAFE_INTEGER);
    expect((await own.get(QUEUED))?.state).toBe('running');
    const res = await reprocess(QUEUED);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ studyInstanceUID: QUEUED, state: 'running', message: 'running now; it runs again when this run ends' });
    await own.finish(QUEUED, 'skipped', 'test');
    expect((await own.get(QUEUED))?.state).toBe('queued');
  });

  it('queues a done study again; its old priority leaves the ranked part of the worklist until it is done again', async () => {
    expect((await reprocess(STAT)).status).toBe(202);
    const items = (await (await fetch(`${ownBase}/api/worklist?priority=stat`, { headers: auth })).json()) as { items: unknown[] };
    expect(items.items).toEqual([]);
  });

  it('answers 404 for an unknown study', async () => {
    const res = await reprocess(UNKNOWN);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: `no study ${UNKNOWN} in the store` } });
  });
});

describe('API: feedback', () => {
  const uid = '1.2.826.0.1.3680043.10.999.5';

  it('stores a verdict on a finding with the result it was about (201), and lists it', async () => {
    const res = await post(`/api/studies/${uid}/feedback`, { findingCode: 'pleural_effusion', verdict: 'accept', note: 'agree', by: 'AB' });
    expect(res.status).toBe(201);
    const stored = (await res.json()) as Record<string, unknown>;
    expect(stored).toEqual({
      id: expect.any(String),
      studyInstanceUID: uid,
      findingCode: 'pleural_effusion',
      verdict: 'accept',
      note: 'agree',
      by: 'AB',
      resultKey: `key-${uid}`,
      createdAt: expect.any(Number),
    });
    await post(`/api/studies/${uid}/feedback`, { findingCode: 'pneumothorax', verdict: 'reject' });
    const list = (await (await get(`/api/studies/${uid}/feedback`)).json()) as { items: { findingCode: string; verdict: string; by: string }[] };
    expect(list.items.map((f) => [f.findingCode, f.verdict, f.by])).toEqual([['pleural_effusion', 'accept', 'AB'], ['pneumothorax', 'reject', 'anonymous']]);
    const study = (await (await get(`/api/studies/${uid}`)).json()) as { feedback: unknown[]; verification: unknown };
    expect(study.feedback).toHaveLength(2);
    // The accept recorded its verification with it: durable work for the next pass, not written by the request.
    expect(study.verification).toEqual({ state: 'pending', reader: 'AB', verifiedAt: stored['createdAt'], attempts: 0 });
    expect((await store.verifications()).map((v) => [v.resultKey, v.state])).toEqual([[`key-${uid}`, 'pending']]);
    expect(await store.listFeedback()).toHaveLength(2);
  });

  it('refuses a bad body with a 400 that lists every problem, and stores nothing', async () => {
    const before = (await store.listFeedback()).length;
    const res = await post(`/api/studies/${uid}/feedback`, { verdict: 'maybe', note: 'x'.repeat(1001), extra: 1 });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: {
        code: 'USAGE',
        message:
          'invalid feedback: findingCode: is required (the code of a finding of this study, e.g. pneumothorax); verdict: must be "accept" or "reject"; note: must be at most 1000 characters; extra: is not a known field',
        problems: [
          { path: 'findingCode', message: 'is required (the code of a finding of this study, e.g. pneumothorax)' },
          { path: 'verdict', message: 'must be "accept" or "reject"' },
          { path: 'note', message: 'must be at most 1000 characters' },
          { path: 'extra', message: 'is not a known field' },
        ],
      },
    });
    const unknownFinding = await post(`/api/studies/${uid}/feedback`, { findingCode: 'fracture', verdict: 'reject', note: 42 });
    expect(unknownFinding.status).toBe(400);
    expect(((await unknownFinding.json()) as { error: { problems: unknown } }).error.problems).toEqual([
      { path: 'note', message: 'must be a string' },
      { path: 'findingCode', message: '"fracture" is not a finding of this study (one of pneumothorax, pleural_effusion, consolidation, lung_nodule)' },
    ]);
    expect(await store.listFeedback()).toHaveLength(before);
  });

  it('refuses a body that is not JSON, not an object, or too large', async () => {
    const malformed = await post(`/api/studies/${uid}/feedback`, '{"verdict":');
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ error: { code: 'USAGE', message: 'the body is not valid JSON' } });
    const array = await post(`/api/studies/${uid}/feedback`, [1]);
    expect(array.status).toBe(400);
    expect(((await array.json()) as { error: { problems: unknown } }).error.problems).toEqual([{ path: '', message: 'the body must be a JSON object (Content-Type: application/json)' }]);
    const noType = await fetch(`${base}/api/studies/${uid}/feedback`, { method: 'POST', headers: auth, body: 'findingCode=x' });
    expect(noType.status).toBe(400);
    const huge = await post(`/api/studies/${uid}/feedback`, { findingCode: 'pneumothorax', verdict: 'accept', note: 'x'.repeat(20_000) });
    expect(huge.status).toBe(413);
    expect(await huge.json()).toEqual({ error: { code: 'USAGE', message: 'the body is larger than 16384 bytes' } });
  });

  it('answers 404 for an unknown study or one without a result', async () => {
    const unknown = await post(`/api/studies/${UNKNOWN}/feedback`, { findingCode: 'pneumothorax', verdict: 'accept' });
    expect(unknown.status).toBe(404);
    const noResult = await post(`/api/studies/${FAILED}/feedback`, { findingCode: 'pneumothorax', verdict: 'accept' });
    expect(noResult.status).toBe(404);
    expect(await noResult.json()).toEqual({ error: { code: 'NOT_FOUND', message: `study ${FAILED} has no result to give feedback on` } });
  });
});

describe('API: errors and documentation', () => {
  it('turns an unexpected failure into a 500 that tells nothing internal', async () => {
    const broken = createApp({
      store: { ...store, worklist: () => { throw new Error('SQLITE_CORRUPT: secret detail'); }, countWorklist: () => 0 } as unknown as Store,
      token: TOKEN,
      shadow: false,
      status: () => ({ provider: 'cpu', model: 'm@1' }),
    });
    const s = await new Promise<Server>((resolve) => {
      const x = broken.listen(0, '127.0.0.1', () => resolve(x));
    });
    try {
      const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/api/worklist`, { headers: auth });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });

  it('serves the OpenAPI document without a token, describing every /api route', async () => {
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as typeof openApiDocument;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/',
        '/app.js',
        '/view.js',
        '/filters.js',
        '/app.css',
        '/metrics',
        '/healthz',
        '/openapi.json',
        '/api/worklist',
        '/api/jobs',
        '/api/studies/{uid}',
        '/api/studies/{uid}/thumbnail.png',
        '/api/studies/{uid}/saliency.png',
        '/api/studies/{uid}/reprocess',
        '/api/studies/{uid}/retry',
        '/api/studies/{uid}/retract',
        '/api/studies/{uid}/feedback',
        '/readyz',
        '/webhooks/orthanc',
      ].sort(),
    );
  });

  it('every route the app registers is in the OpenAPI document (same method and path)', () => {
    const app = createApp({
      store,
      shadow: false,
      status: () => ({ provider: 'cpu', model: 'm' }),
      webhook: { secret: 'a-webhook-secret-of-16+' },
      metrics: { contentType: 'text/plain', text: async () => '' },
    });
    const router = (app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router;
    const registered = router.stack
      .flatMap((layer) => (layer.route ? Object.keys(layer.route.methods).map((m) => `${m} ${layer.route?.path.replace(/:uid/g, '{uid}')}`) : []))
      .sort();
    const documented = Object.entries(openApiDocument.paths)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`))
      .sort();
    expect(registered).toEqual(documented);
  });
});

describe('the worklist page', () => {
  it.each([
    ['/', 'text/html; charset=utf-8'],
    ['/app.js', 'text/javascript; charset=utf-8'],
    ['/view.js', 'text/javascript; charset=utf-8'],
    ['/filters.js', 'text/javascript; charset=utf-8'],
    ['/app.css', 'text/css; charset=utf-8'],
  ])('%s is served without a token, with a strict Content-Security-Policy', async (path, type) => {
    const res = await fetch(`${base}${path}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(type);
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('loads nothing from another origin, keeps the token out of URLs and localStorage, and writes no HTML from data', async () => {
    const html = await (await fetch(`${base}/`)).text();
    const js = (await Promise.all(['/app.js', '/view.js', '/filters.js'].map(async (f) => (await fetch(`${base}${f}`)).text()))).join('\n');
    const css = await (await fetch(`${base}/app.css`)).text();
    for (const text of [html, js, css]) expect(text).not.toMatch(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}\//i);
    expect(js).toContain('sessionStorage');
    expect(js).not.toContain('localStorage');
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect(js).not.toMatch(/[?&]token=/);
    expect(js).toContain("headers.set('authorization', `Bearer ${t}`)");
  });
});
