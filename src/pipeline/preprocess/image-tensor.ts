/**
 * Pixel values → the model's image tensor, exactly as models/MANIFEST.md "Image preprocessing"
 * says (models/training/preprocess.py does the same in Python; the golden and parity tests
 * compare the two):
 *
 *   1. modality LUT  v = stored * RescaleSlope + RescaleIntercept        (float64)
 *   2. VOI window    dataset first window, percentiles of v, or fixed; linear VOI function of
 *                    PS3.3 C.11.2.1.2.1 to [0, 1]                         (float64)
 *   3. photometric   1 - y where the manifest map says "invert" (MONOCHROME1)  (float64 → float32)
 *   4. resize        stretch, keep-aspect-pad or center-crop (geometry.ts), bilinear or area
 *                    (resize.ts)                                           (float32)
 *   5. range         lo + y * (hi - lo)                                    (float32)
 *   6. normalise     (y - mean[c]) / std[c] per channel, written in the input's layout (float32)
 *
 * Grey data feeds every channel (replicate-grey); `rgb` takes a colour image's own R, G, B planes
 * through steps 1-4 with the window of its luma, and a grey image in all three. Pure: no I/O, no
 * DICOM parsing.
 */
import { TriageError } from '../../domain/errors.ts';
import type { ImageSpec } from '../../config/manifest.ts';
import { resizeGeometry, type ResizeGeometry } from './geometry.ts';
import { percentiles } from './percentile.ts';
import { planResize } from './resize.ts';

export type { ImageSpec, WindowSource } from '../../config/manifest.ts';

type Planes = readonly [ArrayLike<number>, ArrayLike<number>, ArrayLike<number>];

/** Grey values of one frame with the attributes the pipeline reads. */
export interface GreyImage {
  rows: number;
  columns: number;
  /** rows*columns grey stored values, row-major (before the modality LUT); BT.601 luma for colour data. */
  data: ArrayLike<number>;
  photometricInterpretation: string;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  windowCenter?: number;
  windowWidth?: number;
  /** R, G, B planes of a colour image (read only by an `rgb` model). */
  color?: Planes;
}

/** What `readDicom` returns is accepted as is (frame 0 is used). */
export interface DicomImageLike {
  pixel: Omit<GreyImage, 'data' | 'color'>;
  frame(index?: number): ArrayLike<number>;
  colorFrame?(index?: number): Planes | undefined;
}

export interface TensorResult {
  /** One item of the image input: channels × height × width values in the input's layout (float32). */
  tensor: Float32Array;
  source: { rows: number; columns: number };
  window: { center: number; width: number; source: 'dataset' | 'percentile' | 'fixed' };
  /** Where the model's pixels come from in the source (the way back for regions). */
  geometry: ResizeGeometry;
}

function invalidSpec(message: string): TriageError {
  return new TriageError('MANIFEST_INVALID', `image spec: ${message}`, { where: 'preprocess' });
}

/** Checks the spec's values (the manifest schema checks its shape); throws MANIFEST_INVALID. */
export function checkImageSpec(spec: ImageSpec): void {
  const { width, height } = spec.size;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw invalidSpec(`size ${width}x${height} must be positive integers`);
  if (!['stretch', 'keep-aspect-pad', 'center-crop'].includes(spec.resize.mode)) throw invalidSpec(`resize.mode "${String(spec.resize.mode)}" is unknown`);
  if (!['bilinear', 'area'].includes(spec.resize.interpolation)) throw invalidSpec(`resize.interpolation "${String(spec.resize.interpolation)}" is unknown`);
  const sources: readonly string[] = ['dataset-then-percentile', 'dataset', 'percentile', 'fixed'];
  if (!sources.includes(spec.window.source)) throw invalidSpec(`window.source "${String(spec.window.source)}" is unknown`);
  const [lo, hi] = spec.window.percentiles;
  if (!(lo >= 0 && hi <= 100 && lo <= hi)) throw invalidSpec(`window.percentiles [${lo}, ${hi}] must satisfy 0 <= lo <= hi <= 100`);
  if (spec.window.source === 'fixed' && !(Number.isFinite(spec.window.center) && (spec.window.width ?? 0) > 0)) throw invalidSpec('a fixed window needs center and a positive width');
  if (!(spec.range[0] < spec.range[1])) throw invalidSpec(`range [${spec.range[0]}, ${spec.range[1]}] must have lo < hi`);
  const channels = spec.input.channels;
  if (spec.normalize.mean.length !== channels || spec.normalize.std.length !== channels) throw invalidSpec(`normalize needs ${channels} means and stds`);
  if (!spec.normalize.mean.every(Number.isFinite)) throw invalidSpec('normalize.mean must be finite');
  if (!spec.normalize.std.every((s) => Number.isFinite(s) && s > 0)) throw invalidSpec('normalize.std must be positive');
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

function imageOf(input: GreyImage | DicomImageLike, wantColor: boolean): GreyImage {
  if ('frame' in input && typeof input.frame === 'function') {
    const color = wantColor ? input.colorFrame?.(0) : undefined;
    return { ...input.pixel, data: input.frame(0), ...(color ? { color } : {}) };
  }
  return input as GreyImage;
}

function unsupportedImage(message: string, cause?: unknown): TriageError {
  return new TriageError('DICOM_UNSUPPORTED_IMAGE', message, { where: 'preprocess', ...(cause === undefined ? {} : { cause }) });
}

/** Step 2's window: from the data set, the percentiles of the modality values, or the manifest. */
function windowOf(img: GreyImage, spec: ImageSpec, slope: number, intercept: number): TensorResult['window'] {
  const { window } = spec;
  if (window.source === 'fixed') return { center: window.center as number, width: window.width as number, source: 'fixed' };
  const hasDatasetWindow = Number.isFinite(img.windowCenter) && Number.isFinite(img.windowWidth);
  if (window.source !== 'percentile' && hasDatasetWindow) return { center: img.windowCenter as number, width: img.windowWidth as number, source: 'dataset' };
  if (window.source === 'dataset') throw unsupportedImage('the model needs the data set window and this instance has no WindowCenter/WindowWidth');
  let stats: number[];
  try {
    stats = percentiles(img.data, window.percentiles, (s) => s * slope + intercept, slope < 0);
  } catch (err) {
    throw unsupportedImage(`cannot compute the window: ${(err as Error).message}`, err);
  }
  const lo = stats[0] as number;
  const hi = stats[1] as number;
  return { center: (lo + hi) / 2, width: Math.max(hi - lo, 1), source: 'percentile' };
}

/** Steps 1-6 of the manifest's image preprocessing. */
export function imageToTensor(input: GreyImage | DicomImageLike, spec: ImageSpec): TensorResult {
  checkImageSpec(spec);
  const img = imageOf(input, spec.input.color === 'rgb');
  const { rows, columns, data } = img;
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 1 || columns < 1 || data.length !== rows * columns) {
    throw unsupportedImage(`image ${rows}x${columns} with ${data.length} values`);
  }

  // 1. Modality LUT.
  const slope = spec.modalityLut ? (img.rescaleSlope ?? 1) : 1;
  const intercept = spec.modalityLut ? (img.rescaleIntercept ?? 0) : 0;
  if (!Number.isFinite(slope) || !Number.isFinite(intercept)) throw unsupportedImage(`RescaleSlope ${slope} / RescaleIntercept ${intercept} are not finite`);

  // 2. Window (of the grey values; a colour image's luma).
  const window = windowOf(img, spec, slope, intercept);

  // 2-4. VOI to [0, 1] and the photometric action on the source pixels the resize reads, then the resize.
  const invert = spec.photometric[img.photometricInterpretation] === 'invert';
  const c = window.center - 0.5;
  const half = (window.width - 1) / 2;
  const voi = { slope, intercept, lower: c - half, upper: c + half, c, denom: Math.max(window.width - 1, 1), invert };
  const { width, height } = spec.size;
  const geometry = resizeGeometry({ rows, columns }, spec.size, spec.resize.mode);
  const plan = planResize(rows, columns, spec.size, geometry, spec.resize.interpolation);
  const sources = spec.input.color === 'rgb' && img.color ? img.color : [data];
  const planes = sources.map((plane) => {
    if (plane.length !== rows * columns) throw unsupportedImage(`a colour plane has ${plane.length} values for ${rows}x${columns}`);
    const grid = new Float32Array(plan.sourceRows.length * plan.sourceCols.length);
    compactVoi(plane, columns, plan.sourceRows, plan.sourceCols, grid, voi);
    return plan.apply(grid, spec.resize.pad);
  });

  // 5-6. Range, then per-channel normalisation (float32, as torch does), in the input's layout.
  const f = Math.fround;
  const channels = spec.input.channels;
  const n = width * height;
  const tensor = new Float32Array(channels * n);
  const [lo, hi] = spec.range;
  const identityRange = lo === 0 && hi === 1;
  const span = f(hi - lo);
  const nhwc = spec.input.layout === 'NHWC';
  for (let ch = 0; ch < channels; ch++) {
    const plane = planes[Math.min(ch, planes.length - 1)] as Float32Array;
    const mean = f(spec.normalize.mean[ch] as number);
    const std = f(spec.normalize.std[ch] as number);
    for (let i = 0; i < n; i++) {
      const y = identityRange ? (plane[i] as number) : f(lo + f((plane[i] as number) * span));
      tensor[nhwc ? i * channels + ch : ch * n + i] = f(f(y - mean) / std);
    }
  }
  return { tensor, source: { rows, columns }, window, geometry };
}

/** Channel `channel` of one item's tensor as a height × width plane (still normalised). */
export function tensorPlane(tensor: Float32Array, spec: Pick<ImageSpec, 'input' | 'size'>, channel = 0): Float32Array {
  const channels = spec.input.channels;
  const n = spec.size.width * spec.size.height;
  if (tensor.length !== channels * n) throw new RangeError(`the tensor has ${tensor.length} values, the input takes ${channels * n}`);
  if (spec.input.layout === 'NCHW') return tensor.subarray(channel * n, (channel + 1) * n);
  const plane = new Float32Array(n);
  for (let i = 0; i < n; i++) plane[i] = tensor[i * channels + channel] as number;
  return plane;
}

/**
 * The mean and std that take a channel of the tensor back to the window's [0, 1] in one step:
 * (t * std + mean - lo) / (hi - lo), the inverse of steps 5-6 (for the worklist pictures).
 */
export function unnormalizeOf(spec: Pick<ImageSpec, 'range' | 'normalize'>, channel = 0): { mean: number; std: number } {
  const [lo, hi] = spec.range;
  const span = hi - lo;
  return { mean: ((spec.normalize.mean[channel] as number) - lo) / span, std: (spec.normalize.std[channel] as number) / span };
}
