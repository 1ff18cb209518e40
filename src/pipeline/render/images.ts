/**
 * PNG rendering of what the model saw, for the worklist page: a grey thumbnail of the model
 * input and the same image with the saliency maps of the positive findings overlaid as a heat
 * map. Pure with respect to I/O (sharp only encodes); the pipeline stores what it returns.
 *
 * The saliency maps are the model's attention weights (models/README.md), each normalised to
 * its maximum: they show where the model looked, not a validated localisation.
 */
import sharp from 'sharp';
import { TriageError } from '../../domain/errors.ts';

export interface Normalize {
  mean: number;
  std: number;
}

/** Map values at or below this are not drawn; the overlay's opacity grows from here to 1. */
export const OVERLAY_FLOOR = 0.2;
/** Opacity of the overlay where the map is 1. */
export const OVERLAY_MAX_ALPHA = 0.6;

/** Colour stops (value, r, g, b) of the heat map: blue → cyan → yellow → orange → red. */
const STOPS: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 70, 255],
  [0.35, 0, 220, 220],
  [0.6, 255, 230, 0],
  [0.8, 255, 120, 0],
  [1, 255, 0, 0],
];

function checkSize(what: string, length: number, size: number): void {
  if (!Number.isInteger(size) || size <= 0) throw new TriageError('INTERNAL', `render: size must be a positive integer, got ${size}`, { where: 'render' });
  if (length !== size * size) {
    throw new TriageError('INTERNAL', `render: ${what} has ${length} values, expected ${size}×${size} = ${size * size}`, { where: 'render' });
  }
}

/**
 * zlib level of the worklist PNGs: 6 (zlib's default) makes them a few percent larger than 9
 * and takes a fraction of its time, which every study paid on the write path.
 */
const PNG_COMPRESSION = 6;

/** The model-input tensor back to 8-bit grey: un-normalise (y·std + mean, the window's [0,1]) and clamp. */
export function tensorToGrey(tensor: Float32Array, normalize: Normalize): Uint8Array {
  const n = tensor.length;
  const grey = new Uint8Array(n);
  const { std, mean } = normalize;
  for (let i = 0; i < n; i++) {
    const y = (tensor[i] as number) * std + mean;
    // Comparisons instead of isFinite/min/max per pixel (twice per study, 50 k pixels): NaN
    // fails both tests (0); +Infinity is not a value either (0).
    grey[i] = y > 0 ? (y >= 1 ? (y === Infinity ? 0 : 255) : Math.round(y * 255)) : 0;
  }
  return grey;
}

/** The heat-map colour of a value in [0,1] (clamped). */
export function heatColour(value: number): [number, number, number] {
  const v = Math.min(1, Math.max(0, Number.isFinite(value) ? value : 0));
  for (let s = 1; s < STOPS.length; s++) {
    const hi = STOPS[s] as readonly [number, number, number, number];
    if (v <= hi[0]) {
      const lo = STOPS[s - 1] as readonly [number, number, number, number];
      const t = (v - lo[0]) / (hi[0] - lo[0]);
      return [Math.round(lo[1] + t * (hi[1] - lo[1])), Math.round(lo[2] + t * (hi[2] - lo[2])), Math.round(lo[3] + t * (hi[3] - lo[3]))];
    }
  }
  return [255, 0, 0];
}

/**
 * Grey pixels with a heat map blended over them, as interleaved RGB. `heat` is in [0,1];
 * values ≤ OVERLAY_FLOOR leave the grey pixel as it is.
 */
export function overlayHeat(grey: Uint8Array, heat: Float32Array): Uint8Array {
  const rgb = new Uint8Array(grey.length * 3);
  for (let i = 0; i < grey.length; i++) {
    const g = grey[i] as number;
    const h = heat[i] as number;
    const alpha = h > OVERLAY_FLOOR ? (Math.min(1, h) - OVERLAY_FLOOR) / (1 - OVERLAY_FLOOR) * OVERLAY_MAX_ALPHA : 0;
    if (alpha === 0) {
      rgb[3 * i] = g;
      rgb[3 * i + 1] = g;
      rgb[3 * i + 2] = g;
      continue;
    }
    const [r, gg, b] = heatColour(h);
    rgb[3 * i] = Math.round(g * (1 - alpha) + r * alpha);
    rgb[3 * i + 1] = Math.round(g * (1 - alpha) + gg * alpha);
    rgb[3 * i + 2] = Math.round(g * (1 - alpha) + b * alpha);
  }
  return rgb;
}

/**
 * Grey PNG (8-bit, size×size) of the model input.
 * @param tensor size*size float32, row-major, normalised with `normalize` (the preprocess output)
 */
export async function renderThumbnail(tensor: Float32Array, size: number, normalize: Normalize): Promise<Buffer> {
  checkSize('tensor', tensor.length, size);
  const grey = tensorToGrey(tensor, normalize);
  return sharp(grey, { raw: { width: size, height: size, channels: 1 } }).toColourspace('b-w').png({ compressionLevel: PNG_COMPRESSION }).toBuffer();
}

/**
 * RGB PNG (size×size) of the model input with the saliency maps of the findings in `which`
 * overlaid as a heat map (their pixel-wise maximum). With `which` empty it is the grey image
 * in RGB: nothing positive, nothing highlighted.
 * @param maps K maps of size*size in [0,1] (the model's saliency output, in model-input space)
 * @param which indices into `maps` of the positive findings
 */
export async function renderSaliency(
  tensor: Float32Array,
  size: number,
  normalize: Normalize,
  maps: readonly Float32Array[],
  which: readonly number[],
): Promise<Buffer> {
  checkSize('tensor', tensor.length, size);
  const heat = new Float32Array(size * size);
  for (const k of which) {
    const map = maps[k];
    if (!map) throw new TriageError('INTERNAL', `render: no saliency map ${k} (the model gave ${maps.length})`, { where: 'render' });
    checkSize(`saliency map ${k}`, map.length, size);
    for (let i = 0; i < heat.length; i++) {
      const v = map[i] as number;
      if (v > (heat[i] as number)) heat[i] = v;
    }
  }
  const rgb = overlayHeat(tensorToGrey(tensor, normalize), heat);
  return sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png({ compressionLevel: PNG_COMPRESSION }).toBuffer();
}
