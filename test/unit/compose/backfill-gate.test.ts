import { describe, expect, it } from 'vitest';
import { backfillGate, backfillLimits, LIVE_WINDOW_MS } from '../../../src/compose/backfill-gate.ts';
import type { Job, JobClass } from '../../../src/domain/records.ts';
import type { ClaimOrder } from '../../../src/state/ports.ts';

/** A queue in memory that answers claims in the store's order (live, retry, backfill; urgent-only leaves backfill out). */
function queue(classes: JobClass[]): { claim: (order: ClaimOrder) => Promise<Job | undefined>; orders: ClaimOrder[] } {
  const waiting = classes.map((c, i) => ({ studyInstanceUID: `1.2.${i}`, class: c }) as Job);
  const rank = (c: JobClass): number => ['live', 'retry', 'backfill'].indexOf(c);
  const orders: ClaimOrder[] = [];
  return {
    orders,
    claim: async (order) => {
      orders.push(order);
      await new Promise((r) => setImmediate(r)); // claims overlap, as several workers' do
      const allowed = waiting.filter((j) => order !== 'urgent-only' || j.class !== 'backfill');
      allowed.sort((a, b) => (order === 'backfill-first' ? rank(b.class) - rank(a.class) : rank(a.class) - rank(b.class)));
      const job = allowed[0];
      if (job) waiting.splice(waiting.indexOf(job), 1);
      return job;
    },
  };
}

describe('backfill gate (worker.backfillConcurrency)', () => {
  it('never lets more than the limit of backfill jobs run, even with claims made at the same time', async () => {
    const q = queue(Array.from({ length: 10 }, () => 'backfill'));
    const gate = backfillGate({ whileLive: 3, idle: 3 }, q.claim);
    const claimed = await Promise.all(Array.from({ length: 8 }, () => gate.claim(() => 'urgent-first')));
    expect(claimed.filter(Boolean)).toHaveLength(3);
    expect(gate.running).toBe(3);
    expect(q.orders.filter((o) => o === 'urgent-only')).toHaveLength(5);
  });

  it('a live study is claimed while the backfill slots are full, and a finished backfill job frees its slot', async () => {
    const q = queue(['backfill', 'backfill', 'backfill', 'live']);
    const gate = backfillGate({ whileLive: 2, idle: 2 }, q.claim);
    const a = (await gate.claim(() => 'urgent-first'))!;
    const b = (await gate.claim(() => 'urgent-first'))!;
    // urgent-first takes the live study first: it does not hold a backfill slot.
    expect([a.class, b.class]).toEqual(['live', 'backfill']);
    expect(gate.running).toBe(1);
    const c = (await gate.claim(() => 'urgent-first'))!;
    expect(c.class).toBe('backfill');
    expect(await gate.claim(() => 'urgent-first')).toBeUndefined(); // full: urgent-only, none waiting
    expect(gate.running).toBe(2);
    expect(await gate.run(c, async () => 'ran')).toBe('ran');
    expect(gate.running).toBe(1);
    expect((await gate.claim(() => 'urgent-first'))?.class).toBe('backfill');
  });

  it('gives the slot back when the claim throws or finds nothing', async () => {
    const gate = backfillGate({ whileLive: 1, idle: 1 }, async () => {
      throw new Error('store away');
    });
    await expect(gate.claim(() => 'urgent-first')).rejects.toThrow('store away');
    expect(gate.running).toBe(0);
    const empty = backfillGate({ whileLive: 1, idle: 1 }, async () => undefined);
    expect(await empty.claim(() => 'backfill-first')).toBeUndefined();
    expect(empty.running).toBe(0);
  });

  it('gives a backfill slot back when the job throws', async () => {
    const q = queue(['backfill']);
    const gate = backfillGate({ whileLive: 1, idle: 1 }, q.claim);
    const job = (await gate.claim(() => 'urgent-first'))!;
    await expect(gate.run(job, async () => Promise.reject(new Error('bug')))).rejects.toThrow('bug');
    expect(gate.running).toBe(0);
  });

  it('while no live study was claimed in the last minute, backfill may use every worker; a live claim brings the cap back', async () => {
    let now = 0;
    const q = queue([...Array.from({ length: 6 }, (): JobClass => 'backfill'), 'live', ...Array.from({ length: 6 }, (): JobClass => 'backfill')]);
    const gate = backfillGate({ whileLive: 1, idle: 4 }, q.claim, () => now);
    for (let i = 0; i < 4; i++) expect((await gate.claim(() => 'backfill-first'))?.class).toBe('backfill');
    expect(await gate.claim(() => 'backfill-first')).toMatchObject({ class: 'live' }); // full: urgent-only
    expect(gate.running).toBe(4);
    // Live work seen: the cap is 1 until the running backfill drops below it.
    const finishOne = async (): Promise<void> => gate.run({ class: 'backfill' } as Job, async () => undefined);
    for (let i = 0; i < 3; i++) await finishOne();
    expect(gate.running).toBe(1);
    expect(await gate.claim(() => 'backfill-first')).toBeUndefined();
    now += LIVE_WINDOW_MS;
    expect((await gate.claim(() => 'backfill-first'))?.class).toBe('backfill');
    expect(gate.running).toBe(2);
  });

  it('caps nothing by default; worker.backfillConcurrency sets the cap while live', () => {
    expect(backfillLimits({ concurrency: 8 })).toEqual({ whileLive: 8, idle: 8 });
    expect(backfillLimits({ concurrency: 1 })).toEqual({ whileLive: 1, idle: 1 });
    expect(backfillLimits({ concurrency: 3, backfillConcurrency: 1 })).toEqual({ whileLive: 1, idle: 3 });
    expect(backfillLimits({ concurrency: 8, backfillConcurrency: 7 })).toEqual({ whileLive: 7, idle: 8 });
  });
});
