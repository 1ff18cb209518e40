import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteJobStore } from '../../../src/state/sqlite-store.ts';
import type { StoredResult } from '../../../src/state/store.ts';

const ref = (uid: string) => ({ studyInstanceUID: uid, source: 'orthanc-changes' as const });

describe('SqliteJobStore', () => {
  it('enqueues and advances the cursor together; a study enqueued twice is one job', () => {
    const store = new SqliteJobStore(':memory:', () => 1000);
    store.enqueue([ref('1.1'), ref('1.2')], { name: 'c', value: '7' });
    store.enqueue([ref('1.1')], { name: 'c', value: '9' });
    expect(store.getCursor('c')).toBe('9');
    expect(store.jobs().map((j) => j.studyInstanceUID).sort()).toEqual(['1.1', '1.2']);
  });

  it('claims due jobs once, retries failures at their time, and fails for good without one', () => {
    let now = 1000;
    const store = new SqliteJobStore(':memory:', () => now);
    store.enqueue([ref('1.1')]);
    const job = store.claim(now);
    expect(job).toMatchObject({ studyInstanceUID: '1.1', state: 'running', attempts: 1 });
    expect(store.claim(now)).toBeUndefined();
    store.fail('1.1', 'UPSTREAM_UNAVAILABLE', 'pacs answered 503', 5000);
    expect(store.claim(4999)).toBeUndefined();
    expect(store.claim(5000)).toMatchObject({ attempts: 2 });
    now = 6000;
    store.fail('1.1', 'DICOM_UNREADABLE', 'no pixel data', undefined);
    expect(store.get('1.1')).toMatchObject({ state: 'failed', errorCode: 'DICOM_UNREADABLE', reason: 'no pixel data' });
  });

  it('re-runs a study that was enqueued again while it was running', () => {
    const store = new SqliteJobStore(':memory:');
    store.enqueue([ref('1.1')]);
    store.claim(Date.now());
    store.enqueue([ref('1.1')]); // a new series arrived mid-run
    store.finish('1.1', 'done', undefined);
    expect(store.get('1.1')?.state).toBe('queued');
  });

  it('settles: a study enqueued with settleMs is due that long after its last enqueue, also for a rerun', () => {
    let now = 1000;
    const store = new SqliteJobStore(':memory:', () => now);
    store.enqueue([ref('1.1')], undefined, { settleMs: 1000 });
    expect(store.nextDueAt()).toBe(2000);
    now = 1500;
    store.enqueue([ref('1.1')], undefined, { settleMs: 1000 }); // another instance arrived
    expect(store.claim(2000)).toBeUndefined();
    expect(store.nextDueAt()).toBe(2500);
    expect(store.claim(2500)).toMatchObject({ studyInstanceUID: '1.1', state: 'running' });
    expect(store.nextDueAt()).toBeUndefined();
    now = 2600;
    store.enqueue([ref('1.1')], undefined, { settleMs: 1000 }); // an instance arrived mid-run
    now = 2700;
    store.finish('1.1', 'done', undefined);
    expect(store.get('1.1')?.state).toBe('queued');
    expect(store.claim(3599)).toBeUndefined();
    expect(store.claim(3600)).toMatchObject({ studyInstanceUID: '1.1' });
    store.enqueue([ref('1.2')]); // without settleMs: due now
    expect(store.nextDueAt()).toBe(2700);
  });

  it('a settle barrier: due only once its cursor passed the due time; taking the job clears it (a retry waits for its time only)', () => {
    let now = 1000;
    const store = new SqliteJobStore(':memory:', () => now);
    store.enqueue([ref('1.1')], { name: 'seen', value: '1000' }, { settleMs: 500, barrier: 'seen' });
    expect(store.nextSettleAt()).toBe(1500); // when the ingest should run a pass
    now = 1600;
    expect(store.claim(now)).toBeUndefined();
    expect(store.nextDueAt()).toBeUndefined();
    expect(store.nextSettleAt()).toBe(1500); // past: a pass is due now
    store.enqueue([], { name: 'seen', value: '1550' });
    expect(store.nextSettleAt()).toBeUndefined(); // lifted
    expect(store.claim(now)).toMatchObject({ studyInstanceUID: '1.1' });
    store.fail('1.1', 'UPSTREAM_UNAVAILABLE', 'pacs answered 503', 5000);
    expect(store.claim(5000)).toMatchObject({ attempts: 2 });
    // A study enqueued by a mode without a barrier (the webhook's StableStudy) is due at once.
    store.enqueue([ref('1.2')], undefined, {});
    expect(store.claim(now)).toMatchObject({ studyInstanceUID: '1.2' });
  });

  it('a dead worker\'s job waits out a settle time pushed back while it ran', () => {
    let now = 1000;
    const store = new SqliteJobStore(':memory:', () => now);
    store.enqueue([ref('1.1')]);
    store.claim(now, { owner: 'a', leaseMs: 100 });
    store.enqueue([ref('1.1')], undefined, { settleMs: 1000 }); // an instance arrived mid-run
    now = 1500; // lease expired, settle not over
    expect(store.claim(now, { owner: 'b', leaseMs: 100 })).toBeUndefined();
    now = 2000;
    expect(store.claim(now, { owner: 'b', leaseMs: 100 })).toMatchObject({ studyInstanceUID: '1.1', attempts: 2 });
  });

  it('survives a restart: a job left running is reclaimed once its lease expires, results and cursor are kept', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'store-')), 'jobs.sqlite');
    const first = new SqliteJobStore(file);
    first.enqueue([ref('1.1')], { name: 'c', value: '3' });
    const now = Date.now();
    first.claim(now, { owner: 'dead', leaseMs: 1000 });
    const result = { resultKey: 'k', studyInstanceUID: '1.1', createdAt: 1, priority: 'stat' } as StoredResult;
    first.saveResult(result);
    first.close();
    const second = new SqliteJobStore(file);
    expect(second.get('1.1')).toMatchObject({ state: 'running', leaseOwner: 'dead', leaseUntil: now + 1000 });
    expect(second.claim(now + 999, { owner: 'next', leaseMs: 1000 })).toBeUndefined();
    expect(second.claim(now + 1001, { owner: 'next', leaseMs: 1000 })).toMatchObject({ state: 'running', attempts: 2, leaseOwner: 'next' });
    expect(second.getCursor('c')).toBe('3');
    expect(second.latestResult('1.1')?.priority).toBe('stat');
    second.close();
  });
});

describe('SqliteJobStore.claim for one study (regression: `process <uid>` ran another due job)', () => {
  it('takes only the named study even when an older job is due', () => {
    const store = new SqliteJobStore(':memory:', () => 1000);
    store.enqueue([{ studyInstanceUID: 'old', source: 'cli' }]);
    store.enqueue([{ studyInstanceUID: 'mine', source: 'cli' }]);
    expect(store.claim(5000, undefined, 'mine')?.studyInstanceUID).toBe('mine');
    expect(store.claim(5000, undefined, 'mine')).toBeUndefined();
    expect(store.claim(5000)?.studyInstanceUID).toBe('old');
  });
});
