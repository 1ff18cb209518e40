/** The worklist's contract: ranking, filters and paging, study records, feedback and images. */
import { describe, expect, it } from 'vitest';
import type { Finding, Priority } from '../../../../src/domain/types.ts';
import type { StoredResult } from '../../../../src/domain/records.ts';
import type { Store } from '../../../../src/state/ports.ts';
import type { StoreEngine } from './engine.ts';

const ref = (uid: string) => ({ studyInstanceUID: uid, source: 'orthanc-changes' as const });

export function result(uid: string, priority: Priority, p: number, extra: Partial<StoredResult> = {}): StoredResult {
  const findings: Finding[] = [
    { code: 'pneumothorax', display: 'Pneumothorax', probability: p, threshold: 0.5, positive: p >= 0.5 },
    { code: 'lung_nodule', display: 'Lung nodule', probability: 0.1, threshold: 0.5, positive: false },
  ];
  return {
    resultKey: `key-${uid}`,
    studyInstanceUID: uid,
    sourceSopInstanceUIDs: [`${uid}.1.1`],
    srSopInstanceUID: `2.25.${uid.replace(/\./g, '')}1`,
    srSeriesInstanceUID: `2.25.${uid.replace(/\./g, '')}2`,
    priority,
    findings,
    modelId: 'cxr-triage',
    modelVersion: '1.0.0',
    executionProvider: 'cpu',
    modality: 'CR',
    createdAt: 1,
    written: { pacs: false, fhir: false, metadata: false },
    notes: [],
    ...extra,
  };
}

export function worklistContract(engine: StoreEngine): void {
/** A store whose clock ticks 1 ms per call, with one job per [uid, priority?, p?, modality?]. */
async function seeded(rows: readonly [string, Priority | 'failed' | 'queued', number?, string?][]): Promise<{ store: Store; now: () => number }> {
  let t = 1_000;
  const now = (): number => ++t;
  const store = await engine.open(now);
  for (const [uid, what, p, modality] of rows) {
    await store.enqueue([ref(uid)]);
    if (what === 'queued') continue;
    await store.claim(Number.MAX_SAFE_INTEGER);
    if (what === 'failed') {
      await store.fail(uid, 'DICOM_UNREADABLE', 'not DICOM', undefined);
      continue;
    }
    await store.saveResult(result(uid, what, p ?? 0.5, modality ? { modality } : {}));
    await store.finish(uid, 'done', undefined);
  }
  return { store, now };
}

describe(`${engine.name}: worklist`, () => {
  it('ranks by priority, then the highest probability, then waiting time (oldest first); results-less jobs last', async () => {
    const { store } = await seeded([
      ['1.1', 'routine', 0.2],
      ['1.2', 'urgent', 0.6],
      ['1.3', 'failed'],
      ['1.4', 'stat', 0.7],
      ['1.5', 'urgent', 0.9],
      ['1.6', 'urgent', 0.6],
      ['1.7', 'queued'],
    ]);
    expect((await store.worklist()).map((e) => [e.studyInstanceUID, e.priority ?? e.state])).toEqual([
      ['1.4', 'stat'],
      ['1.5', 'urgent'],
      ['1.2', 'urgent'],
      ['1.6', 'urgent'],
      ['1.1', 'routine'],
      ['1.3', 'failed'],
      ['1.7', 'queued'],
    ]);
    const failed = await store.worklist({ state: ['failed'] });
    expect(failed).toEqual([
      { studyInstanceUID: '1.3', state: 'failed', reason: 'not DICOM', errorCode: 'DICOM_UNREADABLE', images: [], receivedAt: expect.any(Number), updatedAt: expect.any(Number) },
    ]);
  });

  it('filters by priority, state, modality and received time, and pages with a matching count', async () => {
    const { store } = await seeded([
      ['1.1', 'stat', 0.9, 'DX'],
      ['1.2', 'urgent', 0.6, 'cr'],
      ['1.3', 'routine', 0.1, 'CR'],
      ['1.4', 'failed'],
      ['1.5', 'stat', 0.8, 'CR'],
    ]);
    const uids = async (q: Parameters<Store['worklist']>[0]): Promise<string[]> => (await store.worklist(q)).map((e) => e.studyInstanceUID);
    expect(await uids({ priority: ['stat', 'urgent'] })).toEqual(['1.1', '1.5', '1.2']);
    expect(await uids({ state: ['failed', 'done'], priority: ['routine'] })).toEqual(['1.3']);
    expect(await uids({ modality: ['cr'] })).toEqual(['1.5', '1.2', '1.3']);
    expect((await store.worklist({ modality: ['CR'] }))[1]?.modality).toBe('CR');
    const third = (await store.worklist()).find((e) => e.studyInstanceUID === '1.3')?.receivedAt as number;
    expect(await uids({ since: third })).toEqual(['1.5', '1.3', '1.4']);
    expect(await uids({ until: third })).toEqual(['1.1', '1.2']);
    expect(await uids({ limit: 2 })).toEqual(['1.1', '1.5']);
    expect(await uids({ limit: 2, offset: 2 })).toEqual(['1.2', '1.3']);
    expect(await uids({ limit: 2, offset: 4 })).toEqual(['1.4']);
    expect(await store.countWorklist()).toBe(5);
    expect(await store.countWorklist({ priority: ['stat'] })).toBe(2);
    expect(await store.countWorklist({ modality: ['CR'], state: ['done'] })).toBe(3);
    expect(await store.countWorklist({ modality: ['DX', 'MR'] })).toBe(1);
  });

  it("the study's fields: on each entry, filtered and sorted on (entries without the field last, either way), the same on every engine", async () => {
    const { store } = await seeded([['1.1', 'queued'], ['1.2', 'queued'], ['1.3', 'queued'], ['1.4', 'queued']]);
    const fields: Record<string, StoredResult['study']> = {
      '1.1': { accessionNumber: 'A100', studyDescription: 'XR Chest PA', studyDate: '20260110', studyTime: '083000', patientAge: '045Y', patientSex: 'F' },
      '1.2': { accessionNumber: 'A200', studyDescription: 'Thorax 100%_ap', studyDate: '20260110', studyTime: '120000', patientAge: '006M', patientSex: 'M' },
      '1.3': { accessionNumber: 'a300', studyDescription: 'CHEST portable', studyDate: '20251231', patientAge: '080Y', patientSex: 'O' },
    };
    for (const [uid, priority, p] of [['1.1', 'urgent', 0.6], ['1.2', 'stat', 0.9], ['1.3', 'routine', 0.1], ['1.4', 'routine', 0.2]] as const) {
      await store.claim(Number.MAX_SAFE_INTEGER);
      await store.saveResult(result(uid, priority, p, fields[uid] ? { study: fields[uid] } : {}));
      await store.finish(uid, 'done', undefined);
    }
    expect((await store.worklist()).find((e) => e.studyInstanceUID === '1.1')).toMatchObject({ ...fields['1.1'], priority: 'urgent' });
    const uids = async (q: Parameters<Store['worklist']>[0]): Promise<string[]> => (await store.worklist(q)).map((e) => e.studyInstanceUID);
    expect(await uids({ accession: 'A200' })).toEqual(['1.2']);
    expect(await uids({ accession: 'A300' })).toEqual([]);
    expect(await uids({ description: 'chest' })).toEqual(['1.1', '1.3']);
    // LIKE's wildcards in a description are matched as themselves.
    expect(await uids({ description: '100%_' })).toEqual(['1.2']);
    expect(await uids({ description: '%' })).toEqual(['1.2']);
    expect(await uids({ studyDateFrom: '20260101' })).toEqual(['1.2', '1.1']);
    expect(await uids({ studyDateTo: '20251231' })).toEqual(['1.3']);
    expect(await uids({ sex: ['f', 'O'] })).toEqual(['1.1', '1.3']);
    expect(await uids({ ageFrom: 1 })).toEqual(['1.1', '1.3']);
    expect(await uids({ ageFrom: 45, ageTo: 45 })).toEqual(['1.1']);
    expect(await uids({ ageTo: 0 })).toEqual(['1.2']);
    expect(await store.countWorklist({ description: 'chest', sex: ['F'] })).toBe(1);
    expect(await uids({ sort: { key: 'studyDate', descending: false } })).toEqual(['1.3', '1.1', '1.2', '1.4']);
    expect(await uids({ sort: { key: 'studyDate', descending: true } })).toEqual(['1.2', '1.1', '1.3', '1.4']);
    expect(await uids({ sort: { key: 'accession', descending: false } })).toEqual(['1.1', '1.2', '1.3', '1.4']);
    expect(await uids({ sort: { key: 'description', descending: false } })).toEqual(['1.3', '1.2', '1.1', '1.4']);
    expect(await uids({ sort: { key: 'age', descending: true } })).toEqual(['1.3', '1.1', '1.2', '1.4']);
    expect(await uids({ sort: { key: 'received', descending: true } })).toEqual(['1.4', '1.3', '1.2', '1.1']);
    expect(await uids({ sort: { key: 'priority', descending: false } })).toEqual(['1.2', '1.1', '1.4', '1.3']);
    expect(await uids({ sort: { key: 'priority', descending: true } })).toEqual(['1.3', '1.4', '1.1', '1.2']);
    expect(await uids({ sort: { key: 'studyDate', descending: false }, limit: 2, offset: 1 })).toEqual(['1.1', '1.2']);
  });

  it('shows a requeued study without its old priority, and its latest result again once done', async () => {
    const { store } = await seeded([['1.1', 'stat', 0.9], ['1.2', 'urgent', 0.6]]);
    await store.requeue('1.1');
    expect((await store.worklist()).map((e) => [e.studyInstanceUID, e.priority ?? e.state])).toEqual([['1.2', 'urgent'], ['1.1', 'queued']]);
    await store.claim(Number.MAX_SAFE_INTEGER);
    await store.saveResult(result('1.1', 'routine', 0.2, { resultKey: 'key-1.1-b', createdAt: 2 }));
    await store.finish('1.1', 'done', undefined);
    expect((await store.worklist()).map((e) => [e.studyInstanceUID, e.priority])).toEqual([['1.2', 'urgent'], ['1.1', 'routine']]);
    expect(await store.worklist({ priority: ['stat'] })).toEqual([]);
  });
});

describe(`${engine.name}: study, requeue, feedback, images`, () => {
  it('returns a study with its job and latest result, and undefined for an unknown one', async () => {
    const { store } = await seeded([['1.1', 'stat', 0.9], ['1.2', 'queued']]);
    expect(await store.study('1.1')).toMatchObject({ job: { studyInstanceUID: '1.1', state: 'done' }, result: { resultKey: 'key-1.1', priority: 'stat' } });
    expect(await store.study('1.2')).toEqual({ job: expect.objectContaining({ state: 'queued' }) });
    expect(await store.study('9.9')).toBeUndefined();
  });

  it('requeues a failed study with its attempts and reason cleared; a running one runs again when it finishes', async () => {
    const { store } = await seeded([['1.1', 'failed'], ['1.2', 'stat', 0.9]]);
    expect(await store.requeue('1.1')).toMatchObject({ state: 'queued', attempts: 0 });
    expect((await store.get('1.1'))?.reason).toBeUndefined();
    expect((await store.get('1.1'))?.errorCode).toBeUndefined();
    expect((await store.claim(Number.MAX_SAFE_INTEGER))?.studyInstanceUID).toBe('1.1');
    expect(await store.requeue('1.1')).toMatchObject({ state: 'running', attempts: 1 });
    await store.finish('1.1', 'done', undefined);
    expect((await store.get('1.1'))?.state).toBe('queued');
    expect(await store.requeue('9.9')).toBeUndefined();
  });

  it('stores feedback per study, oldest first, with the result it was about', async () => {
    const { store } = await seeded([['1.1', 'stat', 0.9], ['1.2', 'urgent', 0.6]]);
    const a = await store.addFeedback({ studyInstanceUID: '1.1', findingCode: 'pneumothorax', verdict: 'accept', by: 'AB', resultKey: 'key-1.1' });
    await store.addFeedback({ studyInstanceUID: '1.2', findingCode: 'pneumothorax', verdict: 'reject', note: 'skin fold', by: 'CD' });
    await store.addFeedback({ studyInstanceUID: '1.1', findingCode: 'lung_nodule', verdict: 'reject', by: 'AB' });
    expect(a).toEqual({ id: expect.any(String), studyInstanceUID: '1.1', findingCode: 'pneumothorax', verdict: 'accept', by: 'AB', resultKey: 'key-1.1', createdAt: expect.any(Number) });
    expect((await store.listFeedback('1.1')).map((f) => [f.findingCode, f.verdict])).toEqual([['pneumothorax', 'accept'], ['lung_nodule', 'reject']]);
    expect(await store.listFeedback('1.2')).toEqual([
      { id: expect.any(String), studyInstanceUID: '1.2', findingCode: 'pneumothorax', verdict: 'reject', note: 'skin fold', by: 'CD', createdAt: expect.any(Number) },
    ]);
    expect(await store.listFeedback()).toHaveLength(3);
  });

  it('saves one image per study and kind (the last replaces), and lists the kinds on the worklist', async () => {
    const { store } = await seeded([['1.1', 'stat', 0.9], ['1.2', 'urgent', 0.6]]);
    await store.saveImage('1.1', 'thumbnail', new Uint8Array([1, 2, 3]));
    await store.saveImage('1.1', 'thumbnail', new Uint8Array([4, 5]), 'key-1.1');
    await store.saveImage('1.1', 'saliency', Buffer.from([9]));
    expect(await store.getImage('1.1', 'thumbnail')).toEqual({ studyInstanceUID: '1.1', kind: 'thumbnail', png: Buffer.from([4, 5]), resultKey: 'key-1.1', createdAt: expect.any(Number) });
    expect((await store.getImage('1.1', 'saliency'))?.png).toEqual(Buffer.from([9]));
    expect(await store.getImage('1.2', 'thumbnail')).toBeUndefined();
    expect((await store.worklist()).map((e) => [e.studyInstanceUID, e.images])).toEqual([['1.1', ['thumbnail', 'saliency']], ['1.2', []]]);
  });

  it('keeps a picture source per study: a new one drops the pictures drawn from the old; the worklist lists what it can draw', async () => {
    const { store } = await seeded([['1.1', 'stat', 0.9], ['1.2', 'urgent', 0.6], ['1.3', 'routine', 0.1]]);
    await store.saveImage('1.1', 'thumbnail', Buffer.from([1]), 'key-old');
    await store.saveImage('1.1', 'saliency', Buffer.from([2]), 'key-old');
    await store.savePictureSource('1.1', Buffer.from([7, 7]), true, 'key-1.1');
    expect(await store.getImage('1.1', 'thumbnail')).toBeUndefined();
    expect(await store.getImage('1.1', 'saliency')).toBeUndefined();
    expect(await store.getPictureSource('1.1')).toEqual({ studyInstanceUID: '1.1', data: Buffer.from([7, 7]), hasHeat: true, resultKey: 'key-1.1', createdAt: expect.any(Number) });
    await store.savePictureSource('1.2', new Uint8Array([5]), false, 'key-1.2');
    await store.saveImage('1.2', 'thumbnail', Buffer.from([3]), 'key-1.2');
    // Drawing one does not touch the source.
    expect((await store.getPictureSource('1.2'))?.data).toEqual(Buffer.from([5]));
    expect(await store.getPictureSource('1.3')).toBeUndefined();
    expect((await store.worklist()).map((e) => [e.studyInstanceUID, e.images])).toEqual([
      ['1.1', ['thumbnail', 'saliency']],
      ['1.2', ['thumbnail']],
      ['1.3', []],
    ]);
  });

  it('retention deletes pictures and picture sources older than the cut, and nothing newer', async () => {
    const { store, now } = await seeded([['1.1', 'stat', 0.9], ['1.2', 'urgent', 0.6]]);
    await store.saveImage('1.1', 'thumbnail', Buffer.from([1]), 'key-1.1');
    await store.savePictureSource('1.2', Buffer.from([2]), true, 'key-1.2');
    const cut = now();
    await store.savePictureSource('1.1', Buffer.from([3]), true, 'key-1.1'); // also drops 1.1's drawing
    await store.saveImage('1.1', 'saliency', Buffer.from([4]), 'key-1.1');
    expect(await store.purgeImages(cut)).toBe(1);
    expect(await store.getPictureSource('1.2')).toBeUndefined();
    expect((await store.getPictureSource('1.1'))?.data).toEqual(Buffer.from([3]));
    expect((await store.getImage('1.1', 'saliency'))?.png).toEqual(Buffer.from([4]));
    expect(await store.purgeImages(now())).toBe(2);
    expect((await store.worklist()).map((e) => e.images)).toEqual([[], []]);
  });
});
}
