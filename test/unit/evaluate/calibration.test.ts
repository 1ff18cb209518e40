/** Brier score, expected calibration error and the reliability table: by hand on small cases. */
import { describe, expect, it } from 'vitest';
import { brierScore, calibration } from '../../../src/evaluate/calibration.ts';
import { reliabilitySvg } from '../../../src/evaluate/reliability-plot.ts';

describe('calibration', () => {
  it('Brier is the mean squared error of the probabilities', () => {
    expect(brierScore([1, 0, 0.5, 0.5], [1, 0, 1, 0])).toBe(0.125);
    expect(brierScore([0.9, 0.2], [0, 1])).toBeCloseTo((0.81 + 0.64) / 2, 12);
  });

  it('a perfectly calibrated set has ECE 0; bins hold n, mean predicted and observed', () => {
    // 0.25 four times, one positive; 0.75 four times, three positive.
    const cal = calibration([0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75], [1, 0, 0, 0, 1, 1, 1, 0], 4);
    expect(cal.ece).toBe(0);
    expect(cal.bins).toEqual([
      { lo: 0, hi: 0.25, n: 0, predicted: null, observed: null },
      { lo: 0.25, hi: 0.5, n: 4, predicted: 0.25, observed: 0.25 },
      { lo: 0.5, hi: 0.75, n: 0, predicted: null, observed: null },
      { lo: 0.75, hi: 1, n: 4, predicted: 0.75, observed: 0.75 },
    ]);
  });

  it('ECE weighs each bin\'s gap by its share of the cases; a probability of 1 falls in the last bin', () => {
    // Bin [0.9, 1]: 0.9 and 1.0 predicted (mean 0.95), both negative → gap 0.95, weight 2/4.
    // Bin [0.1, 0.2): 0.1 twice, both positive → gap 0.9, weight 2/4.
    const cal = calibration([0.9, 1, 0.1, 0.1], [0, 0, 1, 1]);
    expect(cal.bins[9]).toMatchObject({ n: 2, observed: 0 });
    expect(cal.bins[9]?.predicted).toBeCloseTo(0.95, 12);
    expect(cal.ece).toBeCloseTo(0.5 * 0.95 + 0.5 * 0.9, 12);
  });

  it('refuses mismatched lengths; an empty set has NaN scores', () => {
    expect(() => calibration([0.5], [])).toThrow(RangeError);
    expect(Number.isNaN(calibration([], []).ece)).toBe(true);
  });

  it('the diagram draws one bar per non-empty bin with its count, and escapes its title', () => {
    const svg = reliabilitySvg('a <b> & "c"', calibration([0.25, 0.25, 0.75], [0, 1, 1], 4));
    expect(svg.match(/fill="#4a7bd0"/g)).toHaveLength(2);
    expect(svg).toContain('a &lt;b&gt; &amp; &quot;c&quot;');
    // ECE: [0.25, 0.5) holds 2 at 0.25 with 1 positive (gap 0.25), [0.75, 1] 1 at 0.75, positive (gap 0.25).
    expect(svg).toContain('Brier 0.229 · ECE 0.250 (4 bins)');
  });
});
