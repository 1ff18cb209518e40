import { describe, expect, it } from 'vitest';
import { WorkerPool } from '../../../src/pipeline/pool.ts';
import type { Job } from '../../../src/domain/records.ts';

const job = (uid: string): Job => ({ studyInstanceUID: uid, source: 'cli', state: 'running', attempts: 1, enqueuedAt: 0, updatedAt: 0 }) as Job;

/** A queue the test fills; `run` resolves when the test releases the job. */
function harness(concurrency: number, idleMs = 60_000) {
  const queue: string[] = [];
  const started: string[] = [];
  const finished: string[] = [];
  const release = new Map<string, () => void>();
  let maxInFlight = 0;
  let inFlight = 0;
  const pool = new WorkerPool<string>({
    concurrency,
    idleMs,
    claim: async () => {
      const uid = queue.shift();
      return uid === undefined ? undefined : job(uid);
    },
    run: async (j) => {
      started.push(j.studyInstanceUID);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((resolve) => release.set(j.studyInstanceUID, resolve));
      inFlight--;
      finished.push(j.studyInstanceUID);
      return j.studyInstanceUID;
    },
  });
  return { pool, queue, started, finished, release, max: () => maxInFlight };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('WorkerPool', () => {
  it('runs at most `concurrency` jobs at once and claims the next when one finishes', async () => {
    const h = harness(2);
    h.queue.push('a', 'b', 'c');
    h.pool.start();
    await tick();
    expect(h.started).toEqual(['a', 'b']);
    expect(h.pool.inFlight).toBe(2);
    h.release.get('a')!();
    await tick();
    expect(h.started).toEqual(['a', 'b', 'c']);
    h.release.get('b')!();
    h.release.get('c')!();
    await tick();
    expect(h.finished).toEqual(['a', 'b', 'c']);
    expect(h.max()).toBe(2);
    expect(await h.pool.stop(1_000)).toBe(true);
  });

  it('an idle worker starts at once when woken, not after its nap', async () => {
    const h = harness(1, 60_000);
    h.pool.start();
    await tick();
    h.queue.push('late');
    await tick();
    expect(h.started).toEqual([]); // asleep: nobody said anything was enqueued
    h.pool.wake();
    await tick();
    expect(h.started).toEqual(['late']);
    h.release.get('late')!();
    expect(await h.pool.stop(1_000)).toBe(true);
  });

  it('a wake while every worker is busy is not lost: the worker that finishes looks again', async () => {
    const h = harness(1, 60_000);
    h.queue.push('first');
    h.pool.start();
    await tick();
    h.queue.push('second');
    h.pool.wake();
    h.release.get('first')!();
    await tick();
    expect(h.started).toEqual(['first', 'second']);
    h.release.get('second')!();
    expect(await h.pool.stop(1_000)).toBe(true);
  });

  it('finds work by itself after idleMs (a retry that came due)', async () => {
    const h = harness(1, 20);
    h.pool.start();
    await tick();
    h.queue.push('due');
    await new Promise((r) => setTimeout(r, 60));
    expect(h.started).toEqual(['due']);
    h.release.get('due')!();
    expect(await h.pool.stop(1_000)).toBe(true);
  });

  it('stop claims no more, waits for the jobs in hand, and says when they did not finish in time', async () => {
    const h = harness(1);
    h.queue.push('held', 'never');
    h.pool.start();
    await tick();
    expect(await h.pool.stop(30)).toBe(false);
    expect(h.pool.inFlight).toBe(1);
    h.release.get('held')!();
    await tick();
    expect(h.finished).toEqual(['held']);
    expect(h.started).toEqual(['held']); // 'never' stays queued for the next run
    expect(h.queue).toEqual(['never']);
  });

  it('a run that throws is reported and the worker carries on', async () => {
    const errors: unknown[] = [];
    const queue = ['boom', 'ok'];
    const done: string[] = [];
    const pool = new WorkerPool<string>({
      concurrency: 1,
      idleMs: 60_000,
      claim: async () => {
        const uid = queue.shift();
        return uid === undefined ? undefined : job(uid);
      },
      run: async (j) => {
        if (j.studyInstanceUID === 'boom') throw new Error('bug');
        return j.studyInstanceUID;
      },
      onOutcome: (o) => done.push(o),
      onError: (err) => errors.push(err),
    });
    pool.start();
    await tick();
    expect(errors.map((e) => (e as Error).message)).toEqual(['bug']);
    expect(done).toEqual(['ok']);
    expect(await pool.stop(1_000)).toBe(true);
  });

  it('an idle worker wakes when the earliest waiting job comes due, not after its whole nap', async () => {
    const dueAt = Date.now() + 30;
    const started: number[] = [];
    let taken = false;
    const pool = new WorkerPool<void>({
      concurrency: 1,
      idleMs: 60_000,
      nextDue: async () => (taken ? undefined : dueAt),
      claim: async () => {
        if (taken || Date.now() < dueAt) return undefined;
        taken = true;
        return job('settled');
      },
      run: async () => void started.push(Date.now()),
    });
    pool.start();
    await new Promise((r) => setTimeout(r, 120));
    expect(started).toHaveLength(1);
    expect(started[0]! - dueAt).toBeLessThan(60);
    expect(await pool.stop(1_000)).toBe(true);
  });

  it('a claim that throws makes the worker nap its whole idleMs, even with a job past due', async () => {
    let claims = 0;
    const errors: unknown[] = [];
    const pool = new WorkerPool<void>({
      concurrency: 1,
      idleMs: 50,
      nextDue: async () => Date.now() - 1_000,
      claim: async () => {
        claims++;
        throw new Error('SQLITE_IOERR');
      },
      run: async () => undefined,
      onError: (err) => errors.push(err),
    });
    pool.start();
    await new Promise((r) => setTimeout(r, 120));
    expect(await pool.stop(1_000)).toBe(true);
    expect(claims).toBeGreaterThanOrEqual(2);
    expect(claims).toBeLessThanOrEqual(5);
    expect(errors).toHaveLength(claims);
  });
});
