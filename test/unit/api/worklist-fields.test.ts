/**
 * The worklist's study fields through the API: on each entry and study, filtered and sorted from
 * the query string, the viewer link from api.viewerUrlTemplate, and the patient's name and ID
 * only with api.showPatientIdentity (left out otherwise, even where the store holds them).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type AppOptions } from '../../../src/api/app.ts';
import type { Store } from '../../../src/state/ports.ts';
import { IDENTITY, TOKEN, seededStore } from '../../harness/api-seed.ts';

const U = (n: number): string => `1.2.826.0.1.3680043.10.999.${n}`;
const OHIF = 'https://viewer.example.org/viewer?StudyInstanceUIDs={StudyInstanceUID}';
const auth = { authorization: `Bearer ${TOKEN}` };

let store: Store;
const servers: Server[] = [];

async function serve(options: Partial<AppOptions>): Promise<string> {
  const app = createApp({ store, token: TOKEN, shadow: false, status: () => ({ provider: 'cpu', model: 'm@1' }), ...options });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

type Entry = Record<string, unknown> & { studyInstanceUID: string };
async function items(base: string, query = ''): Promise<Entry[]> {
  const res = await fetch(`${base}/api/worklist${query}`, { headers: auth });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Entry[] }).items;
}

beforeAll(async () => {
  store = await seededStore();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

describe('API: the worklist study fields', () => {
  it('each entry carries accession, description, date and time, age and sex; no name or ID while showPatientIdentity is off', async () => {
    const base = await serve({});
    const first = (await items(base)).find((e) => e.studyInstanceUID === U(1));
    expect(first).toMatchObject({ accessionNumber: 'ACC1001', studyDescription: 'XR Chest PA', studyDate: '20260302', studyTime: '081500', patientAge: '067Y', patientSex: 'F' });
    expect(first).not.toHaveProperty('patientName');
    expect(first).not.toHaveProperty('patientId');
    expect(first).not.toHaveProperty('viewerUrl');
    const text = JSON.stringify(await (await fetch(`${base}/api/studies/${U(1)}`, { headers: auth })).json());
    expect(text).not.toContain(IDENTITY.patientName);
    expect(text).not.toContain(IDENTITY.patientId);
  });

  it('with showPatientIdentity and a viewer template: the name, the ID and an "open" link per study', async () => {
    const base = await serve({ showPatientIdentity: true, viewerUrlTemplate: OHIF });
    const first = (await items(base)).find((e) => e.studyInstanceUID === U(1));
    expect(first).toMatchObject({ ...IDENTITY, viewerUrl: `https://viewer.example.org/viewer?StudyInstanceUIDs=${U(1)}` });
    // A queued study has no fields yet, but its link.
    expect((await items(base)).find((e) => e.studyInstanceUID === U(7))).toMatchObject({ state: 'queued', viewerUrl: expect.stringContaining(U(7)) });
    const study = (await (await fetch(`${base}/api/studies/${U(1)}`, { headers: auth })).json()) as { viewerUrl: string; result: { study: object } };
    expect(study.viewerUrl).toBe(`https://viewer.example.org/viewer?StudyInstanceUIDs=${U(1)}`);
    expect(study.result.study).toMatchObject({ accessionNumber: 'ACC1001', ...IDENTITY });
  });

  it('filters on the fields from the query string, and sorts on them (a leading - reverses)', async () => {
    const base = await serve({});
    const uids = async (q: string): Promise<string[]> => (await items(base, q)).map((e) => e.studyInstanceUID);
    expect(await uids('?accession=ACC1004')).toEqual([U(4)]);
    expect(await uids('?description=chest')).toEqual([U(1), U(4)]);
    expect(await uids('?studyDateFrom=2026-03-03&studyDateTo=2026-03-03')).toEqual([U(2), U(5)]);
    expect(await uids('?sex=f')).toEqual([U(1), U(4)]);
    expect(await uids('?ageFrom=50&ageTo=70')).toEqual([U(5), U(1)]);
    expect(await uids('?sort=-studyDate&status=done')).toEqual([U(2), U(5), U(1), U(4), U(6)]);
    expect(await uids('?sort=accession&limit=2')).toEqual([U(1), U(2)]);
    expect(await uids('?sort=age&sex=M,F')).toEqual([U(4), U(5), U(1), U(2)]);
    const res = await fetch(`${base}/api/worklist?studyDateFrom=2026-02-30&sex=X&ageTo=-1&sort=patientName`, { headers: auth });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { problems: { path: string }[] } }).error.problems.map((p) => p.path)).toEqual(['studyDateFrom', 'sex.0', 'ageTo', 'sort']);
  });
});
