/**
 * Grey pixel values → the model's image tensor, exactly as models/MANIFEST.md "Image
 * preprocessing" says (models/training/preprocess.py does the same in Python;
 * test/unit/pipeline/preprocess/golden.test.ts compares the two):
 *
 *   1. modality LUT  v = stored * RescaleSlope + RescaleIntercept        (float64)
 *   2. VOI window    dataset first window, else percentiles of v; linear VOI function of
 *                    PS3.3 C.11.2.1.2.1 to [0, 1]                         (float64)
 *   3. photometric   1 - y where the manifest map says "invert" (MONOCHROME1)  (float64 → float32)
 *   4. resize        bilinear-half-pixel = torch interpolate(bilinear, align_corners=False,
 *                    antialias=False)                                      (float32)
 *   5. normalise     (y - mean) / std                                      (float32)
 *
 * Pure: no I/O, no DICOM parsing.
 */
import { TriageError } from '../../domain/errors.ts';
import { percentiles } from './percentile.ts';

export type WindowSource = 'dataset-then-percentile' | 'dataset' | 'percentile';
export type ResizeKernel = 'bilinear-half-pixel';

/** The manifest's `image` object (models/MANIFEST.md). */
export interface ImageSpec {
  /** Output is size×size. */
  size: number;
  /** Apply RescaleSlope/RescaleIntercept when present. */
  modalityLut: boolean;
  window: {
    source: WindowSource;
    /** [lo, hi] percentiles (0..100) for the computed window. */
    percentiles: readonly [number, number];
  };
  /**
   * Per Photometric Interpretation. One absent from the map is kept (not inverted), as in
   * models/training/preprocess.py: the manifest must say MONOCHROME1: "invert" explicitly.
   */
  photometric: Readonly<Record<string, 'invert' | 'keep'>>;
  resize: ResizeKernel;
  normalize: { mean: number; std: number };
}

/** Grey values of one frame with the attributes the pipeline reads. */
export interface GreyImage {
  rows: number;
  columns: number;
  /** rows*columns grey stored values, row-major (before the modality LUT). */
  data: ArrayLike<number>;
  photometricInterpretation: string;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  windowCenter?: number;
  windowWidth?: number;
}

/** What `readDicom` returns is accepted as is (frame 0 is used). */
export interface DicomImageLike {
  pixel: Omit<GreyImage, 'data'>;
  frame(index?: number): ArrayLike<number>;
}

export interface TensorResult {
  /** size*size float32, row-major (the N=1, C=1 slice of [N, 1, size, size]). */
  tensor: Float32Array;
  source: { rows: number; columns: number };
  window: { center: number; width: number; source: 'dataset' | 'percentile' };
}

/** Box in pixel-edge coordinates: x0 ≤ x < x1 columns, y0 ≤ y < y1 rows. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

const RESIZE_KERNELS: Record<ResizeKernel, typeof planBilinearHalfPixel> = {
  'bilinear-half-pixel': planBilinearHalfPixel,
};

function invalidSpec(message: string): TriageError {
  return new TriageError('MANIFEST_INVALID', `image spec: ${message}`, { where: 'preprocess' });
}

/** Checks the spec's values (the zod schema checks its shape); throws MANIFEST_INVALID. */
export function checkImageSpec(spec: ImageSpec): void {
  if (!Number.isInteger(spec.size) || spec.size < 1) throw invalidSpec(`size ${spec.size} must be a positive integer`);
  if (!Object.hasOwn(RESIZE_KERNELS, spec.resize)) {
    throw invalidSpec(`resize kernel "${String(spec.resize)}" is unknown (known: ${Object.keys(RESIZE_KERNELS).join(', ')})`);
  }
  const sources: readonly string[] = ['dataset-then-percentile', 'dataset', 'percentile'];
  if (!sources.includes(spec.window.source)) throw invalidSpec(`window.source "${String(spec.window.source)}" is unknown`);
  const [lo, hi] = spec.window.percentiles;
  if (!(lo >= 0 && hi <= 100 && lo <= hi)) throw invalidSpec(`window.percentiles [${lo}, ${hi}] must satisfy 0 <= lo <= hi <= 100`);
  if (!Number.isFinite(spec.normalize.mean)) throw invalidSpec('normalize.mean must be finite');
  if (!(Number.isFinite(spec.normalize.std) && spec.normalize.std > 0)) throw invalidSpec('normalize.std must be positive');
  for (const [pi, action] of Object.entries(spec.photometric)) {
    if (action !== 'invert' && action !== 'keep') throw invalidSpec(`photometric.${pi} "${String(action)}" must be invert or keep`);
  }
}

/**
 * Linear VOI function of PS3.3 C.11.2.1.2.1, output in [0, 1]:
 * 0 if v <= c - 0.5 - (w-1)/2; 1 if v > c - 0.5 + (w-1)/2; else ((v - (c-0.5)) / (w-1)) + 0.5,
 * with w-1 floored at 1 in the division.
 */
export function voiLinear(v: number, center: number, width: number): number {
  const c = center - 0.5;
  const half = (width - 1) / 2;
  if (v <= c - half) return 0;
  if (v > c + half) return 1;
  return (v - c) / Math.max(width - 1, 1) + 0.5;
}

/**
 * Which source pixels a resize reads and how it blends them. Bilinear resampling reads at
 * most two source rows per output row and two columns per output column, so steps 1-3 need
 * only be computed on that grid (for 2048² → 224², 448×448 source pixels instead of 4 M):
 * the result is bit-identical because every source pixel is computed independently.
 */
export interface ResizePlan {
  /** Source rows read, ascending. */
  sourceRows: Int32Array;
  /** Source columns read, ascending. */
  sourceCols: Int32Array;
  /** Resamples `compact` (sourceRows.length × sourceCols.length, row-major) to the output. */
  apply(compact: Float32Array): Float32Array;
}

/**
 * bilinear-half-pixel: torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
 * antialias=False) on CPU in float32. Source coordinate (i + 0.5) * in/out - 0.5, clamped at
 * 0, neighbour index clamped at in-1; a row blend of two column blends.
 *
 * Rounding follows ATen's generic CPU kernel as compiled for x86-64 (AVX2, where the compiler
 * contracts `a*b + c` into a fused multiply-add): the source coordinate is one rounding of
 * scale*(i+0.5)-0.5, and each blend is fma(t0, w0, t1*w1). Emulated in float64 (the product
 * of two float32 is exact there), this is bit-identical to torch 2.13 on x86-64; without the
 * FMA emulation results differ by up to ~1e-5.
 */
export function planBilinearHalfPixel(rows: number, cols: number, outRows: number, outCols: number = outRows): ResizePlan {
  const xs = axisWeights(cols, outCols);
  const ys = axisWeights(rows, outRows);
  const cx = compactAxis(xs.i0, xs.i1, cols);
  const cy = compactAxis(ys.i0, ys.i1, rows);
  const width = cx.needed.length;
  return {
    sourceRows: cy.needed,
    sourceCols: cx.needed,
    apply(src: Float32Array): Float32Array {
      if (src.length !== cy.needed.length * width) throw new RangeError(`resize: ${src.length} values for the planned grid`);
      // Separable, and the same arithmetic: each source row's column blends are computed once
      // (an output row reads two source rows, and neighbouring output rows share them), then
      // the row blends. fma(x0, w0, x1 * w1): x0*w0 is exact in float64, so one fround is the
      // fused rounding. The typed arrays are locals, not closure fields read per pixel: that
      // halved this loop's time (it runs twice per output pixel).
      const nCols = outCols; // a parameter (mutable, captured): read once, not per pixel
      const w = width;
      const xi0 = cx.i0;
      const xi1 = cx.i1;
      const xw0 = xs.w0;
      const xw1 = xs.w1;
      const nRows = cy.needed.length;
      const across = scratch(nRows * nCols);
      for (let r = 0; r < nRows; r++) {
        const s = r * w;
        const o = r * nCols;
        for (let j = 0; j < nCols; j++) {
          across[o + j] = Math.fround(src[s + xi0[j]!]! * xw0[j]! + Math.fround(src[s + xi1[j]!]! * xw1[j]!));
        }
      }
      const nOut = outRows;
      const out = new Float32Array(outRows * nCols);
      const yi0 = cy.i0;
      const yi1 = cy.i1;
      const yw0 = ys.w0;
      const yw1 = ys.w1;
      for (let i = 0; i < nOut; i++) {
        const t0 = yi0[i]! * nCols;
        const t1 = yi1[i]! * nCols;
        const wy0 = yw0[i]!;
        const wy1 = yw1[i]!;
        const o = i * nCols;
        for (let j = 0; j < nCols; j++) out[o + j] = Math.fround(across[t0 + j]! * wy0 + Math.fround(across[t1 + j]! * wy1));
      }
      return out;
    },
  };
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

/** Resamples a whole rows×cols float32 image with bilinear-half-pixel (see planBilinearHalfPixel). */
export function resizeBilinearHalfPixel(src: Float32Array, rows: number, cols: number, outRows: number, outCols: number = outRows): Float32Array {
  if (src.length !== rows * cols) throw new RangeError(`resize: ${src.length} values for ${rows}x${cols}`);
  const plan = planBilinearHalfPixel(rows, cols, outRows, outCols);
  const w = plan.sourceCols.length;
  const compact = new Float32Array(plan.sourceRows.length * w);
  plan.sourceRows.forEach((r, a) => plan.sourceCols.forEach((c, b) => (compact[a * w + b] = src[r * cols + c]!)));
  return plan.apply(compact);
}

/** The distinct source indices an axis reads, and i0/i1 renumbered into that list. */
function compactAxis(i0: Int32Array, i1: Int32Array, size: number): { needed: Int32Array; i0: Int32Array; i1: Int32Array } {
  const slot = new Int32Array(size).fill(-1);
  for (const k of i0) slot[k] = 0;
  for (const k of i1) slot[k] = 0;
  const needed: number[] = [];
  for (let k = 0; k < size; k++) if (slot[k] === 0) slot[k] = needed.push(k) - 1;
  return { needed: Int32Array.from(needed), i0: i0.map((k) => slot[k]!), i1: i1.map((k) => slot[k]!) };
}

/** Per output index: the two input indices and their float32 weights (ATen's HelperInterpLinear). */
function axisWeights(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; w0: Float32Array; w1: Float32Array } {
  const f = Math.fround;
  const scale = f(inSize / outSize);
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w0 = new Float32Array(outSize);
  const w1 = new Float32Array(outSize);
  for (let k = 0; k < outSize; k++) {
    if (inSize === outSize) {
      // ATen copies when the sizes match.
      i0[k] = k;
      i1[k] = k;
      w0[k] = 1;
      w1[k] = 0;
      continue;
    }
    // fma(scale, k + 0.5, -0.5): the product is exact in float64, so one fround.
    let real = f(scale * (k + 0.5) - 0.5);
    if (real < 0) real = 0;
    const idx = Math.min(Math.floor(real), inSize - 1);
    const lambda = Math.min(Math.max(f(real - idx), 0), 1);
    i0[k] = idx;
    i1[k] = idx + (idx < inSize - 1 ? 1 : 0);
    w1[k] = lambda;
    w0[k] = f(1 - lambda);
  }
  return { i0, i1, w0, w1 };
}

/**
 * Steps 1-3 on the planned grid into `out`. Indexed loops, with the photometric choice taken
 * once: this runs once per source pixel read (~50 k for a small radiograph, 200 k for a large
 * one) and was half the preprocessing time written with for…of and a branch per pixel.
 */
function compactVoi(
  data: ArrayLike<number>,
  columns: number,
  sourceRows: Int32Array,
  sourceCols: Int32Array,
  out: Float32Array,
  v: { slope: number; intercept: number; lower: number; upper: number; c: number; denom: number; invert: boolean },
): void {
  const { slope, intercept, lower, upper, c, denom } = v;
  const nr = sourceRows.length;
  const nc = sourceCols.length;
  const flip = v.invert ? 1 : 0;
  const sign = v.invert ? -1 : 1;
  let k = 0;
  for (let a = 0; a < nr; a++) {
    const base = sourceRows[a]! * columns;
    for (let b = 0; b < nc; b++) {
      const x = (data[base + sourceCols[b]!] as number) * slope + intercept;
      const t = x <= lower ? 0 : x > upper ? 1 : (x - c) / denom + 0.5;
      // flip + sign * t is exactly 1 - t or t (both exact in float64 for t in [0, 1]).
      out[k++] = flip + sign * t;
    }
  }
}

function greyOf(input: GreyImage | DicomImageLike): GreyImage {
  if ('frame' in input && typeof input.frame === 'function') return { ...input.pixel, data: input.frame(0) };
  return input as GreyImage;
}

/** Steps 1-5 of the manifest's image preprocessing. */
export function imageToTensor(input: GreyImage | DicomImageLike, spec: ImageSpec): TensorResult {
  checkImageSpec(spec);
  const img = greyOf(input);
  const { rows, columns, data } = img;
  const n = rows * columns;
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 1 || columns < 1 || data.length !== n) {
    throw new TriageError('DICOM_UNSUPPORTED_IMAGE', `image ${rows}x${columns} with ${data.length} values`, { where: 'preprocess' });
  }

  // 1. Modality LUT.
  const slope = spec.modalityLut ? (img.rescaleSlope ?? 1) : 1;
  const intercept = spec.modalityLut ? (img.rescaleIntercept ?? 0) : 0;
  if (!Number.isFinite(slope) || !Number.isFinite(intercept)) {
    throw new TriageError('DICOM_UNSUPPORTED_IMAGE', `RescaleSlope ${slope} / RescaleIntercept ${intercept} are not finite`, { where: 'preprocess' });
  }
  const modality = (s: number): number => s * slope + intercept;

  // 2. Window.
  let window: TensorResult['window'];
  const hasDatasetWindow = Number.isFinite(img.windowCenter) && Number.isFinite(img.windowWidth);
  if (spec.window.source !== 'percentile' && hasDatasetWindow) {
    window = { center: img.windowCenter as number, width: img.windowWidth as number, source: 'dataset' };
  } else if (spec.window.source === 'dataset') {
    throw new TriageError('DICOM_UNSUPPORTED_IMAGE', 'the model needs the data set window and this instance has no WindowCenter/WindowWidth', {
      where: 'preprocess',
    });
  } else {
    let stats: number[];
    try {
      stats = percentiles(data, spec.window.percentiles, modality, slope < 0);
    } catch (err) {
      throw new TriageError('DICOM_UNSUPPORTED_IMAGE', `cannot compute the window: ${(err as Error).message}`, { cause: err, where: 'preprocess' });
    }
    const lo = stats[0] as number;
    const hi = stats[1] as number;
    window = { center: (lo + hi) / 2, width: Math.max(hi - lo, 1), source: 'percentile' };
  }

  // 2-3. VOI to [0, 1], then the photometric action, stored as float32 — on the source pixels
  // the resize reads (4).
  const invert = spec.photometric[img.photometricInterpretation] === 'invert';
  const c = window.center - 0.5;
  const half = (window.width - 1) / 2;
  const lower = c - half;
  const upper = c + half;
  const denom = Math.max(window.width - 1, 1);
  const plan = RESIZE_KERNELS[spec.resize](rows, columns, spec.size, spec.size);
  const { sourceRows, sourceCols } = plan;
  const y = new Float32Array(sourceRows.length * sourceCols.length);
  compactVoi(data, columns, sourceRows, sourceCols, y, { slope, intercept, lower, upper, c, denom, invert });

  // 4. Resize.
  const resized = plan.apply(y);

  // 5. Normalise (float32, as torch does with a python scalar).
  const f = Math.fround;
  const mean = f(spec.normalize.mean);
  const std = f(spec.normalize.std);
  for (let i = 0; i < resized.length; i++) resized[i] = f(f((resized[i] as number) - mean) / std);

  return { tensor: resized, source: { rows, columns }, window };
}

/**
 * A box in model-input space (size×size, pixel edges) mapped back to the source image:
 * x scaled by columns/size, y by rows/size (the inverse of the half-pixel resize, whose
 * output pixel j covers source [j*cols/size, (j+1)*cols/size)). Pixel-edge coordinates.
 */
export function inverseResize(box: Box, source: { rows: number; columns: number }, size: number): Box {
  const sx = source.columns / size;
  const sy = source.rows / size;
  return { x0: box.x0 * sx, y0: box.y0 * sy, x1: box.x1 * sx, y1: box.y1 * sy };
}

/**
 * Bounding box (pixel edges, x1/y1 exclusive) of the pixels of a size×size map that are
 * >= threshold × the map's maximum; undefined when the map has no positive maximum.
 */
export function saliencyRegion(map: ArrayLike<number>, size: number, threshold: number): Box | undefined {
  if (map.length !== size * size) throw new RangeError(`saliency map has ${map.length} values, not ${size}x${size}`);
  let max = -Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i] as number;
    if (v > max) max = v;
  }
  if (!(max > 0) || !Number.isFinite(max)) return undefined;
  const cut = threshold * max;
  let x0 = size;
  let y0 = size;
  let x1 = -1;
  let y1 = -1;
  for (let r = 0; r < size; r++) {
    for (let col = 0; col < size; col++) {
      if ((map[r * size + col] as number) >= cut) {
        if (col < x0) x0 = col;
        if (col > x1) x1 = col;
        if (r < y0) y0 = r;
        if (r > y1) y1 = r;
      }
    }
  }
  if (x1 < 0) return undefined;
  return { x0, y0, x1: x1 + 1, y1: y1 + 1 };
}
