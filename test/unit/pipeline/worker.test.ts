import { describe, expect, it } from 'vitest';
import { nextAttemptDelay, DEFAULT_RETRY } from '../../../src/pipeline/worker.ts';

describe('nextAttemptDelay', () => {
  const policy = { ...DEFAULT_RETRY, baseDelayMs: 1000, maxDelayMs: 10_000 };
  it('doubles per attempt with jitter in [ceiling/2, ceiling], capped', () => {
    expect([1, 2, 3].map((a) => nextAttemptDelay(a, policy, undefined, () => 0))).toEqual([500, 1000, 2000]);
    expect([1, 2, 3].map((a) => nextAttemptDelay(a, policy, undefined, () => 1))).toEqual([1000, 2000, 4000]);
    expect(nextAttemptDelay(20, policy, undefined, () => 1)).toBe(10_000);
  });
  it('waits at least as long as Retry-After asks', () => {
    expect(nextAttemptDelay(1, policy, 30, () => 0)).toBe(30_000);
  });
});
