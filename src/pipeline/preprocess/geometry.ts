/**
 * Where the model's input pixels come from in the source image, for each resize mode, and the
 * way back: a saliency region found in model-input space becomes a box on the source pixels
 * (the SR's SCOORD and the FHIR region). Pure.
 *
 * Each axis is described by the size the source is resampled to (`resized`) and where that
 * resampled strip sits in the output (`offset`): output index j shows resampled index j - offset,
 * and shows padding where that falls outside [0, resized).
 *
 *   stretch          resized = out,                       offset 0
 *   keep-aspect-pad  scale s = min(W/cols, H/rows); the side that decides s gets out exactly, the
 *                    other round(in * s) (half to even, Python's round); offset = floor((out -
 *                    resized) / 2) ≥ 0 — PIL's ImageOps.pad with its default centring
 *   center-crop      scale s = max(W/cols, H/rows); the side that decides s gets out exactly, the
 *                    other floor(in * s) (torchvision Resize); offset = -round((resized - out) / 2)
 *                    (torchvision CenterCrop) ≤ 0
 */
import type { ResizeMode } from '../../config/manifest.ts';

/** Box in pixel-edge coordinates: x0 ≤ x < x1 columns, y0 ≤ y < y1 rows. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface AxisFit {
  /** The length the source axis is resampled to. */
  resized: number;
  /** Output index of resampled index 0 (negative when cropped). */
  offset: number;
}

export interface ResizeGeometry {
  x: AxisFit;
  y: AxisFit;
}

/** Python's round(): half to even, so offsets agree with the Python side. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function resizeGeometry(source: { rows: number; columns: number }, size: { width: number; height: number }, mode: ResizeMode): ResizeGeometry {
  const { rows, columns } = source;
  const { width, height } = size;
  switch (mode) {
    case 'stretch':
      return { x: { resized: width, offset: 0 }, y: { resized: height, offset: 0 } };
    case 'keep-aspect-pad': {
      const byWidth = width / columns <= height / rows;
      const rw = byWidth ? width : Math.max(1, Math.min(width, roundHalfEven((columns * height) / rows)));
      const rh = byWidth ? Math.max(1, Math.min(height, roundHalfEven((rows * width) / columns))) : height;
      return { x: { resized: rw, offset: Math.floor((width - rw) / 2) }, y: { resized: rh, offset: Math.floor((height - rh) / 2) } };
    }
    case 'center-crop': {
      const byWidth = width / columns >= height / rows;
      const rw = byWidth ? width : Math.max(width, Math.floor((columns * height) / rows));
      const rh = byWidth ? Math.max(height, Math.floor((rows * width) / columns)) : height;
      // 0 - r, not -r: an uncropped axis has offset 0, not -0 (Object.is, and so deep equality, tell them apart).
      return { x: { resized: rw, offset: 0 - roundHalfEven((rw - width) / 2) }, y: { resized: rh, offset: 0 - roundHalfEven((rh - height) / 2) } };
    }
    default: {
      const never: never = mode;
      throw new Error(`unknown resize mode ${String(never)}`);
    }
  }
}

/**
 * A box in model-input space (pixel edges) mapped back to the source image: per axis, subtract
 * the offset and scale by in/resized (resampled pixel r covers source [r*in/resized,
 * (r+1)*in/resized)), then clamp to the image — a box partly in the padding keeps its part on
 * the image; one wholly in the padding (or cropped away) has none and gives undefined.
 *
 * `size` alone (a number or {width, height}) means stretch, as schema 1 manifests resize.
 */
export function inverseResize(
  box: Box,
  source: { rows: number; columns: number },
  size: number | { width: number; height: number },
  mode: ResizeMode = 'stretch',
): Box | undefined {
  const out = typeof size === 'number' ? { width: size, height: size } : size;
  const g = resizeGeometry(source, out, mode);
  const along = (v: number, fit: AxisFit, n: number): number => Math.min(n, Math.max(0, ((v - fit.offset) * n) / fit.resized));
  const mapped = {
    x0: along(box.x0, g.x, source.columns),
    x1: along(box.x1, g.x, source.columns),
    y0: along(box.y0, g.y, source.rows),
    y1: along(box.y1, g.y, source.rows),
  };
  return mapped.x1 > mapped.x0 && mapped.y1 > mapped.y0 ? mapped : undefined;
}

/**
 * Bounding box (pixel edges, x1/y1 exclusive) of the pixels of a width×height map that are
 * >= threshold × the map's maximum; undefined when the map has no positive maximum.
 */
export function saliencyRegion(map: ArrayLike<number>, width: number, threshold: number, height: number = width): Box | undefined {
  if (map.length !== width * height) throw new RangeError(`saliency map has ${map.length} values, not ${width}x${height}`);
  let max = -Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i] as number;
    if (v > max) max = v;
  }
  if (!(max > 0) || !Number.isFinite(max)) return undefined;
  const cut = threshold * max;
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let r = 0; r < height; r++) {
    for (let col = 0; col < width; col++) {
      if ((map[r * width + col] as number) >= cut) {
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
