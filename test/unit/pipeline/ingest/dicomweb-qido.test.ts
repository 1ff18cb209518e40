import nock from 'nock';
import pino from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DicomWebClient } from '../../../../src/adapters/dicomweb/client.ts';
import { configSchema } from '../../../../src/config/schema.ts';
import { localDateTime, pollDicomWebQido, QIDO_CURSOR, QIDO_STUDY_FIELDS, windowQueries, type QidoOptions } from '../../../../src/pipeline/ingest/dicomweb-qido.ts';
import { openSqliteStore } from '../../../../src/state/sqlite/index.ts';

const BASE = 'http://pacs.test:8042';
const log = pino({ level: 'silent' });
const bearer = 'Bearer qido-token-123';
const client = new DicomWebClient({ baseUrl: `${BASE}/dicom-web`, auth: { token: 'qido-token-123' }, timeoutMs: 500 });
const INCLUDE = [...QIDO_STUDY_FIELDS, '00080050'].join(',');

const study = (uid: string, series: number, instances: number) => ({
  '0020000D': { vr: 'UI', Value: [uid] },
  '00201206': { vr: 'IS', Value: [series] },
  '00201208': { vr: 'IS', Value: [instances] },
});
const options = (over: Partial<QidoOptions> = {}): QidoOptions => ({ ...qido(), ...over });
const qido = (): QidoOptions => ({ ...configSchema.parse({}).ingest.qido, timeZone: 'Europe/Berlin', lookbackHours: 2, overlapMinutes: 15, pageSize: 2, match: { ModalitiesInStudy: 'CR' }, includefield: ['00080050'] });

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});

describe('QIDO-RS window in the PACS time zone', () => {
  it('turns an instant into local StudyDate/StudyTime', () => {
    expect(localDateTime(Date.parse('2025-03-10T00:30:00Z'), 'Europe/Berlin')).toEqual({ date: '20250310', time: '013000' });
    expect(localDateTime(Date.parse('2025-03-10T00:30:00Z'), 'America/New_York')).toEqual({ date: '20250309', time: '203000' });
    expect(localDateTime(Date.parse('2025-03-10T00:30:00Z'), 'UTC')).toEqual({ date: '20250310', time: '003000' });
  });

  it('one query for a window within a day; first day from its time, whole days between, last day up to its time', () => {
    expect(windowQueries(Date.parse('2025-03-10T08:00:00Z'), Date.parse('2025-03-10T09:05:00Z'), 'UTC')).toEqual([{ StudyDate: '20250310', StudyTime: '080000-090500' }]);
    expect(windowQueries(Date.parse('2025-03-08T22:00:00Z'), Date.parse('2025-03-11T01:00:00Z'), 'Asia/Tokyo')).toEqual([
      { StudyDate: '20250309', StudyTime: '070000-' },
      { StudyDate: '20250310' },
      { StudyDate: '20250311', StudyTime: '-100000' },
    ]);
  });

  it('the time zone is validated in the config', () => {
    expect(configSchema.safeParse({ ingest: { qido: { timeZone: 'Mars/Olympus' } } }).success).toBe(false);
    expect(configSchema.parse({ ingest: { qido: { timeZone: 'Europe/Berlin' } } }).ingest.qido).toMatchObject({ timeZone: 'Europe/Berlin', overlapMinutes: 60, pageSize: 100 });
  });
});

describe('pollDicomWebQido: exact QIDO-RS requests, paging, seen-set, overlap', () => {
  it('first poll: lookback window over two local days, every page by limit/offset, then the overlap on the next poll', async () => {
    const store = openSqliteStore(':memory:');
    let now = Date.parse('2025-03-10T00:30:00Z'); // 01:30 in Berlin; lookback 2 h → 23:30 the day before
    const pacs = nock(BASE, { reqheaders: { authorization: bearer, accept: 'application/dicom+json' } });
    const q = (extra: Record<string, string>, offset: number) => ({ ModalitiesInStudy: 'CR', ...extra, includefield: INCLUDE, limit: '2', offset: String(offset) });
    pacs.get('/dicom-web/studies').query(q({ StudyDate: '20250309', StudyTime: '233000-' }, 0)).reply(200, [study('1.1', 1, 1), study('1.2', 1, 2)]);
    pacs.get('/dicom-web/studies').query(q({ StudyDate: '20250309', StudyTime: '233000-' }, 2)).reply(200, [study('1.3', 2, 2)]);
    pacs.get('/dicom-web/studies').query(q({ StudyDate: '20250310', StudyTime: '-013000' }, 0)).reply(204);
    expect(await pollDicomWebQido(client, store, options(), log, () => now)).toBe(3);
    expect((await store.jobs()).map((j) => [j.studyInstanceUID, j.source, j.state]).sort()).toEqual([
      ['1.1', 'dicomweb-qido', 'queued'],
      ['1.2', 'dicomweb-qido', 'queued'],
      ['1.3', 'dicomweb-qido', 'queued'],
    ]);
    expect(await store.getCursor(QIDO_CURSOR)).toBe(String(now));

    // Next poll, 10 minutes later: from the last end less 15 minutes' overlap. 1.1 is seen and
    // unchanged (not enqueued again); 1.2 gained an instance (enqueued again); 1.4 is new.
    for (const uid of ['1.1', '1.2']) {
      await store.claim(Number.MAX_SAFE_INTEGER, undefined, uid);
      await store.finish(uid, 'done', undefined);
    }
    now += 10 * 60_000;
    pacs.get('/dicom-web/studies').query(q({ StudyDate: '20250310', StudyTime: '011500-014000' }, 0)).reply(200, [study('1.1', 1, 1), study('1.2', 1, 3)]);
    pacs.get('/dicom-web/studies').query(q({ StudyDate: '20250310', StudyTime: '011500-014000' }, 2)).reply(200, [study('1.4', 1, 1)]);
    expect(await pollDicomWebQido(client, store, options(), log, () => now)).toBe(2);
    expect((await store.get('1.1'))?.state).toBe('done');
    expect((await store.get('1.2'))?.state).toBe('queued');
    expect((await store.get('1.4'))?.state).toBe('queued');
    expect(await store.getCursor(QIDO_CURSOR)).toBe(String(now));
    await store.close();
  });

  it('a failing page throws and leaves the cursor where it was (the window is polled again)', async () => {
    const store = openSqliteStore(':memory:');
    const now = Date.parse('2025-06-01T12:00:00Z');
    nock(BASE).get('/dicom-web/studies').query(true).reply(200, [study('2.1', 1, 1), study('2.2', 1, 1)]);
    nock(BASE).get('/dicom-web/studies').query(true).reply(503, 'busy');
    await expect(pollDicomWebQido(client, store, options({ timeZone: 'UTC', lookbackHours: 1, match: {} }), log, () => now)).rejects.toThrow(/503/);
    expect(await store.getCursor(QIDO_CURSOR)).toBeUndefined();
    // What the first page found is in the seen-set: the retry does not enqueue it twice.
    expect(await store.jobs()).toHaveLength(2);
    await store.close();
  });

  it('the seen-set forgets entries older than seenRetentionDays', async () => {
    let t = 1_000_000;
    const store = openSqliteStore(':memory:', { clock: () => t });
    expect(await store.enqueueUnseen('s', [{ ref: { studyInstanceUID: '3.1', source: 'dicomweb-qido' }, fingerprint: '1/1' }])).toHaveLength(1);
    expect(await store.enqueueUnseen('s', [{ ref: { studyInstanceUID: '3.1', source: 'dicomweb-qido' }, fingerprint: '1/1' }])).toHaveLength(0);
    t += 10;
    expect(await store.pruneSeen('s', t)).toBe(1);
    expect(await store.enqueueUnseen('s', [{ ref: { studyInstanceUID: '3.1', source: 'dicomweb-qido' }, fingerprint: '1/1' }])).toHaveLength(1);
    await store.close();
  });
});
