import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OrthancClient, PRIORITY_METADATA } from '../../../src/adapters/orthanc/client.ts';
import { SqliteJobStore } from '../../../src/state/sqlite-store.ts';
import { CHANGES_CURSOR, pollOrthancChanges } from '../../../src/pipeline/ingest/orthanc-changes.ts';
import { createLogger } from '../../../src/logging.ts';

const BASE = 'http://orthanc.test:8042';
const orthanc = new OrthancClient({ baseUrl: BASE, auth: { token: 'tok' }, timeoutMs: 500 });

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});

describe('Orthanc /changes ingest', () => {
  it('reads from the stored cursor, pages, enqueues StableStudy once per study, and stores the last seq', async () => {
    const store = new SqliteJobStore(':memory:');
    store.enqueue([], { name: CHANGES_CURSOR, value: '10' });
    nock(BASE, { reqheaders: { authorization: 'Bearer tok' } })
      .get('/changes')
      .query({ since: '10', limit: '2' })
      .reply(200, {
        Changes: [
          { Seq: 11, ChangeType: 'NewInstance', ResourceType: 'Instance', ID: 'i1' },
          { Seq: 12, ChangeType: 'StableStudy', ResourceType: 'Study', ID: 'sA' },
        ],
        Last: 12,
        Done: false,
      })
      .get('/changes')
      .query({ since: '12', limit: '2' })
      .reply(200, {
        Changes: [
          { Seq: 13, ChangeType: 'StableStudy', ResourceType: 'Study', ID: 'gone' },
          { Seq: 14, ChangeType: 'StableStudy', ResourceType: 'Study', ID: 'sA' },
        ],
        Last: 14,
        Done: true,
      })
      .get('/studies/sA')
      .twice()
      .reply(200, { MainDicomTags: { StudyInstanceUID: '1.2.3' } })
      .get('/studies/gone')
      .reply(404, {});
    const n = await pollOrthancChanges(orthanc, store, 2, createLogger('silent'));
    expect(n).toBe(2); // one per page: a StableStudy that repeats is enqueued again (new series may have arrived)
    expect(store.getCursor(CHANGES_CURSOR)).toBe('14');
    expect(store.jobs().map((j) => [j.studyInstanceUID, j.orthancId, j.state])).toEqual([['1.2.3', 'sA', 'queued']]);
  });

  it('writes the priority as user metadata with PUT', async () => {
    nock(BASE).put(`/studies/sA/metadata/${PRIORITY_METADATA}`, 'stat').reply(200, '');
    await orthanc.setStudyMetadata('sA', PRIORITY_METADATA, 'stat');
  });

  it('finds a study by its UID with /tools/lookup', async () => {
    nock(BASE).post('/tools/lookup', '1.2.3').reply(200, [{ ID: 'sA', Type: 'Study', Path: '/studies/sA' }]);
    expect(await orthanc.findStudy('1.2.3')).toBe('sA');
  });
});
