import { describe, expect, it } from 'vitest';
import { backfillGate, backfillLimit } from '../../../src/compose/backfill-gate.ts';
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
    const gate = backfillGate(3, q.claim);
    const claimed = await Promise.all(Array.from({ length: 8 }, () => gate.claim(() => 'urgent-first')));
    expect(claimed.filter(Boolean)).toHaveLength(3);
    expect(gate.running).toBe(3);
    expect(q.orders.filter((o) => o === 'urgent-only')).toHaveLength(5);
  });

  it('a live study is claimed while the backfill slots are full, and a finished backfill job frees its slot', async () => {
    const q = queue(['backfill', 'backfill', 'backfill', 'live']);
    const gate = backfillGate(2, q.claim);
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
    const gate = backfillGate(1, async () => {
      throw new Error('store away');
    });
    await expect(gate.claim(() => 'urgent-first')).rejects.toThrow('store away');
    expect(gate.running).toBe(0);
    const empty = backfillGate(1, async () => undefined);
    expect(await empty.claim(() => 'backfill-first')).toBeUndefined();
    expect(empty.running).toBe(0);
  });

  it('gives a backfill slot back when the job throws', async () => {
    const q = queue(['backfill']);
    const gate = backfillGate(1, q.claim);
    const job = (await gate.claim(() => 'urgent-first'))!;
    await expect(gate.run(job, async () => Promise.reject(new Error('bug')))).rejects.toThrow('bug');
    expect(gate.running).toBe(0);
  });

  it('defaults to half of worker.concurrency, rounded up', () => {
    expect(backfillLimit({ concurrency: 8 })).toBe(4);
    expect(backfillLimit({ concurrency: 1 })).toBe(1);
    expect(backfillLimit({ concurrency: 3 })).toBe(2);
    expect(backfillLimit({ concurrency: 8, backfillConcurrency: 7 })).toBe(7);
  });
});
