import { describe, expect, it } from 'vitest';
import { auroc, bootstrapMacroAurocCi, thresholdMetrics } from '../../../src/evaluate/metrics.ts';

describe('auroc', () => {
  it('is 1 for a perfect ranking and 0 for a reversed one', () => {
    expect(auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
  });

  it('counts ties as one half (sklearn roc_auc_score gives 0.75 here)', () => {
    // positives 0.5, 0.9; negatives 0.5, 0.1 → pairs: (0.5,0.5)=½, (0.5,0.1)=1, (0.9,0.5)=1, (0.9,0.1)=1 → 3.5/4
    expect(auroc([0.5, 0.9, 0.5, 0.1], [1, 1, 0, 0])).toBeCloseTo(0.875, 12);
    expect(auroc([0.3, 0.3, 0.3, 0.3], [1, 0, 1, 0])).toBe(0.5);
  });

  it('is NaN when one class is absent', () => {
    expect(auroc([0.1, 0.2], [1, 1])).toBeNaN();
  });
});

describe('thresholdMetrics', () => {
  it('counts a score equal to the threshold as positive', () => {
    const m = thresholdMetrics([0.5, 0.4, 0.7, 0.2], [1, 1, 0, 0], 0.5);
    // tp=1 (0.5), fn=1 (0.4), fp=1 (0.7), tn=1 (0.2)
    expect(m).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5, accuracy: 0.5 });
  });

  it('gives 0 rather than NaN when nothing is predicted positive', () => {
    expect(thresholdMetrics([0.1, 0.2], [1, 0], 0.9)).toEqual({ precision: 0, recall: 0, f1: 0, accuracy: 0.5 });
  });
});

describe('bootstrapMacroAurocCi', () => {
  it('is reproducible for a seed and brackets the point estimate', () => {
    const scores: number[][] = [];
    const labels: number[][] = [];
    for (let i = 0; i < 200; i++) {
      const y = i % 3 === 0 ? 1 : 0;
      labels.push([y, 1 - y]);
      const s = (y ? 0.6 : 0.4) + (((i * 37) % 50) - 25) / 100;
      scores.push([s, 1 - s]);
    }
    const a = bootstrapMacroAurocCi(scores, labels, 300, 7);
    const b = bootstrapMacroAurocCi(scores, labels, 300, 7);
    expect(a).toEqual(b);
    const point = auroc(scores.map((r) => r[0] as number), labels.map((r) => r[0] as number));
    expect(a[0]).toBeLessThanOrEqual(point);
    expect(a[1]).toBeGreaterThanOrEqual(point);
    expect(a[1] - a[0]).toBeGreaterThan(0.01);
  });
});
