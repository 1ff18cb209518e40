/**
 * Percentiles exactly as numpy.percentile(a, q) with its default method ("linear", Hyndman &
 * Fan type 7), found by selection rather than a full sort. Pure.
 */

/** Integer inputs whose value range is at most this use a counting histogram (O(n)). */
const HISTOGRAM_MAX_RANGE = 1 << 22;

/**
 * The values at sorted positions `ks` (0-based, any order, repeats allowed) of `values`,
 * without sorting all of it: a counting histogram for integer arrays of modest range,
 * Floyd–Rivest selection on a copy otherwise. Throws on NaN.
 */
export function orderStatistics(values: ArrayLike<number>, ks: readonly number[]): number[] {
  const n = values.length;
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 0 || k >= n) throw new RangeError(`order statistic ${k} of ${n} values`);
  }
  if (ks.length === 0) return [];
  if (values instanceof Int32Array || values instanceof Int16Array || values instanceof Uint16Array || values instanceof Uint8Array || values instanceof Int8Array) {
    // The range first, then counts over just that range: a 12-bit image needs 4096 bins, and
    // allocating (and zeroing) counts for the whole 16-bit domain instead cost more than both passes.
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (max - min <= HISTOGRAM_MAX_RANGE) return byHistogram(values, ks, min, max);
  }
  return bySelection(values, ks);
}

/** The values at sorted positions ks, from counts of value (offset + bin). */
function fromCounts(counts: Uint32Array, ks: readonly number[], offset: number): number[] {
  const order = ks.map((k, i) => ({ k, i })).sort((a, b) => a.k - b.k);
  const out = new Array<number>(ks.length);
  let bin = 0;
  let below = 0; // values in bins < bin
  for (const { k, i } of order) {
    while (below + counts[bin]! <= k) {
      below += counts[bin]!;
      bin++;
    }
    out[i] = bin + offset;
  }
  return out;
}

function byHistogram(values: ArrayLike<number>, ks: readonly number[], min: number, max: number): number[] {
  const counts = new Uint32Array(max - min + 1);
  const n = values.length;
  for (let i = 0; i < n; i++) counts[values[i]! - min]!++;
  return fromCounts(counts, ks, min);
}

function bySelection(values: ArrayLike<number>, ks: readonly number[]): number[] {
  const n = values.length;
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    if (Number.isNaN(v)) throw new RangeError('NaN among the values');
    a[i] = v;
  }
  const order = ks.map((k, i) => ({ k, i })).sort((x, y) => x.k - y.k);
  const out = new Array<number>(ks.length);
  let left = 0;
  for (const { k, i } of order) {
    // After select(k) everything at >= k is >= a[k], so later (larger) ks search [k, n).
    floydRivest(a, k, left, n - 1);
    out[i] = a[k] as number;
    left = k;
  }
  return out;
}

/**
 * Floyd & Rivest (1975) SELECT: reorders a[left..right] so that a[k] holds the value it
 * would have after sorting, everything before it is <= and everything after is >=.
 */
function floydRivest(a: Float64Array, k: number, left: number, right: number): void {
  while (right > left) {
    if (right - left > 600) {
      const n = right - left + 1;
      const m = k - left + 1;
      const z = Math.log(n);
      const s = 0.5 * Math.exp((2 * z) / 3);
      const sd = 0.5 * Math.sqrt((z * s * (n - s)) / n) * (m - n / 2 < 0 ? -1 : 1);
      const newLeft = Math.max(left, Math.floor(k - (m * s) / n + sd));
      const newRight = Math.min(right, Math.floor(k + ((n - m) * s) / n + sd));
      floydRivest(a, k, newLeft, newRight);
    }
    const t = a[k] as number;
    let i = left;
    let j = right;
    swap(a, left, k);
    if ((a[right] as number) > t) swap(a, left, right);
    while (i < j) {
      swap(a, i, j);
      i++;
      j--;
      while ((a[i] as number) < t) i++;
      while ((a[j] as number) > t) j--;
    }
    if (a[left] === t) swap(a, left, j);
    else {
      j++;
      swap(a, j, right);
    }
    if (j <= k) left = j + 1;
    if (k <= j) right = j - 1;
  }
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i] as number;
  a[i] = a[j] as number;
  a[j] = t;
}

/** Where numpy's "linear" method looks for percentile q (0..100) of n values. */
export function percentilePositions(n: number, q: number): { previous: number; next: number; gamma: number } {
  if (n < 1) throw new RangeError('percentile of no values');
  if (!(q >= 0 && q <= 100)) throw new RangeError(`percentile ${q} is outside [0, 100]`);
  const virtual = (n - 1) * (q / 100);
  if (virtual >= n - 1) return { previous: n - 1, next: n - 1, gamma: 0 };
  const previous = Math.floor(virtual);
  return { previous, next: previous + 1, gamma: virtual - previous };
}

/** numpy's _lerp: a + (b-a)*t, computed from the nearer end for t >= 0.5. */
export function lerp(a: number, b: number, t: number): number {
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/**
 * numpy.percentile(map(values), qs) (method "linear"), without mapping every value: the order
 * statistics of `values` are found first and only they are mapped. `map` must be monotone —
 * non-decreasing by default, or non-increasing with `mapDecreases` (a modality LUT with a
 * negative slope) — which makes the result identical to the percentile of the mapped values.
 */
export function percentiles(
  values: ArrayLike<number>,
  qs: readonly number[],
  map: (v: number) => number = (v) => v,
  mapDecreases = false,
): number[] {
  const n = values.length;
  const positions = qs.map((q) => percentilePositions(n, q));
  const at = (k: number): number => (mapDecreases ? n - 1 - k : k);
  const stats = orderStatistics(
    values,
    positions.flatMap((p) => [at(p.previous), at(p.next)]),
  );
  return positions.map((p, i) => lerp(map(stats[2 * i] as number), map(stats[2 * i + 1] as number), p.gamma));
}
