import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OrthancClient, orthancInstanceId, orthancStudyId, PRIORITY_METADATA } from '../../../../src/adapters/orthanc/client.ts';
import { RecentIds } from '../../../../src/pipeline/ingest/own-writes.ts';
import { openSqliteStore } from '../../../../src/state/sqlite/index.ts';
import { CHANGES_CURSOR, CHANGES_SEEN_UNTIL, pollOrthancChanges } from '../../../../src/pipeline/ingest/orthanc-changes.ts';
import { createLogger } from '../../../../src/observability/logging.ts';

const BASE = 'http://orthanc.test:8042';
const orthanc = new OrthancClient({ baseUrl: BASE, auth: { token: 'tok' }, timeoutMs: 500 });

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});

describe('Orthanc /changes ingest', () => {
  it('reads from the stored cursor, pages, enqueues StableStudy once per study, and stores the last seq', async () => {
    const store = openSqliteStore(':memory:');
    await store.enqueue([], { name: CHANGES_CURSOR, value: '10' });
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
    const n = await pollOrthancChanges(orthanc, store, { batch: 2 }, createLogger('silent'));
    expect(n).toBe(2); // one per page: a StableStudy that repeats is enqueued again (new series may have arrived)
    expect(await store.getCursor(CHANGES_CURSOR)).toBe('14');
    expect((await store.jobs()).map((j) => [j.studyInstanceUID, j.orthancId, j.state])).toEqual([['1.2.3', 'sA', 'queued']]);
  });

  it('with stableAgeMs: enqueues the study of each NewInstance to settle, looks each study up once, ignores our own series and StableStudy', async () => {
    let now = 5_000;
    const store = openSqliteStore(':memory:', { clock:  () => now });
    nock(BASE, { reqheaders: { authorization: 'Bearer tok' } })
      .get('/changes')
      .query({ since: '0', limit: '10' })
      .reply(200, {
        Changes: [
          { Seq: 1, ChangeType: 'NewInstance', ResourceType: 'Instance', ID: 'i1' },
          { Seq: 2, ChangeType: 'NewInstance', ResourceType: 'Instance', ID: 'i2' },
          { Seq: 3, ChangeType: 'NewInstance', ResourceType: 'Instance', ID: 'ours' },
          { Seq: 4, ChangeType: 'NewInstance', ResourceType: 'Instance', ID: 'deleted' },
          { Seq: 5, ChangeType: 'StableStudy', ResourceType: 'Study', ID: 'sA' },
        ],
        Last: 5,
        Done: true,
      })
      .get('/instances/i1/series')
      .reply(200, { ID: 'se1', ParentStudy: 'sA', MainDicomTags: { SeriesInstanceUID: '1.2.3.1', Modality: 'CR' } })
      .get('/instances/i2/series')
      .reply(200, { ID: 'se1', ParentStudy: 'sA', MainDicomTags: { SeriesInstanceUID: '1.2.3.1', Modality: 'CR' } })
      .get('/instances/ours/series')
      .reply(200, { ID: 'se2', ParentStudy: 'sA', MainDicomTags: { SeriesInstanceUID: '1.2.3.99', Modality: 'SR' } })
      .get('/instances/deleted/series')
      .reply(404, {})
      .get('/studies/sA')
      .once()
      .reply(200, { MainDicomTags: { StudyInstanceUID: '1.2.3' } });
    const own = (study: string, series: string): boolean => study === '1.2.3' && series === '1.2.3.99';
    const n = await pollOrthancChanges(orthanc, store, { batch: 10, stableAgeMs: 1_000, isOwnSeries: own, now: () => now }, createLogger('silent'));
    expect(n).toBe(1);
    expect(await store.getCursor(CHANGES_CURSOR)).toBe('5');
    expect(await store.getCursor(CHANGES_SEEN_UNTIL)).toBe('5000');
    expect((await store.jobs()).map((j) => [j.studyInstanceUID, j.orthancId, j.state])).toEqual([['1.2.3', 'sA', 'queued']]);
    expect(await store.nextDueAt()).toBe(6_000);
    now = 6_000;
    // Due, but no pass has looked past 6 000 yet: an instance stored at 5 999 would not be seen.
    expect(await store.claim(now)).toBeUndefined();
    expect(await store.nextDueAt()).toBeUndefined(); // waiting for a pass, which wakes the workers
    nock(BASE).get('/changes').query({ since: '5', limit: '10' }).reply(200, { Changes: [], Last: 5, Done: true });
    await pollOrthancChanges(orthanc, store, { batch: 10, stableAgeMs: 1_000, isOwnSeries: own, now: () => now }, createLogger('silent'));
    expect(await store.claim(now)).toMatchObject({ studyInstanceUID: '1.2.3' });
  });

  it('an SR this process stored (its Orthanc id remembered) is skipped without a request', async () => {
    const store = openSqliteStore(':memory:');
    nock(BASE).get('/changes').query({ since: '0', limit: '10' }).reply(200, { Changes: [{ Seq: 8, ChangeType: 'NewInstance', ResourceType: 'Instance', ID: 'mine' }], Last: 8, Done: true });
    const recent = new RecentIds(2);
    recent.add('mine');
    const n = await pollOrthancChanges(orthanc, store, { batch: 10, stableAgeMs: 1_000, ownInstances: recent }, createLogger('silent'));
    expect(n).toBe(0);
    expect(await store.getCursor(CHANGES_CURSOR)).toBe('8');
  });

  it('RecentIds keeps the newest ids up to its capacity', () => {
    const recent = new RecentIds(2);
    recent.add('a');
    recent.add('b');
    recent.add('a'); // refreshed: b is now the oldest
    recent.add('c');
    expect(['a', 'b', 'c'].map((id) => recent.has(id))).toEqual([true, false, true]);
  });

  it('computes Orthanc ids the way Orthanc does (SHA-1 of the joined UIDs, dashed)', () => {
    // Checked against a real Orthanc in test/integration/ingest.test.ts; here the shape and the trimming.
    expect(orthancStudyId('', '1.2.3')).toMatch(/^([0-9a-f]{8}-){4}[0-9a-f]{8}$/);
    expect(orthancInstanceId(' P ', '1.2', '1.2.3', '1.2.3.4')).toBe(orthancInstanceId('P', '1.2', '1.2.3', '1.2.3.4'));
  });

  it('only our own instance arrived: nothing is enqueued, the cursor still moves', async () => {
    const store = openSqliteStore(':memory:');
    nock(BASE)
      .get('/changes')
      .query({ since: '0', limit: '10' })
      .reply(200, { Changes: [{ Seq: 7, ChangeType: 'NewInstance', ResourceType: 'Instance', ID: 'ours' }], Last: 7, Done: true })
      .get('/instances/ours/series')
      .reply(200, { ID: 'se2', ParentStudy: 'sA', MainDicomTags: { SeriesInstanceUID: '1.2.3.99' } })
      .get('/studies/sA')
      .reply(200, { MainDicomTags: { StudyInstanceUID: '1.2.3' } });
    const n = await pollOrthancChanges(orthanc, store, { batch: 10, stableAgeMs: 1_000, isOwnSeries: (_st, se) => se === '1.2.3.99' }, createLogger('silent'));
    expect(n).toBe(0);
    expect(await store.jobs()).toEqual([]);
    expect(await store.getCursor(CHANGES_CURSOR)).toBe('7');
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
