/**
 * The pixels of the worklist pictures: the model input back to grey, and a heat map blended
 * over it (picture-source.ts keeps the planes and encodes the PNGs). Pure.
 *
 * The saliency maps are the model's attention weights (models/README.md), each normalised to
 * its maximum: they show where the model looked, not a validated localisation.
 */

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
