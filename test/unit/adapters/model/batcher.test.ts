import { describe, expect, it } from 'vitest';
import { DynamicBatcher } from '../../../../src/adapters/model/batcher.ts';

describe('DynamicBatcher', () => {
  it('runs a full batch at once and a partial one after the wait', async () => {
    const batches: number[][] = [];
    const batcher = new DynamicBatcher<number, number>(async (items) => {
      batches.push(items);
      return items.map((x) => x * 10);
    }, 3, 30);
    const results = await Promise.all([1, 2, 3, 4].map((x) => batcher.submit(x)));
    expect(results).toEqual([10, 20, 30, 40]);
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });

  it('rejects every item of a failed batch and keeps serving later ones', async () => {
    let fail = true;
    const batcher = new DynamicBatcher<number, number>(async (items) => {
      if (fail) throw new Error('boom');
      return items;
    }, 2, 5);
    await expect(Promise.all([batcher.submit(1), batcher.submit(2)])).rejects.toThrow('boom');
    fail = false;
    await expect(batcher.submit(3)).resolves.toBe(3);
  });
});
