/**
 * Regions found in model-input space land on the source pixels they came from, for every resize
 * mode: the SR's SCOORD and the FHIR region are in source pixel coordinates.
 */
import { describe, expect, it } from 'vitest';
import type { ImageSpec, ResizeMode } from '../../../../src/config/manifest.ts';
import { imageToTensor, tensorPlane } from '../../../../src/pipeline/preprocess/image-tensor.ts';
import { inverseResize, resizeGeometry, roundHalfEven, saliencyRegion } from '../../../../src/pipeline/preprocess/geometry.ts';
import { specOfSize } from '../../../harness/dicom-builder.ts';

/** A landscape source: 1000 columns, 500 rows. */
const WIDE = { rows: 500, columns: 1000 };
const OUT = { width: 100, height: 100 };

describe('resizeGeometry', () => {
  it('stretch: each axis resampled to the output, no offset', () => {
    expect(resizeGeometry(WIDE, OUT, 'stretch')).toEqual({ x: { resized: 100, offset: 0 }, y: { resized: 100, offset: 0 } });
  });

  it('keep-aspect-pad: the long side fills the output, the short one is centred between padding', () => {
    expect(resizeGeometry(WIDE, OUT, 'keep-aspect-pad')).toEqual({ x: { resized: 100, offset: 0 }, y: { resized: 50, offset: 25 } });
    // Portrait, with an odd padding total: the extra column goes right (floor), as PIL's ImageOps.pad.
    expect(resizeGeometry({ rows: 1000, columns: 505 }, OUT, 'keep-aspect-pad')).toEqual({ x: { resized: 50, offset: 25 }, y: { resized: 100, offset: 0 } });
  });

  it('center-crop: the short side fills the output, the long one is cropped around its centre', () => {
    expect(resizeGeometry(WIDE, OUT, 'center-crop')).toEqual({ x: { resized: 200, offset: -50 }, y: { resized: 100, offset: 0 } });
  });

  it('rounds half to even like Python', () => {
    expect([0.5, 1.5, 2.5, -0.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, -0, 2, 3]);
  });
});

describe('inverseResize: a model-space box back to source pixels', () => {
  it('stretch scales each axis by source/output', () => {
    expect(inverseResize({ x0: 10, x1: 20, y0: 50, y1: 60 }, WIDE, OUT, 'stretch')).toEqual({ x0: 100, x1: 200, y0: 250, y1: 300 });
  });

  it('keep-aspect-pad takes the padding off first; a box partly in the padding keeps its part on the image', () => {
    expect(inverseResize({ x0: 10, x1: 20, y0: 30, y1: 40 }, WIDE, OUT, 'keep-aspect-pad')).toEqual({ x0: 100, x1: 200, y0: 50, y1: 150 });
    expect(inverseResize({ x0: 0, x1: 100, y0: 25, y1: 75 }, WIDE, OUT, 'keep-aspect-pad')).toEqual({ x0: 0, x1: 1000, y0: 0, y1: 500 });
    expect(inverseResize({ x0: 10, x1: 20, y0: 20, y1: 30 }, WIDE, OUT, 'keep-aspect-pad')).toEqual({ x0: 100, x1: 200, y0: 0, y1: 50 });
  });

  it('keep-aspect-pad: a box wholly in the padding has no source region', () => {
    expect(inverseResize({ x0: 10, x1: 20, y0: 0, y1: 25 }, WIDE, OUT, 'keep-aspect-pad')).toBeUndefined();
    expect(inverseResize({ x0: 10, x1: 20, y0: 75, y1: 100 }, WIDE, OUT, 'keep-aspect-pad')).toBeUndefined();
  });

  it('center-crop adds back what was cropped away', () => {
    expect(inverseResize({ x0: 0, x1: 100, y0: 0, y1: 100 }, WIDE, OUT, 'center-crop')).toEqual({ x0: 250, x1: 750, y0: 0, y1: 500 });
    expect(inverseResize({ x0: 50, x1: 60, y0: 10, y1: 20 }, WIDE, OUT, 'center-crop')).toEqual({ x0: 500, x1: 550, y0: 50, y1: 100 });
  });

  it('a bare size means stretch (schema 1 manifests)', () => {
    expect(inverseResize({ x0: 10, x1: 20, y0: 50, y1: 60 }, WIDE, 100)).toEqual({ x0: 100, x1: 200, y0: 250, y1: 300 });
  });
});

describe('round trip through the real preprocessing, every mode and interpolation', () => {
  // A bright rectangle on a dark landscape image; found again in the tensor and mapped back, it
  // must land where it was drawn, to within one model pixel (source/resized source pixels).
  const rows = 120;
  const columns = 240;
  const rect = { x0: 130, x1: 170, y0: 30, y1: 90 };
  const data = new Int32Array(rows * columns);
  for (let r = rect.y0; r < rect.y1; r++) for (let c = rect.x0; c < rect.x1; c++) data[r * columns + c] = 1000;
  const image = { rows, columns, data, photometricInterpretation: 'MONOCHROME2', windowCenter: 500, windowWidth: 1000 };

  const cases: [ResizeMode, ImageSpec['resize']['interpolation']][] = [
    ['stretch', 'bilinear'],
    ['stretch', 'area'],
    ['keep-aspect-pad', 'bilinear'],
    ['keep-aspect-pad', 'area'],
    ['center-crop', 'bilinear'],
    ['center-crop', 'area'],
  ];
  for (const [mode, interpolation] of cases) {
    it(`${mode} / ${interpolation}`, () => {
      const spec: ImageSpec = {
        ...specOfSize(60),
        input: { name: 'pixel_values', dtype: 'float32', layout: 'NCHW', channels: 3, color: 'replicate-grey' },
        window: { source: 'dataset', percentiles: [0.5, 99.5] },
        resize: { mode, interpolation, pad: 0 },
        normalize: { mean: [0, 0, 0], std: [1, 1, 1] },
      };
      const result = imageToTensor(image, spec);
      const box = saliencyRegion(tensorPlane(result.tensor, spec, 0), 60, 0.5, 60);
      expect(box).toBeDefined();
      const back = inverseResize(box!, result.source, spec.size, mode);
      const tolerance = Math.max(columns / result.geometry.x.resized, rows / result.geometry.y.resized);
      expect(back).toBeDefined();
      for (const k of ['x0', 'x1', 'y0', 'y1'] as const) expect(Math.abs(back![k] - rect[k])).toBeLessThanOrEqual(tolerance);
    });
  }
});
