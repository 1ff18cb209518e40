/**
 * What the worklist pictures are drawn from, kept instead of the pictures: the model input as
 * 8-bit grey and, when the model gives saliency, the pixel-wise maximum of the positive findings'
 * maps as 8-bit heat. Deflating two small byte planes at level 1 costs a fraction of encoding two
 * PNGs, and most studies' pictures are never looked at, so the PNGs are drawn at first view
 * (`renderPicture`) and cached by the API.
 *
 * Layout: "PTS1", width u16, height u16, flags u8 (bit 0: heat present), then the raw-deflated
 * grey plane followed by the heat plane.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import sharp from 'sharp';
import { TriageError } from '../../domain/errors.ts';
import type { ImageKind } from '../../domain/records.ts';
import { overlayHeat, tensorToGrey, type Normalize } from './images.ts';

const MAGIC = 'PTS1';
const HEADER = 9;
/** Largest side accepted when decoding: the model input is a few hundred pixels. */
const MAX_SIDE = 4096;

export interface PictureSource {
  width: number;
  height: number;
  grey: Uint8Array;
  /** 0–255 for 0–1 of the saliency; absent when the model gives none. */
  heat?: Uint8Array;
}

const fail = (message: string): TriageError => new TriageError('INTERNAL', `picture source: ${message}`, { where: 'render' });

/**
 * The source of a study's pictures from the model input (one plane, row-major, normalised with
 * `normalize`) and the saliency maps of the findings in `which` (their maximum). `maps`
 * undefined: the model has no saliency output, so there is no saliency picture.
 */
export function pictureSourceOf(
  plane: Float32Array,
  width: number,
  height: number,
  normalize: Normalize,
  maps: readonly Float32Array[] | undefined,
  which: readonly number[],
): PictureSource {
  const n = width * height;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0 || plane.length < n) {
    throw fail(`the plane has ${plane.length} values, expected ${width}×${height}`);
  }
  const grey = tensorToGrey(plane.length === n ? plane : plane.subarray(0, n), normalize);
  if (maps === undefined) return { width, height, grey };
  const heat = new Uint8Array(n);
  for (const k of which) {
    const map = maps[k];
    if (!map) throw fail(`no saliency map ${k} (the model gave ${maps.length})`);
    if (map.length !== n) throw fail(`saliency map ${k} has ${map.length} values, expected ${n}`);
    for (let i = 0; i < n; i++) {
      const v = map[i] as number;
      // NaN and values ≤ 0 stay 0; the top is clamped to 255.
      const q = v > 0 ? (v >= 1 ? 255 : Math.round(v * 255)) : 0;
      if (q > (heat[i] as number)) heat[i] = q;
    }
  }
  return { width, height, grey, heat };
}

export function encodePictureSource(source: PictureSource): Buffer {
  const n = source.width * source.height;
  const planes = Buffer.alloc(source.heat ? 2 * n : n);
  planes.set(source.grey, 0);
  if (source.heat) planes.set(source.heat, n);
  const header = Buffer.alloc(HEADER);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt16LE(source.width, 4);
  header.writeUInt16LE(source.height, 6);
  header.writeUInt8(source.heat ? 1 : 0, 8);
  return Buffer.concat([header, deflateRawSync(planes, { level: 1 })]);
}

export function decodePictureSource(data: Uint8Array): PictureSource {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < HEADER || buf.toString('latin1', 0, 4) !== MAGIC) throw fail('not a picture source');
  const width = buf.readUInt16LE(4);
  const height = buf.readUInt16LE(6);
  const hasHeat = (buf.readUInt8(8) & 1) === 1;
  if (width === 0 || height === 0 || width > MAX_SIDE || height > MAX_SIDE) throw fail(`a ${width}×${height} picture`);
  const n = width * height;
  const expected = hasHeat ? 2 * n : n;
  let planes: Buffer;
  try {
    planes = inflateRawSync(buf.subarray(HEADER), { maxOutputLength: expected });
  } catch (err) {
    throw fail(`does not inflate: ${(err as Error).message}`);
  }
  if (planes.length !== expected) throw fail(`${planes.length} bytes of planes, expected ${expected}`);
  const grey = new Uint8Array(planes.buffer, planes.byteOffset, n);
  return hasHeat ? { width, height, grey, heat: new Uint8Array(planes.buffer, planes.byteOffset + n, n) } : { width, height, grey };
}

/**
 * zlib level of the PNGs: 6 (zlib's default) makes them a few percent larger than 9 and takes a
 * fraction of its time.
 */
const PNG_COMPRESSION = 6;

/**
 * A worklist picture drawn from its source: the grey thumbnail, or the saliency overlay (the
 * heat blended over the grey). Undefined when the source has no saliency to draw.
 */
export async function renderPicture(source: PictureSource, kind: ImageKind): Promise<Buffer | undefined> {
  const { width, height, grey } = source;
  if (kind === 'thumbnail') {
    return sharp(grey, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png({ compressionLevel: PNG_COMPRESSION }).toBuffer();
  }
  if (!source.heat) return undefined;
  const heat = new Float32Array(source.heat.length);
  for (let i = 0; i < heat.length; i++) heat[i] = (source.heat[i] as number) / 255;
  const rgb = overlayHeat(grey, heat);
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel: PNG_COMPRESSION }).toBuffer();
}
