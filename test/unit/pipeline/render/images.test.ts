import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { TriageError } from '../../../../src/domain/errors.ts';
import { heatColour, overlayHeat, tensorToGrey } from '../../../../src/pipeline/render/images.ts';
import { decodePictureSource, encodePictureSource, pictureSourceOf, renderPicture } from '../../../../src/pipeline/render/picture-source.ts';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const normalize = { mean: 0.5, std: 0.25 };
const size = 32;

/** A horizontal ramp: window value x/(size-1) in column x, normalised like the preprocess does. */
function ramp(): Float32Array {
  const t = new Float32Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) t[y * size + x] = (x / (size - 1) - normalize.mean) / normalize.std;
  return t;
}

/** A map that is 1 in the box [x0,x1)×[y0,y1) and 0 elsewhere. */
function boxMap(x0: number, y0: number, x1: number, y1: number): Float32Array {
  const m = new Float32Array(size * size);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * size + x] = 1;
  return m;
}

/** Decoded pixels; a grey PNG decodes to one channel (sharp would otherwise widen it to sRGB). */
async function raw(png: Buffer): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const grey = (await sharp(png).metadata()).channels === 1;
  const { data, info } = await (grey ? sharp(png).toColourspace('b-w') : sharp(png)).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** The pictures as the API draws them: from the picture source, through its encoding. */
const renderThumbnail = async (tensor: Float32Array, n: number, norm: typeof normalize): Promise<Buffer> =>
  (await renderPicture(decodePictureSource(encodePictureSource(pictureSourceOf(tensor, n, n, norm, undefined, []))), 'thumbnail')) as Buffer;
const renderSaliency = async (tensor: Float32Array, n: number, norm: typeof normalize, maps: Float32Array[], which: number[]): Promise<Buffer> =>
  (await renderPicture(decodePictureSource(encodePictureSource(pictureSourceOf(tensor, n, n, norm, maps, which))), 'saliency')) as Buffer;

describe('the thumbnail', () => {
  it('is a size×size grey PNG of the un-normalised tensor', async () => {
    const png = await renderThumbnail(ramp(), size, normalize);
    expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', size, size, 1]);
    const { data } = await raw(png);
    expect([data[0], data[size - 1], data[5 * size + 31]]).toEqual([0, 255, 255]);
    expect(data[16]).toBe(Math.round((16 / 31) * 255));
  });

  it('clamps values outside the window and draws NaN as black', () => {
    expect(Array.from(tensorToGrey(new Float32Array([-10, 10, Number.NaN, 0]), normalize))).toEqual([0, 255, 0, 128]);
  });

  it('refuses a tensor smaller than size×size', async () => {
    await expect(renderThumbnail(new Float32Array(10), size, normalize)).rejects.toThrow(TriageError);
    await expect(renderThumbnail(new Float32Array(10), size, normalize)).rejects.toThrow(/10 values, expected 32×32/);
  });
});

describe('the saliency overlay', () => {
  it('is a size×size RGB PNG that changes pixels only where a positive finding’s map is hot', async () => {
    const maps = [boxMap(4, 4, 12, 12), boxMap(20, 20, 28, 28)];
    const png = await renderSaliency(ramp(), size, normalize, maps, [0]);
    expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    const { data, width, height, channels } = await raw(png);
    expect([width, height, channels]).toEqual([size, size, 3]);
    const grey = await raw(await renderThumbnail(ramp(), size, normalize));
    const px = (x: number, y: number): number[] => Array.from(data.subarray((y * size + x) * 3, (y * size + x) * 3 + 3));
    const g = (x: number, y: number): number => grey.data[y * size + x] as number;
    // Hot (map 0 = 1): tinted red, no longer grey.
    const hot = px(8, 8);
    expect(hot[0]).toBeGreaterThan((hot[1] as number) + 40);
    expect(hot).not.toEqual([g(8, 8), g(8, 8), g(8, 8)]);
    // Cold, and the hot box of a finding not in `which`: the grey pixel, unchanged.
    expect(px(2, 2)).toEqual([g(2, 2), g(2, 2), g(2, 2)]);
    expect(px(24, 24)).toEqual([g(24, 24), g(24, 24), g(24, 24)]);
    let changed = 0;
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) if (px(x, y)[0] !== g(x, y) || px(x, y)[2] !== g(x, y)) changed++;
    expect(changed).toBe(64);
  });

  it('overlays the pixel-wise maximum of several maps, and nothing when no finding is positive', async () => {
    const maps = [boxMap(4, 4, 12, 12), boxMap(20, 20, 28, 28)];
    const both = await raw(await renderSaliency(ramp(), size, normalize, maps, [0, 1]));
    const none = await raw(await renderSaliency(ramp(), size, normalize, maps, []));
    const grey = await raw(await renderThumbnail(ramp(), size, normalize));
    const at = (img: { data: Buffer }, x: number, y: number): number[] => Array.from(img.data.subarray((y * size + x) * 3, (y * size + x) * 3 + 3));
    expect(at(both, 24, 24)).not.toEqual(at(none, 24, 24));
    expect(at(both, 8, 8)).not.toEqual(at(none, 8, 8));
    for (let i = 0; i < size * size; i++) expect(at(none, i % size, Math.floor(i / size))).toEqual([grey.data[i], grey.data[i], grey.data[i]]);
  });

  it('leaves values at or below the floor undrawn and tints more where the map is hotter', () => {
    const grey = new Uint8Array([100, 100, 100, 100]);
    const rgb = overlayHeat(grey, new Float32Array([0, 0.2, 0.6, 1]));
    expect(Array.from(rgb.subarray(0, 6))).toEqual([100, 100, 100, 100, 100, 100]);
    const dist = (i: number): number => Math.abs((rgb[3 * i] as number) - 100) + Math.abs((rgb[3 * i + 1] as number) - 100) + Math.abs((rgb[3 * i + 2] as number) - 100);
    expect(dist(3)).toBeGreaterThan(dist(2));
    expect(heatColour(1)).toEqual([255, 0, 0]);
    expect(heatColour(0)).toEqual([0, 70, 255]);
  });

  it('refuses a missing map or a map of the wrong size, naming it', async () => {
    await expect(renderSaliency(ramp(), size, normalize, [boxMap(0, 0, 1, 1)], [1])).rejects.toThrow(/no saliency map 1 \(the model gave 1\)/);
    await expect(renderSaliency(ramp(), size, normalize, [new Float32Array(5)], [0])).rejects.toThrow(/saliency map 0 has 5 values/);
  });
});

describe('the picture source', () => {
  it('keeps the grey plane and the heat of the positive findings, quantised to bytes, and round-trips', () => {
    const maps = [boxMap(4, 4, 12, 12), boxMap(20, 20, 28, 28)];
    maps[0]![0] = 0.5;
    maps[0]![1] = Number.NaN;
    maps[0]![2] = 7;
    const source = pictureSourceOf(ramp(), size, size, normalize, maps, [0]);
    expect(Array.from(source.grey)).toEqual(Array.from(tensorToGrey(ramp(), normalize)));
    expect([source.heat?.[0], source.heat?.[1], source.heat?.[2], source.heat?.[8 * size + 8], source.heat?.[24 * size + 24]]).toEqual([128, 0, 255, 255, 0]);
    const encoded = encodePictureSource(source);
    // Two 32×32 planes of smooth data deflate well below their 2 kB.
    expect(encoded.length).toBeLessThan(2 * size * size);
    const back = decodePictureSource(encoded);
    expect([back.width, back.height]).toEqual([size, size]);
    expect(Buffer.from(back.grey)).toEqual(Buffer.from(source.grey));
    expect(Buffer.from(back.heat!)).toEqual(Buffer.from(source.heat!));
  });

  it('without saliency from the model there is a thumbnail and no saliency picture', async () => {
    const source = decodePictureSource(encodePictureSource(pictureSourceOf(ramp(), size, size, normalize, undefined, [])));
    expect(source.heat).toBeUndefined();
    expect(await renderPicture(source, 'saliency')).toBeUndefined();
    expect((await renderPicture(source, 'thumbnail'))?.subarray(0, 8)).toEqual(PNG_SIGNATURE);
  });

  it('refuses what is not a picture source, a declared size it cannot be, and planes of the wrong length', () => {
    expect(() => decodePictureSource(Buffer.from('not a source'))).toThrow(/not a picture source/);
    const good = encodePictureSource(pictureSourceOf(ramp(), size, size, normalize, undefined, []));
    const huge = Buffer.from(good);
    huge.writeUInt16LE(60_000, 4);
    expect(() => decodePictureSource(huge)).toThrow(/60000×32/);
    const wrong = Buffer.from(good);
    wrong.writeUInt16LE(16, 4);
    expect(() => decodePictureSource(wrong)).toThrow(TriageError);
    expect(() => decodePictureSource(Buffer.concat([good.subarray(0, 9), Buffer.from([1, 2, 3])]))).toThrow(/does not inflate/);
  });
});
