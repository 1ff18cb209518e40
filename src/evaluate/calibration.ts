/**
 * Calibration of predicted probabilities against labels: the Brier score, the expected
 * calibration error over equal-width bins, and the reliability table those come from. Pure.
 */

export interface ReliabilityBin {
  /** The bin is [lo, hi) (the last one includes 1). */
  lo: number;
  hi: number;
  n: number;
  /** Mean predicted probability in the bin; null when it is empty. */
  predicted: number | null;
  /** Fraction of positives in the bin; null when it is empty. */
  observed: number | null;
}

export interface Calibration {
  /** Mean of (p - y)². */
  brier: number;
  /** Sum over bins of n_b / N · |observed_b - predicted_b|. */
  ece: number;
  bins: ReliabilityBin[];
}

export function brierScore(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < scores.length; i++) sum += ((scores[i] as number) - (labels[i] as number)) ** 2;
  return scores.length === 0 ? Number.NaN : sum / scores.length;
}

export function calibration(scores: ArrayLike<number>, labels: ArrayLike<number>, binCount = 10): Calibration {
  if (scores.length !== labels.length) throw new RangeError(`${scores.length} scores for ${labels.length} labels`);
  const n = new Array<number>(binCount).fill(0);
  const p = new Array<number>(binCount).fill(0);
  const y = new Array<number>(binCount).fill(0);
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i] as number;
    const b = Math.min(binCount - 1, Math.max(0, Math.floor(s * binCount)));
    n[b]! += 1;
    p[b]! += s;
    y[b]! += labels[i] as number;
  }
  const total = scores.length;
  let ece = 0;
  const bins = n.map((count, b): ReliabilityBin => {
    const predicted = count === 0 ? null : p[b]! / count;
    const observed = count === 0 ? null : y[b]! / count;
    if (predicted !== null && observed !== null) ece += (count / total) * Math.abs(observed - predicted);
    return { lo: b / binCount, hi: (b + 1) / binCount, n: count, predicted, observed };
  });
  return { brier: brierScore(scores, labels), ece: total === 0 ? Number.NaN : ece, bins };
}
