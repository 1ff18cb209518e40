import { describe, expect, it } from 'vitest';
import { TriageError } from '../../../../src/domain/errors.ts';
import { type GreyImage, imageToTensor, voiLinear } from '../../../../src/pipeline/preprocess/image-tensor.ts';
import { inverseResize, saliencyRegion } from '../../../../src/pipeline/preprocess/geometry.ts';
import { resizeBilinearHalfPixel } from '../../../../src/pipeline/preprocess/resize.ts';
import { MANIFEST_IMAGE_SPEC, specOfSize } from '../../../harness/dicom-builder.ts';

const SPEC = MANIFEST_IMAGE_SPEC;
/** Same size in and out and an identity normalisation: the tensor is the VOI output. */
const RAW = specOfSize;

function grey(rows: number, columns: number, data: number[], extra: Partial<GreyImage> = {}): GreyImage {
  return { rows, columns, data: Int32Array.from(data), photometricInterpretation: 'MONOCHROME2', ...extra };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TriageError);
    return (err as TriageError).code;
  }
  return undefined;
}

describe('voiLinear (PS3.3 C.11.2.1.2.1)', () => {
  it('is 0 at and below c - 0.5 - (w-1)/2 and 1 strictly above c - 0.5 + (w-1)/2', () => {
    // c = 100, w = 50: lower edge 75, upper edge 124, slope 1/49.
    expect(voiLinear(75, 100, 50)).toBe(0);
    expect(voiLinear(-1e9, 100, 50)).toBe(0);
    expect(voiLinear(75.49, 100, 50)).toBeCloseTo(0.49 / 49, 12);
    expect(voiLinear(99.5, 100, 50)).toBe(0.5);
    expect(voiLinear(124, 100, 50)).toBe(1); // (124 - 99.5) / 49 + 0.5, the last value of the ramp
    expect(voiLinear(124.0001, 100, 50)).toBe(1);
    expect(voiLinear(1e9, 100, 50)).toBe(1);
  });

  it('is a step at c - 0.5 when w = 1', () => {
    expect(voiLinear(9.5, 10, 1)).toBe(0);
    expect(voiLinear(9.5000001, 10, 1)).toBe(1);
  });

  it('floors w - 1 at 1 in the division (1 < w < 2)', () => {
    // c = 10, w = 1.5: edges 9.25 and 9.75; in between y = (v - 9.5) / 1 + 0.5.
    expect(voiLinear(9.25, 10, 1.5)).toBe(0);
    expect(voiLinear(9.5, 10, 1.5)).toBe(0.5);
    expect(voiLinear(9.75, 10, 1.5)).toBe(0.75);
    expect(voiLinear(9.7500001, 10, 1.5)).toBe(1);
  });
});

describe('imageToTensor', () => {
  it('applies the modality LUT before the data set window', () => {
    // v = 2s - 100 = [-100, -50, 0, 50]; window c = 0, w = 101: edges -50.5 and 49.5,
    // in between y = (v + 0.5) / 100 + 0.5.
    const img = grey(2, 2, [0, 25, 50, 75], { rescaleSlope: 2, rescaleIntercept: -100, windowCenter: 0, windowWidth: 101 });
    const r = imageToTensor(img, RAW(2));
    expect(r.window).toEqual({ center: 0, width: 101, source: 'dataset' });
    expect(Array.from(r.tensor)).toEqual([0, (-50 + 0.5) / 100 + 0.5, (0 + 0.5) / 100 + 0.5, 1].map(Math.fround));
  });

  it('ignores the rescale when modalityLut is false', () => {
    const img = grey(2, 2, [0, 25, 50, 75], { rescaleSlope: 2, rescaleIntercept: -100, windowCenter: 50.5, windowWidth: 51 });
    // v = s; edges 25 and 75: y = (v - 50) / 50 + 0.5
    const r = imageToTensor(img, RAW(2, { modalityLut: false }));
    expect(Array.from(r.tensor)).toEqual([0, 0, 0.5, 1]);
  });

  it('inverts MONOCHROME1 after the window, keeps MONOCHROME2, and follows the manifest map', () => {
    const data = [0, 10, 20, 30, 40, 50, 60, 70, 80];
    const m2 = imageToTensor(grey(3, 3, data, { windowCenter: 40.5, windowWidth: 61 }), RAW(3));
    const m1 = imageToTensor(grey(3, 3, data, { windowCenter: 40.5, windowWidth: 61, photometricInterpretation: 'MONOCHROME1' }), RAW(3));
    expect(Array.from(m2.tensor)).toEqual([0, 0, 0.1666666716337204, 0.3333333432674408, 0.5, 0.6666666865348816, 0.8333333134651184, 1, 1]);
    m1.tensor.forEach((v, i) => expect(v).toBeCloseTo(1 - (m2.tensor[i] as number), 7));
    const kept = imageToTensor(grey(3, 3, data, { windowCenter: 40.5, windowWidth: 61, photometricInterpretation: 'MONOCHROME1' }), RAW(3, { photometric: { MONOCHROME1: 'keep' } }));
    expect(Array.from(kept.tensor)).toEqual(Array.from(m2.tensor));
    // absent from the map: kept, like models/training/preprocess.py
    const unmapped = imageToTensor(grey(3, 3, data, { windowCenter: 40.5, windowWidth: 61, photometricInterpretation: 'MONOCHROME1' }), RAW(3, { photometric: {} }));
    expect(Array.from(unmapped.tensor)).toEqual(Array.from(m2.tensor));
  });

  it('takes the window from numpy-style percentiles when the data set has none', () => {
    // values 1..10 → np.percentile([1..10], [0.5, 99.5]) = [1.045, 9.955]
    const r = imageToTensor(grey(2, 5, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), SPEC);
    expect(r.window.source).toBe('percentile');
    expect(r.window.center).toBeCloseTo(5.5, 12);
    expect(r.window.width).toBeCloseTo(9.955 - 1.045, 12);
  });

  it('floors the percentile window width at 1 (constant image)', () => {
    const r = imageToTensor(grey(2, 2, [7, 7, 7, 7]), RAW(2));
    expect(r.window).toEqual({ center: 7, width: 1, source: 'percentile' });
    expect(Array.from(r.tensor)).toEqual([1, 1, 1, 1]); // v = 7 > c - 0.5
  });

  it('uses the percentiles even with a data set window when told to, and refuses a missing one when told dataset', () => {
    const img = grey(2, 2, [0, 100, 200, 300], { windowCenter: 1, windowWidth: 1 });
    expect(imageToTensor(img, RAW(2, { window: { source: 'percentile', percentiles: [0, 100] } })).window).toEqual({
      center: 150,
      width: 300,
      source: 'percentile',
    });
    expect(code(() => imageToTensor(grey(2, 2, [0, 1, 2, 3]), RAW(2, { window: { source: 'dataset', percentiles: [0, 100] } })))).toBe(
      'DICOM_UNSUPPORTED_IMAGE',
    );
  });

  it('percentiles of a negative-slope modality LUT are those of the mapped values', () => {
    const data = [5, 1, 9, 3, 3, 8, 0, 2, 7, 6, 4, 10];
    const v = data.map((s) => s * -1.5 + 20).sort((a, b) => a - b);
    // numpy linear: q=10 → index 1.1 ; q=90 → index 9.9
    const lo = v[1]! + (v[2]! - v[1]!) * (1.1 - 1);
    const hi = v[10]! - (v[10]! - v[9]!) * (1 - (9.9 - 9));
    const r = imageToTensor(grey(3, 4, data, { rescaleSlope: -1.5, rescaleIntercept: 20 }), RAW(3, { window: { source: 'percentile', percentiles: [10, 90] } }));
    expect(r.window.center).toBeCloseTo((lo + hi) / 2, 12);
    expect(r.window.width).toBeCloseTo(hi - lo, 12);
  });

  it('normalises: (y - mean) / std', () => {
    // c = 75.5, w = 101: edges 25 and 125, y = (v - 75) / 100 + 0.5 = [0, 0.25, 0.75, 1]
    const r = imageToTensor(grey(2, 2, [0, 50, 100, 150], { windowCenter: 75.5, windowWidth: 101 }), { ...SPEC, size: { width: 2, height: 2 } });
    expect(Array.from(r.tensor)).toEqual([-2, -1, 1, 2]);
  });

  it('accepts a DicomImage-like input (frame 0)', () => {
    // c = 1, w = 3: edges -0.5 and 1.5, y = (v - 0.5) / 2 + 0.5 = [0.25, 0.75].
    const r = imageToTensor(
      {
        pixel: { rows: 1, columns: 2, photometricInterpretation: 'MONOCHROME2', windowCenter: 1, windowWidth: 3 },
        frame: (i = 0) => Int32Array.from(i === 0 ? [0, 1] : [9, 9]),
      },
      RAW(1),
    );
    expect(r.source).toEqual({ rows: 1, columns: 2 });
    expect(r.window.source).toBe('dataset');
    expect(Array.from(r.tensor)).toEqual([0.5]); // 1x2 → 1x1 samples x = 0.5: the mean
  });

  it('rejects an unknown resize kernel and bad spec values as MANIFEST_INVALID', () => {
    const img = grey(2, 2, [0, 1, 2, 3]);
    expect(code(() => imageToTensor(img, { ...SPEC, resize: { mode: 'stretch', interpolation: 'lanczos3' as unknown as 'area', pad: 0 } }))).toBe('MANIFEST_INVALID');
    expect(code(() => imageToTensor(img, { ...SPEC, size: { width: 0, height: 4 } }))).toBe('MANIFEST_INVALID');
    expect(code(() => imageToTensor(img, { ...SPEC, window: { source: 'percentile', percentiles: [99, 1] } }))).toBe('MANIFEST_INVALID');
    expect(code(() => imageToTensor(img, { ...SPEC, normalize: { mean: [0.5], std: [0] } }))).toBe('MANIFEST_INVALID');
    expect(code(() => imageToTensor(img, { ...SPEC, normalize: { mean: [0.5, 0.5], std: [1, 1] } }))).toBe('MANIFEST_INVALID');
    expect(code(() => imageToTensor(img, { ...SPEC, window: { source: 'fixed', percentiles: [0, 100] } }))).toBe('MANIFEST_INVALID');
    expect(code(() => imageToTensor(img, { ...SPEC, range: [1, 0] }))).toBe('MANIFEST_INVALID');
  });

  it('refuses data whose length does not match rows x columns', () => {
    expect(code(() => imageToTensor(grey(2, 2, [0, 1, 2]), SPEC))).toBe('DICOM_UNSUPPORTED_IMAGE');
  });
});

describe('resizeBilinearHalfPixel (== torch interpolate bilinear, align_corners=False)', () => {
  // Expected values computed by hand (source x = (j + 0.5) * in/out - 0.5, clamped) and
  // confirmed with torch.nn.functional.interpolate (torch 2.13 CPU).
  it('upsamples 2x2 → 4x4', () => {
    const out = resizeBilinearHalfPixel(Float32Array.from([0, 1, 2, 3]), 2, 2, 4, 4);
    expect(Array.from(out)).toEqual([0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  });

  it('downsamples 4x4 → 2x2 (averages of 2x2 blocks at integer scale)', () => {
    const out = resizeBilinearHalfPixel(Float32Array.from({ length: 16 }, (_, i) => i), 4, 4, 2, 2);
    expect(Array.from(out)).toEqual([2.5, 4.5, 10.5, 12.5]);
  });

  it('downsamples 3x3 → 2x2 at a non-integer scale', () => {
    // x, y sample at 0.25 and 1.75: e.g. out[0][0] = 0.75*(0.75*0 + 0.25*3) + 0.25*(0.75*6 + 0.25*12)
    const out = resizeBilinearHalfPixel(Float32Array.from([0, 3, 9, 6, 12, 0, 1, 2, 4]), 3, 3, 2, 2);
    expect(Array.from(out)).toEqual([2.4375, 6.375, 2.8125, 3.375]);
  });

  it('resizes a non-square image to a square', () => {
    const out = resizeBilinearHalfPixel(Float32Array.from([0, 2, 4, 6]), 1, 4, 2, 2);
    expect(Array.from(out)).toEqual([1, 5, 1, 5]);
  });

  it('is the identity when the size matches', () => {
    const src = Float32Array.from({ length: 224 * 224 }, (_, i) => Math.fround(Math.sin(i) * 0.5 + 0.5));
    expect(resizeBilinearHalfPixel(src, 224, 224, 224, 224)).toEqual(src);
  });
});

describe('saliencyRegion and inverseResize', () => {
  it('boxes the pixels at or above threshold x max (pixel edges, end exclusive)', () => {
    const size = 8;
    const map = new Float32Array(size * size);
    map[2 * size + 3] = 1; // row 2, col 3: the max
    map[5 * size + 6] = 0.5; // exactly at the threshold: included
    map[7 * size + 0] = 0.49;
    expect(saliencyRegion(map, size, 0.5)).toEqual({ x0: 3, y0: 2, x1: 7, y1: 6 });
    expect(saliencyRegion(map, size, 0.9)).toEqual({ x0: 3, y0: 2, x1: 4, y1: 3 });
  });

  it('is undefined for an all-zero or negative map', () => {
    expect(saliencyRegion(new Float32Array(16), 4, 0.5)).toBeUndefined();
    expect(saliencyRegion(new Float32Array(16).fill(-1), 4, 0.5)).toBeUndefined();
  });

  it('maps a model-space box back by columns/size and rows/size', () => {
    expect(inverseResize({ x0: 0, y0: 0, x1: 224, y1: 224 }, { rows: 2000, columns: 1500 }, 224)).toEqual({ x0: 0, y0: 0, x1: 1500, y1: 2000 });
    const b = inverseResize({ x0: 56, y0: 112, x1: 112, y1: 168 }, { rows: 2048, columns: 1024 }, 224);
    expect(b).toEqual({ x0: 256, y0: 1024, x1: 512, y1: 1536 });
  });
});
