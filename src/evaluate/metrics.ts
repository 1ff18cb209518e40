/**
 * Classification metrics for the evaluate command. Pure functions over (score, label) pairs.
 */

export interface BinaryMetrics {
  auroc: number;
  f1: number;
  precision: number;
  recall: number;
  accuracy: number;
}

/** AUROC as the Mann–Whitney U statistic with ties counted as one half. NaN when a class is absent. */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (scores[a] as number) - (scores[b] as number));
  // Average ranks over ties.
  const ranks = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1] as number] === scores[order[i] as number]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k] as number] = rank;
    i = j + 1;
  }
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] === 1) {
      pos++;
      rankSum += ranks[i] as number;
    }
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return Number.NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

export function thresholdMetrics(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number): Omit<BinaryMetrics, 'auroc'> {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const predicted = (scores[i] as number) >= threshold;
    const actual = labels[i] === 1;
    if (predicted && actual) tp++;
    else if (predicted) fp++;
    else if (actual) fn++;
    else tn++;
  }
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1, accuracy: (tp + tn) / scores.length };
}

/** A small seeded PRNG (mulberry32) so bootstrap intervals are reproducible run to run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Percentile bootstrap 95% interval of the macro AUROC: cases are resampled with replacement
 * (all findings of a case together); resamples in which a finding has only one class are skipped.
 */
export function bootstrapMacroAurocCi(
  scores: readonly number[][],
  labels: readonly number[][],
  resamples = 1000,
  seed = 20261128,
): [number, number] {
  const n = scores.length;
  const k = scores[0]?.length ?? 0;
  const random = seededRandom(seed);
  const values: number[] = [];
  const s = new Float64Array(n);
  const l = new Float64Array(n);
  for (let r = 0; r < resamples; r++) {
    const picks = Array.from({ length: n }, () => Math.floor(random() * n));
    let sum = 0;
    let ok = true;
    for (let f = 0; f < k && ok; f++) {
      picks.forEach((p, i) => {
        s[i] = scores[p]?.[f] as number;
        l[i] = labels[p]?.[f] as number;
      });
      const a = auroc(s, l);
      if (Number.isNaN(a)) ok = false;
      else sum += a;
    }
    if (ok) values.push(sum / k);
  }
  values.sort((a, b) => a - b);
  const at = (q: number): number => values[Math.min(values.length - 1, Math.max(0, Math.round(q * (values.length - 1))))] ?? Number.NaN;
  return [at(0.025), at(0.975)];
}
