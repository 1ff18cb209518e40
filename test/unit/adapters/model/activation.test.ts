/** outputs.scores.activation: what thresholds apply to. */
import { describe, expect, it } from 'vitest';
import { activate } from '../../../../src/adapters/model/activation.ts';

describe('activate', () => {
  it('none passes probabilities through', () => {
    expect(activate([0.2, 0.9], 'none')).toEqual([0.2, 0.9]);
  });

  it('sigmoid per finding, stable at large |logit|', () => {
    const [a, b, c, d] = activate([0, Math.log(3), 800, -800], 'sigmoid');
    expect(a).toBe(0.5);
    expect(b).toBeCloseTo(0.75, 12);
    expect(c).toBe(1);
    expect(d).toBeGreaterThanOrEqual(0);
    expect(Number.isNaN(d)).toBe(false);
  });

  it('softmax over the findings sums to 1 and survives large logits', () => {
    const p = activate([1000, 1000 + Math.log(3)], 'softmax');
    expect(p[0]).toBeCloseTo(0.25, 12);
    expect(p[1]).toBeCloseTo(0.75, 12);
  });
});
