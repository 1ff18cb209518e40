/**
 * The store's side of corrections: retractions as durable work (migration 5), the worklist
 * showing a retracted study as retracted, the deleted-study sweep's pages, and the retention
 * purge of stored free text — exact rows purged and kept.
 */
import { describe, expect, it } from 'vitest';
import type { Finding, Priority } from '../../../../src/domain/types.ts';
import type { StoredResult } from '../../../../src/domain/records.ts';
import type { Store } from '../../../../src/state/ports.ts';
import type { StoreEngine } from './engine.ts';

const lease = { owner: 'w1', leaseMs: 1_000 };

function result(uid: string, key: string, priority: Priority, p: number, createdAt = 1): StoredResult {
  const findings: Finding[] = [{ code: 'pneumothorax', display: 'Pneumothorax', probability: p, threshold: 0.5, positive: p >= 0.5 }];
  return {
    resultKey: key,
    studyInstanceUID: uid,
    sourceSopInstanceUIDs: [`${uid}.1.1`],
    srSopInstanceUID: `${uid}.9.${key.length}`,
    srSeriesInstanceUID: `${uid}.9`,
    priority,
    findings,
    modelId: 'm',
    modelVersion: '1',
    executionProvider: 'cpu',
    createdAt,
    written: { pacs: true, fhir: true, metadata: true },
    notes: [],
  };
}

/** A store with a settable clock and done studies (uid → [priority, probability]). */
export function retractionContract(engine: StoreEngine): void {
async function seeded(done: Record<string, [Priority, number]>): Promise<{ store: Store; clock: { t: number } }> {
  const clock = { t: 1_000 };
  const store = await engine.open(() => clock.t);
  for (const [uid, [priority, p]] of Object.entries(done)) {
    await store.enqueue([{ studyInstanceUID: uid, source: 'cli' }]);
    await store.claim(Number.MAX_SAFE_INTEGER, lease, uid);
    await store.saveResult(result(uid, `key-${uid}`, priority, p));
    await store.finish(uid, 'done', undefined);
  }
  return { store, clock };
}

describe(`${engine.name}: retractions, sweep pages, retention`, () => {
  it('a retraction covers the latest result and the earlier ones; asking again is a no-op; a failed one is queued again', async () => {
    const { store, clock } = await seeded({ '1.1': ['stat', 0.9] });
    await store.saveResult(result('1.1', 'key-1.1-b', 'urgent', 0.7, 2));
    expect(await store.requestRetraction({ studyInstanceUID: '9.9', cause: 'marked-wrong' })).toBeUndefined();
    clock.t = 2_000;
    const first = (await store.requestRetraction({ studyInstanceUID: '1.1', cause: 'marked-wrong', reason: 'wrong side', requestedBy: 'dr a' }))!;
    expect(first.created).toBe(true);
    expect(first.retraction).toEqual({
      studyInstanceUID: '1.1',
      resultKey: 'key-1.1-b',
      resultKeys: ['key-1.1', 'key-1.1-b'],
      cause: 'marked-wrong',
      reason: 'wrong side',
      requestedBy: 'dr a',
      state: 'pending',
      attempts: 0,
      nextAttemptAt: 2_000,
      written: { fhir: false, pacs: false, metadata: false },
      notes: [],
      requestedAt: 2_000,
      updatedAt: 2_000,
    });
    clock.t = 3_000;
    const again = (await store.requestRetraction({ studyInstanceUID: '1.1', cause: 'study-deleted' }))!;
    expect(again).toEqual({ retraction: first.retraction, created: false });

    const claimed = (await store.claimRetraction(3_000, lease))!;
    expect(claimed).toMatchObject({ state: 'running', attempts: 1, leaseOwner: 'w1', leaseUntil: 4_000 });
    expect(await store.claimRetraction(3_000, lease)).toBeUndefined(); // leased
    expect(await store.renewRetractionLease('1.1', 'w1', 5_000)).toBe(true);
    expect(await store.renewRetractionLease('1.1', 'w2', 5_000)).toBe(false);
    await store.saveRetractionProgress('1.1', { written: { fhir: false, pacs: true, metadata: true }, notes: ['n'] });
    await store.failRetraction('1.1', 'UPSTREAM_UNAVAILABLE', 'fhir down', 3_500);
    expect(await store.getRetraction('1.1')).toMatchObject({ state: 'pending', attempts: 1, nextAttemptAt: 3_500, errorCode: 'UPSTREAM_UNAVAILABLE', written: { pacs: true, metadata: true, fhir: false }, notes: ['n'] });
    expect(await store.claimRetraction(3_499, lease)).toBeUndefined(); // not due yet
    await store.claimRetraction(3_500, lease);
    await store.failRetraction('1.1', 'CONFLICT', 'job still writing', 3_600, false); // a deferral is not an attempt
    expect((await store.getRetraction('1.1'))?.attempts).toBe(1);
    await store.claimRetraction(3_600, lease);
    await store.failRetraction('1.1', 'UPSTREAM_REJECTED', '422', undefined);
    expect(await store.getRetraction('1.1')).toMatchObject({ state: 'failed', attempts: 2 });
    const requeued = (await store.requestRetraction({ studyInstanceUID: '1.1', cause: 'marked-wrong', reason: 'again' }))!;
    expect(requeued.created).toBe(true);
    expect(requeued.retraction).toMatchObject({ state: 'pending', attempts: 0, reason: 'again', written: { fhir: false, pacs: false, metadata: false }, notes: [] });
    await store.claimRetraction(4_000, lease);
    clock.t = 4_100;
    await store.finishRetraction('1.1');
    expect(await store.getRetraction('1.1')).toMatchObject({ state: 'done', doneAt: 4_100 });
    expect((await store.getRetraction('1.1'))?.leaseOwner).toBeUndefined();
    expect((await store.retractions({ state: 'done' })).map((r) => r.studyInstanceUID)).toEqual(['1.1']);
  });

  it('an expired lease is reclaimed (a worker died mid-retraction)', async () => {
    const { store } = await seeded({ '1.1': ['stat', 0.9] });
    await store.requestRetraction({ studyInstanceUID: '1.1', cause: 'marked-wrong' });
    await store.claimRetraction(2_000, lease);
    expect(await store.claimRetraction(2_999, { owner: 'w2', leaseMs: 1_000 })).toBeUndefined();
    expect(await store.claimRetraction(3_001, { owner: 'w2', leaseMs: 1_000 })).toMatchObject({ leaseOwner: 'w2', attempts: 2 });
  });

  it('the worklist shows a retracted study as retracted: no priority or findings, ranked last, out of priority filters', async () => {
    const { store } = await seeded({ '1.1': ['stat', 0.9], '1.2': ['urgent', 0.6], '1.3': ['routine', 0.1] });
    expect((await store.worklist()).map((e) => e.studyInstanceUID)).toEqual(['1.1', '1.2', '1.3']);
    await store.requestRetraction({ studyInstanceUID: '1.1', cause: 'marked-wrong', reason: 'x' });
    const items = await store.worklist();
    expect(items.map((e) => e.studyInstanceUID)).toEqual(['1.2', '1.3', '1.1']);
    expect(items[2]).toMatchObject({ studyInstanceUID: '1.1', state: 'done', retracted: { cause: 'marked-wrong', state: 'pending', requestedAt: 1_000 } });
    expect(items[2]!.priority).toBeUndefined();
    expect(items[2]!.findings).toBeUndefined();
    expect(items[0]!.retracted).toBeUndefined();
    expect(await store.worklist({ priority: ['stat'] })).toEqual([]);
    expect(await store.countWorklist({ priority: ['stat'] })).toBe(0);
    expect(await store.countWorklist({ state: ['done'] })).toBe(3);
    expect((await store.study('1.1'))?.retraction?.cause).toBe('marked-wrong');
  });

  it('a newer result (new inputs) is not hidden by the retraction of an older one', async () => {
    const { store } = await seeded({ '1.1': ['stat', 0.9] });
    await store.requestRetraction({ studyInstanceUID: '1.1', cause: 'marked-wrong' });
    await store.saveResult(result('1.1', 'key-new', 'asap', 0.8, 5));
    const [entry] = await store.worklist();
    expect(entry).toMatchObject({ studyInstanceUID: '1.1', priority: 'asap' });
    expect(entry!.retracted).toBeUndefined();
    expect(await store.sweepCandidates(0, '', 10)).toEqual(['1.1']);
  });

  it('sweep candidates: done, not retracted, updated in the window; in UID order after the cursor, at most limit', async () => {
    const { store, clock } = await seeded({ '1.1': ['stat', 0.9], '1.2': ['urgent', 0.6], '1.3': ['routine', 0.1], '1.4': ['routine', 0.1] });
    clock.t = 5_000;
    await store.enqueue([{ studyInstanceUID: '1.5', source: 'cli' }]); // queued, never done
    await store.requestRetraction({ studyInstanceUID: '1.3', cause: 'marked-wrong' });
    expect(await store.sweepCandidates(0, '', 2)).toEqual(['1.1', '1.2']);
    expect(await store.sweepCandidates(0, '1.2', 2)).toEqual(['1.4']);
    expect(await store.sweepCandidates(1_001, '', 10)).toEqual([]); // all updated at 1 000
  });

  it('retention: feedback notes and reasons of finished retractions older than the cut are cleared; the rows, newer text and pending reasons stay', async () => {
    const { store, clock } = await seeded({ '1.1': ['stat', 0.9], '1.2': ['urgent', 0.6], '1.3': ['routine', 0.1] });
    clock.t = 10_000;
    const oldNote = await store.addFeedback({ studyInstanceUID: '1.1', findingCode: 'pneumothorax', verdict: 'reject', note: 'old note', by: 'dr a' });
    await store.addFeedback({ studyInstanceUID: '1.1', findingCode: 'pneumothorax', verdict: 'accept', by: 'dr b' }); // no note
    await store.requestRetraction({ studyInstanceUID: '1.1', cause: 'marked-wrong', reason: 'old done reason' });
    await store.claimRetraction(10_000, lease, '1.1');
    await store.finishRetraction('1.1');
    await store.requestRetraction({ studyInstanceUID: '1.2', cause: 'marked-wrong', reason: 'old pending reason' });
    clock.t = 20_000;
    const newNote = await store.addFeedback({ studyInstanceUID: '1.2', findingCode: 'pneumothorax', verdict: 'reject', note: 'new note', by: 'dr c' });
    await store.requestRetraction({ studyInstanceUID: '1.3', cause: 'marked-wrong', reason: 'new reason' });
    await store.claimRetraction(20_000, lease, '1.3');
    await store.finishRetraction('1.3');

    expect(await store.purgeText(15_000)).toEqual({ feedbackNotes: 1, retractionReasons: 1 });
    const feedback = await store.listFeedback();
    expect(feedback).toHaveLength(3);
    expect(feedback.find((f) => f.id === oldNote.id)).toEqual({ ...oldNote, note: undefined });
    expect(feedback.find((f) => f.id === oldNote.id)).not.toHaveProperty('note');
    expect(feedback.find((f) => f.id === newNote.id)?.note).toBe('new note');
    expect(await store.getRetraction('1.1')).not.toHaveProperty('reason');
    expect((await store.getRetraction('1.1'))?.state).toBe('done');
    expect((await store.getRetraction('1.2'))?.reason).toBe('old pending reason');
    expect((await store.getRetraction('1.3'))?.reason).toBe('new reason');
    expect(await store.purgeText(15_000)).toEqual({ feedbackNotes: 0, retractionReasons: 0 });
  });
});
}
