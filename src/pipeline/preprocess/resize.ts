/**
 * Resampling plans: which source pixels a resize reads, and how it blends them into the output
 * (geometry.ts says where the resampled image sits: stretched, padded or cropped). Pure.
 *
 *   bilinear  torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
 *             antialias=False) on CPU in float32, bit for bit (see planAxisBilinear)
 *   area      torch.nn.functional.interpolate(mode="area") = adaptive_avg_pool2d: output r of an
 *             axis averages source [floor(r*in/out), ceil((r+1)*in/out)) with equal weights
 *             (computed in float64, rounded once)
 *
 * Only the source rows and columns a plan reads need steps 1-3 of the preprocessing (for a
 * bilinear 2048² → 224², 448×448 pixels instead of 4 M): every source pixel is computed on its
 * own, so the result is the same as computing them all.
 */
import type { Interpolation } from '../../config/manifest.ts';
import type { AxisFit, ResizeGeometry } from './geometry.ts';

export interface ResizePlan {
  /** Source rows read, ascending. */
  sourceRows: Int32Array;
  /** Source columns read, ascending. */
  sourceCols: Int32Array;
  /**
   * Resamples `compact` (sourceRows.length × sourceCols.length, row-major) to the output
   * (height × width); outputs outside the resampled image get `pad`.
   */
  apply(compact: Float32Array, pad?: number): Float32Array;
}

/** One axis: the output range that shows the image, and per output in it the source taps (compact indices). */
interface AxisTaps {
  lo: number;
  hi: number;
  /** Source indices read, ascending. */
  needed: Int32Array;
  /** bilinear: two taps and their float32 weights; area: first tap and count. */
  i0: Int32Array;
  i1: Int32Array;
  w0: Float32Array;
  w1: Float32Array;
}

function contentRange(fit: AxisFit, out: number): { lo: number; hi: number } {
  return { lo: Math.max(0, fit.offset), hi: Math.min(out, fit.offset + fit.resized) };
}

/** Source indices marked in `slot` (any value ≠ -1), ascending, and a map from index to compact position. */
function compact(slot: Int32Array): Int32Array {
  const needed: number[] = [];
  for (let k = 0; k < slot.length; k++) if (slot[k] !== -1) slot[k] = needed.push(k) - 1;
  return Int32Array.from(needed);
}

/**
 * ATen's HelperInterpLinear: source coordinate (r + 0.5) * in/resized - 0.5 in one float32
 * rounding (the compiler fuses it into an fma on x86-64), clamped at 0; neighbour index clamped
 * at in-1; weights lambda and 1 - lambda in float32. A copy where the sizes match.
 */
function planAxisBilinear(inSize: number, fit: AxisFit, out: number): AxisTaps {
  const f = Math.fround;
  const { lo, hi } = contentRange(fit, out);
  const n = Math.max(0, hi - lo);
  const i0 = new Int32Array(n);
  const i1 = new Int32Array(n);
  const w0 = new Float32Array(n);
  const w1 = new Float32Array(n);
  const scale = f(inSize / fit.resized);
  for (let k = 0; k < n; k++) {
    const r = lo + k - fit.offset;
    if (inSize === fit.resized) {
      i0[k] = r;
      i1[k] = r;
      w0[k] = 1;
      continue;
    }
    // fma(scale, r + 0.5, -0.5): the product is exact in float64, so one fround.
    let real = f(scale * (r + 0.5) - 0.5);
    if (real < 0) real = 0;
    const idx = Math.min(Math.floor(real), inSize - 1);
    const lambda = Math.min(Math.max(f(real - idx), 0), 1);
    i0[k] = idx;
    i1[k] = idx + (idx < inSize - 1 ? 1 : 0);
    w1[k] = lambda;
    w0[k] = f(1 - lambda);
  }
  const slot = new Int32Array(inSize).fill(-1);
  for (let k = 0; k < n; k++) {
    slot[i0[k]!] = 0;
    slot[i1[k]!] = 0;
  }
  const needed = compact(slot);
  return { lo, hi, needed, i0: i0.map((s) => slot[s]!), i1: i1.map((s) => slot[s]!), w0, w1 };
}

/** adaptive_avg_pool's windows: i0 = compact index of the first source index, i1 = how many. */
function planAxisArea(inSize: number, fit: AxisFit, out: number): AxisTaps {
  const { lo, hi } = contentRange(fit, out);
  const n = Math.max(0, hi - lo);
  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const slot = new Int32Array(inSize).fill(-1);
  for (let k = 0; k < n; k++) {
    const r = lo + k - fit.offset;
    const s = Math.floor((r * inSize) / fit.resized);
    const e = Math.max(s + 1, Math.ceil(((r + 1) * inSize) / fit.resized));
    start[k] = s;
    count[k] = e - s;
    for (let i = s; i < e; i++) slot[i] = 0;
  }
  const needed = compact(slot);
  // Every index of a window is needed, so a window stays contiguous after compaction.
  return { lo, hi, needed, i0: start.map((s) => slot[s]!), i1: count, w0: new Float32Array(0), w1: new Float32Array(0) };
}

let scratchBuffer = new Float32Array(0);

/**
 * The column blends' buffer, reused across calls (grown when needed, never shrunk): a fresh
 * ~200 kB typed array per image made the garbage collector, not the arithmetic, half the
 * resize's time. Safe because `apply` is synchronous and never re-entered.
 */
function scratch(length: number): Float32Array {
  if (scratchBuffer.length < length) scratchBuffer = new Float32Array(length);
  return scratchBuffer;
}

/** A plan for one resize: interpolation, output size and where the resampled image sits in it. */
export function planResize(rows: number, cols: number, size: { width: number; height: number }, geometry: ResizeGeometry, interpolation: Interpolation): ResizePlan {
  const plan = interpolation === 'area' ? planAxisArea : planAxisBilinear;
  const xs = plan(cols, geometry.x, size.width);
  const ys = plan(rows, geometry.y, size.height);
  const apply = interpolation === 'area' ? applyArea : applyBilinear;
  return {
    sourceRows: ys.needed,
    sourceCols: xs.needed,
    apply(src: Float32Array, pad = 0): Float32Array {
      if (src.length !== ys.needed.length * xs.needed.length) throw new RangeError(`resize: ${src.length} values for the planned grid`);
      const out = new Float32Array(size.width * size.height);
      if (xs.hi - xs.lo < size.width || ys.hi - ys.lo < size.height) out.fill(pad);
      apply(src, xs, ys, size.width, out);
      return out;
    },
  };
}

/**
 * Separable, in ATen's arithmetic: each source row's column blends once (an output row reads
 * two source rows, and neighbouring output rows share them), then the row blends, each
 * fma(x0, w0, x1 * w1) (x0*w0 is exact in float64, so one fround is the fused rounding). The
 * typed arrays are locals, not object fields read per pixel: that halved this loop's time.
 */
function applyBilinear(src: Float32Array, xs: AxisTaps, ys: AxisTaps, outWidth: number, out: Float32Array): void {
  const w = xs.needed.length;
  const nCols = xs.hi - xs.lo;
  const { i0: xi0, i1: xi1, w0: xw0, w1: xw1 } = xs;
  const nRows = ys.needed.length;
  const across = scratch(nRows * nCols);
  for (let r = 0; r < nRows; r++) {
    const s = r * w;
    const o = r * nCols;
    for (let j = 0; j < nCols; j++) across[o + j] = Math.fround(src[s + xi0[j]!]! * xw0[j]! + Math.fround(src[s + xi1[j]!]! * xw1[j]!));
  }
  const { i0: yi0, i1: yi1, w0: yw0, w1: yw1 } = ys;
  const x0 = xs.lo;
  for (let i = 0; i < ys.hi - ys.lo; i++) {
    const t0 = yi0[i]! * nCols;
    const t1 = yi1[i]! * nCols;
    const wy0 = yw0[i]!;
    const wy1 = yw1[i]!;
    const o = (ys.lo + i) * outWidth + x0;
    for (let j = 0; j < nCols; j++) out[o + j] = Math.fround(across[t0 + j]! * wy0 + Math.fround(across[t1 + j]! * wy1));
  }
}

function applyArea(src: Float32Array, xs: AxisTaps, ys: AxisTaps, outWidth: number, out: Float32Array): void {
  const w = xs.needed.length;
  const nCols = xs.hi - xs.lo;
  const nRows = ys.needed.length;
  const across = new Float64Array(nRows * nCols);
  for (let r = 0; r < nRows; r++) {
    for (let j = 0; j < nCols; j++) {
      const first = r * w + xs.i0[j]!;
      const count = xs.i1[j]!;
      let sum = 0;
      for (let k = 0; k < count; k++) sum += src[first + k]!;
      across[r * nCols + j] = sum / count;
    }
  }
  for (let i = 0; i < ys.hi - ys.lo; i++) {
    const first = ys.i0[i]!;
    const count = ys.i1[i]!;
    const o = (ys.lo + i) * outWidth + xs.lo;
    for (let j = 0; j < nCols; j++) {
      let sum = 0;
      for (let k = 0; k < count; k++) sum += across[(first + k) * nCols + j]!;
      out[o + j] = Math.fround(sum / count);
    }
  }
}

/** Stretch, bilinear: the reference model's `bilinear-half-pixel`. */
export function planBilinearHalfPixel(rows: number, cols: number, outRows: number, outCols: number = outRows): ResizePlan {
  return planResize(rows, cols, { width: outCols, height: outRows }, { x: { resized: outCols, offset: 0 }, y: { resized: outRows, offset: 0 } }, 'bilinear');
}

/** Resamples a whole rows×cols float32 image with a plan's kernel (see planResize). */
export function resizeWith(plan: ResizePlan, src: Float32Array, rows: number, cols: number, pad = 0): Float32Array {
  if (src.length !== rows * cols) throw new RangeError(`resize: ${src.length} values for ${rows}x${cols}`);
  const w = plan.sourceCols.length;
  const grid = new Float32Array(plan.sourceRows.length * w);
  plan.sourceRows.forEach((r, a) => plan.sourceCols.forEach((c, b) => (grid[a * w + b] = src[r * cols + c]!)));
  return plan.apply(grid, pad);
}

/** Resamples a whole rows×cols float32 image with bilinear-half-pixel (see planBilinearHalfPixel). */
export function resizeBilinearHalfPixel(src: Float32Array, rows: number, cols: number, outRows: number, outCols: number = outRows): Float32Array {
  return resizeWith(planBilinearHalfPixel(rows, cols, outRows, outCols), src, rows, cols);
}
