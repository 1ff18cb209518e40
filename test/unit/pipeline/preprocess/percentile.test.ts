import { describe, expect, it } from 'vitest';
import { lerp, orderStatistics, percentilePositions, percentiles } from '../../../../src/pipeline/preprocess/percentile.ts';
import { seededRandom as rng } from '../../../../src/evaluate/metrics.ts';

/** numpy.percentile(a, q) (method "linear") the slow way: full sort + the same lerp. */
function sortedPercentile(a: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(a).sort();
  const { previous, next, gamma } = percentilePositions(s.length, q);
  return lerp(s[previous]!, s[next]!, gamma);
}


describe('percentiles (numpy default "linear" method)', () => {
  // Expected values printed by numpy 2.4.6: np.percentile(a, q), see the comment on each case.
  it('matches np.percentile(np.arange(1, 11), [0.5, 99.5]) = [1.045, 9.955]', () => {
    expect(percentiles(Int32Array.from({ length: 10 }, (_, i) => i + 1), [0.5, 99.5])).toEqual([1.045, 9.955]);
  });

  it('matches numpy with ties, negatives and the end points', () => {
    // a = [7, -3, 7, 12, 0, 5, -3, 100, 2, 7, 7]; np.percentile(a, [0.5, 25, 50, 62.5, 99.5, 100, 0])
    const a = [7, -3, 7, 12, 0, 5, -3, 100, 2, 7, 7];
    const expected = [-3.0, 1.0, 7.0, 7.0, 95.59999999999994, 100.0, -3.0];
    const qs = [0.5, 25, 50, 62.5, 99.5, 100, 0];
    expect(percentiles(Int32Array.from(a), qs)).toEqual(expected); // histogram path
    expect(percentiles(Float64Array.from(a), qs)).toEqual(expected); // selection path
  });

  it('matches numpy on floats: np.percentile([0.1, 0.7, 0.2, 0.3], [0.5, 99.5, 33.3])', () => {
    expect(percentiles(Float64Array.from([0.1, 0.7, 0.2, 0.3]), [0.5, 99.5, 33.3])).toEqual([0.1015, 0.694, 0.1999]);
  });

  it('a single value is every percentile', () => {
    expect(percentiles(Int32Array.from([42]), [0, 0.5, 50, 100])).toEqual([42, 42, 42, 42]);
  });

  it('applies a monotone map to the order statistics only', () => {
    const a = Int32Array.from([3, 1, 2, 5, 4]);
    const mapped = Array.from(a, (s) => s * 2 + 1);
    expect(percentiles(a, [10, 90], (s) => s * 2 + 1)).toEqual([sortedPercentile(mapped, 10), sortedPercentile(mapped, 90)]);
    const down = Array.from(a, (s) => s * -3 + 7);
    expect(percentiles(a, [10, 90], (s) => s * -3 + 7, true)).toEqual([sortedPercentile(down, 10), sortedPercentile(down, 90)]);
  });

  it('agrees with a full sort on random 16-bit and float data (both paths)', () => {
    const r = rng(7);
    for (const n of [1, 2, 3, 10, 601, 5000, 100_003]) {
      const ints = Int32Array.from({ length: n }, () => Math.floor(r() * 4096) - 1024);
      const floats = Float32Array.from({ length: n }, () => (r() - 0.3) * 1e4);
      for (const q of [0, 0.5, 1, 37.7, 50, 99.5, 100]) {
        expect(percentiles(ints, [q])[0]).toBe(sortedPercentile(ints, q));
        expect(percentiles(Float64Array.from(ints), [q])[0]).toBe(sortedPercentile(ints, q));
        expect(percentiles(floats, [q])[0]).toBe(sortedPercentile(floats, q));
      }
    }
  });

  it('orderStatistics returns the sorted values at any positions, repeats included', () => {
    const a = Float64Array.from([5, 3, 9, 1, 7, 3]);
    expect(orderStatistics(a, [5, 0, 1, 1, 2])).toEqual([9, 1, 3, 3, 3]);
    expect(orderStatistics(Int32Array.from(a), [5, 0, 1, 1, 2])).toEqual([9, 1, 3, 3, 3]);
    expect(() => orderStatistics(a, [6])).toThrow(RangeError);
  });

  it('refuses NaN and percentiles outside [0, 100]', () => {
    expect(() => percentiles(Float64Array.from([1, Number.NaN]), [50])).toThrow(/NaN/);
    expect(() => percentiles(Int32Array.from([1, 2]), [101])).toThrow(RangeError);
  });
});
