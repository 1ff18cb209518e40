/**
 * Manifest v2 preprocessing on tiny images, by hand: fixed window, channels, per-channel
 * normalisation, range, layout, RGB planes and the padding value of keep-aspect-pad.
 */
import { describe, expect, it } from 'vitest';
import type { ImageSpec } from '../../../../src/config/manifest.ts';
import { imageToTensor, tensorPlane, unnormalizeOf, type GreyImage } from '../../../../src/pipeline/preprocess/image-tensor.ts';
import { specOfSize } from '../../../harness/dicom-builder.ts';

/** 2×2 values 0, 100, 200, 300 with a fixed window that maps v to v / 300. */
const IMAGE: GreyImage = { rows: 2, columns: 2, data: Int32Array.from([0, 100, 200, 300]), photometricInterpretation: 'MONOCHROME2', windowCenter: 10, windowWidth: 5 };
const Y = [0, 1 / 3, 2 / 3, 1];

function spec(extra: Partial<ImageSpec>): ImageSpec {
  return {
    ...specOfSize(2),
    window: { source: 'fixed', percentiles: [0.5, 99.5], center: 150.5, width: 301 },
    ...extra,
  };
}
const close = (actual: ArrayLike<number>, expected: number[]): void => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, 6));
};

describe('imageToTensor, manifest v2', () => {
  it('a fixed window wins over the data set\'s', () => {
    const r = imageToTensor(IMAGE, spec({}));
    expect(r.window).toEqual({ center: 150.5, width: 301, source: 'fixed' });
    close(r.tensor, Y);
  });

  it('3 channels, grey replicated, per-channel mean and std, NCHW', () => {
    const s = spec({ input: { name: 'x', dtype: 'float32', layout: 'NCHW', channels: 3, color: 'replicate-grey' }, normalize: { mean: [0, 0.5, 1], std: [1, 1, 2] } });
    const t = imageToTensor(IMAGE, s).tensor;
    close(t, [...Y, ...Y.map((y) => y - 0.5), ...Y.map((y) => (y - 1) / 2)]);
    close(tensorPlane(t, s, 1), Y.map((y) => y - 0.5));
  });

  it('NHWC interleaves the channels per pixel', () => {
    const s = spec({ input: { name: 'x', dtype: 'float32', layout: 'NHWC', channels: 3, color: 'replicate-grey' }, normalize: { mean: [0, 0.5, 1], std: [1, 1, 2] } });
    const t = imageToTensor(IMAGE, s).tensor;
    close(t, Y.flatMap((y) => [y, y - 0.5, (y - 1) / 2]));
    close(tensorPlane(t, s, 2), Y.map((y) => (y - 1) / 2));
  });

  it('range [0, 255] before normalising (a model trained on 8-bit images); unnormalizeOf takes a channel back to [0, 1]', () => {
    const s = spec({ range: [0, 255], normalize: { mean: [127.5], std: [127.5] } });
    const t = imageToTensor(IMAGE, s).tensor;
    close(t, Y.map((y) => (y * 255 - 127.5) / 127.5));
    const { mean, std } = unnormalizeOf(s, 0);
    close(Array.from(t, (v) => v * std + mean), Y);
  });

  it('rgb reads the colour planes, each through the window; a grey image is replicated', () => {
    const color = [Float32Array.from([0, 0, 0, 0]), Float32Array.from([300, 300, 300, 300]), Float32Array.from([150, 150, 150, 150])] as const;
    const s = spec({ input: { name: 'x', dtype: 'float32', layout: 'NCHW', channels: 3, color: 'rgb' }, normalize: { mean: [0, 0, 0], std: [1, 1, 1] } });
    close(imageToTensor({ ...IMAGE, color }, s).tensor, [0, 0, 0, 0, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5]);
    close(imageToTensor(IMAGE, s).tensor, [...Y, ...Y, ...Y]);
  });

  it('keep-aspect-pad: the padding has the manifest\'s value on the window scale', () => {
    const wide: GreyImage = { ...IMAGE, rows: 1, columns: 2, data: Int32Array.from([0, 300]) };
    const r = imageToTensor(wide, spec({ resize: { mode: 'keep-aspect-pad', interpolation: 'area', pad: 0.25 } }));
    expect(r.geometry).toEqual({ x: { resized: 2, offset: 0 }, y: { resized: 1, offset: 0 } });
    close(r.tensor, [0, 1, 0.25, 0.25]);
  });

  it('refuses a spec whose mean and std do not have one value per channel', () => {
    const s = spec({ input: { name: 'x', dtype: 'float32', layout: 'NCHW', channels: 3, color: 'replicate-grey' } });
    expect(() => imageToTensor(IMAGE, s)).toThrow(/normalize needs 3 means and stds/);
  });
});
