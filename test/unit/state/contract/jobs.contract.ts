/** The job queue's contract: what every engine's claims, leases, settling and reruns must do. */
import { describe, expect, it } from 'vitest';
import type { StoredResult } from '../../../../src/domain/records.ts';
import type { StoreEngine } from './engine.ts';

const ref = (uid: string) => ({ studyInstanceUID: uid, source: 'orthanc-changes' as const });

export function jobQueueContract(engine: StoreEngine): void {
describe(`${engine.name}: job queue`, () => {
  it('enqueues and advances the cursor together; a study enqueued twice is one job', async () => {
    const store = await engine.open(() => 1000);
    await store.enqueue([ref('1.1'), ref('1.2')], { name: 'c', value: '7' });
    await store.enqueue([ref('1.1')], { name: 'c', value: '9' });
    expect(await store.getCursor('c')).toBe('9');
    expect((await store.jobs()).map((j) => j.studyInstanceUID).sort()).toEqual(['1.1', '1.2']);
  });

  it('claims due jobs once, retries failures at their time, and fails for good without one', async () => {
    let now = 1000;
    const store = await engine.open(() => now);
    await store.enqueue([ref('1.1')]);
    const job = await store.claim(now);
    expect(job).toMatchObject({ studyInstanceUID: '1.1', state: 'running', attempts: 1 });
    expect(await store.claim(now)).toBeUndefined();
    await store.fail('1.1', 'UPSTREAM_UNAVAILABLE', 'pacs answered 503', 5000);
    expect(await store.claim(4999)).toBeUndefined();
    expect(await store.claim(5000)).toMatchObject({ attempts: 2 });
    now = 6000;
    await store.fail('1.1', 'DICOM_UNREADABLE', 'no pixel data', undefined);
    expect(await store.get('1.1')).toMatchObject({ state: 'failed', errorCode: 'DICOM_UNREADABLE', reason: 'no pixel data' });
  });

  it('re-runs a study that was enqueued again while it was running', async () => {
    const store = await engine.open();
    await store.enqueue([ref('1.1')]);
    await store.claim(Date.now());
    await store.enqueue([ref('1.1')]); // a new series arrived mid-run
    await store.finish('1.1', 'done', undefined);
    expect((await store.get('1.1'))?.state).toBe('queued');
  });

  it('settles: a study enqueued with settleMs is due that long after its last enqueue, also for a rerun', async () => {
    let now = 1000;
    const store = await engine.open(() => now);
    await store.enqueue([ref('1.1')], undefined, { settleMs: 1000 });
    expect(await store.nextDueAt()).toBe(2000);
    now = 1500;
    await store.enqueue([ref('1.1')], undefined, { settleMs: 1000 }); // another instance arrived
    expect(await store.claim(2000)).toBeUndefined();
    expect(await store.nextDueAt()).toBe(2500);
    expect(await store.claim(2500)).toMatchObject({ studyInstanceUID: '1.1', state: 'running' });
    expect(await store.nextDueAt()).toBeUndefined();
    now = 2600;
    await store.enqueue([ref('1.1')], undefined, { settleMs: 1000 }); // an instance arrived mid-run
    now = 2700;
    await store.finish('1.1', 'done', undefined);
    expect((await store.get('1.1'))?.state).toBe('queued');
    expect(await store.claim(3599)).toBeUndefined();
    expect(await store.claim(3600)).toMatchObject({ studyInstanceUID: '1.1' });
    await store.enqueue([ref('1.2')]); // without settleMs: due now
    expect(await store.nextDueAt()).toBe(2700);
  });

  it('a settle barrier: due only once its cursor passed the due time; taking the job clears it (a retry waits for its time only)', async () => {
    let now = 1000;
    const store = await engine.open(() => now);
    await store.enqueue([ref('1.1')], { name: 'seen', value: '1000' }, { settleMs: 500, barrier: 'seen' });
    expect(await store.nextSettleAt()).toBe(1500); // when the ingest should run a pass
    now = 1600;
    expect(await store.claim(now)).toBeUndefined();
    expect(await store.nextDueAt()).toBeUndefined();
    expect(await store.nextSettleAt()).toBe(1500); // past: a pass is due now
    await store.enqueue([], { name: 'seen', value: '1550' });
    expect(await store.nextSettleAt()).toBeUndefined(); // lifted
    expect(await store.claim(now)).toMatchObject({ studyInstanceUID: '1.1' });
    await store.fail('1.1', 'UPSTREAM_UNAVAILABLE', 'pacs answered 503', 5000);
    expect(await store.claim(5000)).toMatchObject({ attempts: 2 });
    // A study enqueued by a mode without a barrier (the webhook's StableStudy) is due at once.
    await store.enqueue([ref('1.2')], undefined, {});
    expect(await store.claim(now)).toMatchObject({ studyInstanceUID: '1.2' });
  });

  it('a dead worker\'s job waits out a settle time pushed back while it ran', async () => {
    let now = 1000;
    const store = await engine.open(() => now);
    await store.enqueue([ref('1.1')]);
    await store.claim(now, { owner: 'a', leaseMs: 100 });
    await store.enqueue([ref('1.1')], undefined, { settleMs: 1000 }); // an instance arrived mid-run
    now = 1500; // lease expired, settle not over
    expect(await store.claim(now, { owner: 'b', leaseMs: 100 })).toBeUndefined();
    now = 2000;
    expect(await store.claim(now, { owner: 'b', leaseMs: 100 })).toMatchObject({ studyInstanceUID: '1.1', attempts: 2 });
  });

  it('survives a restart: a job left running is reclaimed once its lease expires, results and cursor are kept', async () => {
    const first = await engine.open();
    await first.enqueue([ref('1.1')], { name: 'c', value: '3' });
    const now = Date.now();
    await first.claim(now, { owner: 'dead', leaseMs: 1000 });
    const result = { resultKey: 'k', studyInstanceUID: '1.1', createdAt: 1, priority: 'stat' } as StoredResult;
    await first.saveResult(result);
    const second = await engine.reopen(first);
    expect(await second.get('1.1')).toMatchObject({ state: 'running', leaseOwner: 'dead', leaseUntil: now + 1000 });
    expect(await second.claim(now + 999, { owner: 'next', leaseMs: 1000 })).toBeUndefined();
    expect(await second.claim(now + 1001, { owner: 'next', leaseMs: 1000 })).toMatchObject({ state: 'running', attempts: 2, leaseOwner: 'next' });
    expect(await second.getCursor('c')).toBe('3');
    expect((await second.latestResult('1.1'))?.priority).toBe('stat');
    await second.close();
  });
});

describe(`${engine.name}: claim for one study (regression: \`process <uid>\` ran another due job)`, () => {
  it('takes only the named study even when an older job is due', async () => {
    const store = await engine.open(() => 1000);
    await store.enqueue([{ studyInstanceUID: '1.2.1', source: 'cli' }]);
    await store.enqueue([{ studyInstanceUID: '1.2.2', source: 'cli' }]);
    expect((await store.claim(5000, undefined, '1.2.2'))?.studyInstanceUID).toBe('1.2.2');
    expect(await store.claim(5000, undefined, '1.2.2')).toBeUndefined();
    expect((await store.claim(5000))?.studyInstanceUID).toBe('1.2.1');
  });
});

describe(`${engine.name}: scheduling classes (live ahead of retries, retries ahead of backfill)`, () => {
  it('claims live, then retry, then backfill; a backfill-first claim takes backfill; transitions set the class', async () => {
    let now = 1_000;
    const store = await engine.open(() => now);
    await store.enqueue([ref('1.9.3')], undefined, { class: 'backfill' }); // oldest, but backfill
    await store.enqueue([ref('1.9.2')]);
    await store.claim(now, undefined, '1.9.2');
    await store.fail('1.9.2', 'UPSTREAM_UNAVAILABLE', 'pacs answered 503', now); // a retry, due now
    now = 1_001;
    await store.enqueue([ref('1.9.1')]); // the newest: live
    expect((await store.get('1.9.2'))?.class).toBe('retry');
    expect((await store.jobs()).map((j) => [j.studyInstanceUID, j.class]).sort()).toEqual([['1.9.1', 'live'], ['1.9.2', 'retry'], ['1.9.3', 'backfill']]);
    expect((await store.claim(now, undefined, undefined, 'backfill-first'))?.studyInstanceUID).toBe('1.9.3');
    await store.finish('1.9.3', 'done', undefined);
    expect(await store.requeue('1.9.3')).toMatchObject({ class: 'backfill' });
    expect((await store.claim(now))?.studyInstanceUID).toBe('1.9.1');
    expect((await store.claim(now))?.studyInstanceUID).toBe('1.9.2');
    // urgent-only (this process runs its worker.backfillConcurrency already) leaves backfill waiting.
    expect(await store.claim(now, undefined, undefined, 'urgent-only')).toBeUndefined();
    expect((await store.claim(now, undefined, undefined, 'urgent-first'))?.studyInstanceUID).toBe('1.9.3');
    // Reprocess (requeue) is backfill; a live arrival of a waiting backfill study makes it live.
    await store.finish('1.9.1', 'done', undefined);
    expect(await store.requeue('1.9.1')).toMatchObject({ state: 'queued', class: 'backfill' });
    await store.enqueue([ref('1.9.1')]);
    expect((await store.get('1.9.1'))?.class).toBe('live');
    // A backfill enqueue does not demote a study already waiting as live.
    await store.enqueue([ref('1.9.1')], undefined, { class: 'backfill' });
    expect((await store.get('1.9.1'))?.class).toBe('live');
    await store.close();
  });

  it('a rerun asked for while running keeps the class of who asked: a live arrival, or a reprocess', async () => {
    const now = 1_000;
    const store = await engine.open(() => now);
    await store.enqueue([ref('1.9.4'), ref('1.9.5')], undefined, { class: 'backfill' });
    await store.claim(now, undefined, '1.9.4');
    await store.claim(now, undefined, '1.9.5');
    await store.enqueue([ref('1.9.4')]); // a new series arrived mid-run
    await store.requeue('1.9.5'); // someone asked for a reprocess mid-run
    await store.finish('1.9.4', 'done', undefined);
    await store.finish('1.9.5', 'done', undefined);
    expect(await store.get('1.9.4')).toMatchObject({ state: 'queued', class: 'live' });
    expect(await store.get('1.9.5')).toMatchObject({ state: 'queued', class: 'backfill' });
    await store.close();
  });
});
}
