/**
 * A decoded image: its pixel description (the Image Pixel module, rescale, window, palette) read
 * from a keyword-named data set, and its frames decoded lazily — native samples straight from the
 * buffer, encapsulated ones through the registered codec — into grey values. Every size is
 * checked against the limits before a buffer is sized from it.
 */
import { TriageError } from '../domain/errors.ts';
import type { InstanceMeta } from '../domain/types.ts';
import { numberValue, stringValue, type NaturalDataset } from './instance-meta.ts';
import type { DicomLimits } from './limits.ts';
import {
  type PaletteLut,
  type PixelDescription,
  bigEndianToLittle,
  frameBitLength,
  readStoredSamples,
  toGrey,
  toRgb,
  unsupportedReason,
} from './pixels.ts';
import { type TransferSyntaxInfo, codecFor } from './transfer-syntax.ts';

/** A decoded instance: attributes, pixel description, and grey values per frame. */
export interface DicomImage {
  meta: InstanceMeta;
  transferSyntaxUID: string;
  pixel: PixelDescription;
  /**
   * Grey stored values of frame `index` (default 0), row-major, rows*columns long: stored
   * values (masked to BitsStored, sign-extended when PixelRepresentation is 1) for
   * monochrome data and the Y of YBR_FULL(_422); BT.601 luma (float32) for RGB and for
   * palette colour after the palette LUT. The modality LUT is NOT applied here.
   */
  frame(index?: number): Int32Array | Float32Array;
  /** The R, G, B planes of frame `index` (pixels.ts toRgb); undefined for monochrome data. */
  colorFrame(index?: number): [Float32Array, Float32Array, Float32Array] | undefined;
}

/**
 * Refuses (DICOM_TOO_LARGE) an image whose declared size is past the limits, before any buffer is
 * sized from it: a file may declare 30000 × 30000 × 1000 frames in a few hundred bytes.
 */
export function checkPixelLimits(pixel: PixelDescription, limits: DicomLimits, where: string): PixelDescription {
  const perFrame = pixel.rows * pixel.columns;
  const problems: string[] = [];
  if (perFrame > limits.maxPixelsPerFrame) problems.push(`${pixel.rows} × ${pixel.columns} pixels per frame (limits.dicom.maxPixelsPerFrame ${limits.maxPixelsPerFrame})`);
  if (pixel.numberOfFrames > limits.maxFrames) problems.push(`${pixel.numberOfFrames} frames (limits.dicom.maxFrames ${limits.maxFrames})`);
  const decoded = perFrame * Math.max(1, pixel.samplesPerPixel) * Math.ceil(Math.max(8, pixel.bitsAllocated) / 8);
  if (decoded > limits.maxDecodedFrameBytes) problems.push(`${decoded} bytes per decoded frame (limits.dicom.maxDecodedFrameBytes ${limits.maxDecodedFrameBytes})`);
  if (problems.length > 0) throw new TriageError('DICOM_TOO_LARGE', `the image declares ${problems.join(', ')}`, { where });
  return pixel;
}

function unsupported(message: string): TriageError {
  return new TriageError('DICOM_UNSUPPORTED_IMAGE', message, { where: 'preprocess' });
}

function checkFrameIndex(index: number, frames: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= frames) {
    throw new TriageError('USAGE', `frame ${index} requested; the instance has ${frames} frame(s)`, { where: 'preprocess' });
  }
}

export function nativeImage(meta: InstanceMeta, syntax: TransferSyntaxInfo, pixel: PixelDescription, fragments: Uint8Array[], vr: string): DicomImage {
  const reason = unsupportedReason(pixel);
  if (reason !== undefined) throw unsupported(reason);
  const stored = concat(fragments);
  const needed = Math.ceil((frameBitLength(pixel) * pixel.numberOfFrames) / 8);
  if (stored.byteLength < needed) {
    throw new TriageError(
      'DICOM_UNREADABLE',
      `Pixel Data has ${stored.byteLength} bytes; ${pixel.numberOfFrames} frame(s) of ${pixel.rows}x${pixel.columns}x${pixel.samplesPerPixel} ` +
        `at ${pixel.bitsAllocated} bits need ${needed}`,
      { where: 'preprocess' },
    );
  }
  let little: Uint8Array | undefined = syntax.littleEndian ? stored : undefined;
  const samples = (index: number): Uint8Array => {
    checkFrameIndex(index, pixel.numberOfFrames);
    little ??= bigEndianToLittle(stored, pixel.bitsAllocated, vr);
    return little;
  };
  return {
    meta,
    transferSyntaxUID: syntax.uid,
    pixel,
    frame: (index = 0) => greyFrame(samples(index), pixel, index),
    colorFrame: (index = 0) => colorPlanes(samples(index), pixel, index),
  };
}

export function encapsulatedImage(meta: InstanceMeta, syntax: TransferSyntaxInfo, pixel: PixelDescription, fragments: Uint8Array[]): DicomImage {
  const codec = codecFor(syntax.uid);
  if (codec === undefined) throw new Error(`no codec for ${syntax.uid}`); // checked in checkSyntax
  const decodedFrame = (index: number): { data: Uint8Array; effective: PixelDescription } => {
    checkFrameIndex(index, pixel.numberOfFrames);
    const encoded = encapsulatedFrame(fragments, pixel.numberOfFrames, index);
    let decoded;
    try {
      decoded = codec.decodeFrame(encoded, pixel, index);
    } catch (err) {
      throw new TriageError('DICOM_UNREADABLE', `${codec.name} cannot decode frame ${index} (${syntax.name}, ${syntax.uid}): ${(err as Error).message}`, {
        cause: err,
        where: 'preprocess',
      });
    }
    const effective: PixelDescription = {
      ...pixel,
      numberOfFrames: 1,
      photometricInterpretation: decoded.photometricInterpretation ?? pixel.photometricInterpretation,
      planarConfiguration: decoded.planarConfiguration ?? pixel.planarConfiguration,
    };
    const reason = unsupportedReason(effective);
    if (reason !== undefined) throw unsupported(reason);
    const needed = Math.ceil(frameBitLength(effective) / 8);
    if (decoded.data.byteLength < needed) {
      throw new TriageError('DICOM_UNREADABLE', `${codec.name} returned ${decoded.data.byteLength} bytes for frame ${index} (${syntax.name}, ${syntax.uid}); ${needed} expected`, {
        where: 'preprocess',
      });
    }
    return { data: decoded.data, effective };
  };
  return {
    meta,
    transferSyntaxUID: syntax.uid,
    pixel,
    frame(index = 0) {
      const { data, effective } = decodedFrame(index);
      return greyFrame(data, effective, 0);
    },
    colorFrame(index = 0) {
      const { data, effective } = decodedFrame(index);
      return colorPlanes(data, effective, 0);
    },
  };
}

function colorPlanes(littleEndianBytes: Uint8Array, pixel: PixelDescription, index: number): [Float32Array, Float32Array, Float32Array] | undefined {
  try {
    return toRgb(readStoredSamples(littleEndianBytes, pixel, index), pixel);
  } catch (err) {
    throw new TriageError('DICOM_UNSUPPORTED_IMAGE', (err as Error).message, { cause: err, where: 'preprocess' });
  }
}

function greyFrame(littleEndianBytes: Uint8Array, pixel: PixelDescription, index: number): Int32Array | Float32Array {
  try {
    return toGrey(readStoredSamples(littleEndianBytes, pixel, index), pixel);
  } catch (err) {
    throw new TriageError('DICOM_UNSUPPORTED_IMAGE', (err as Error).message, { cause: err, where: 'preprocess' });
  }
}

/**
 * One frame's encoded bytes. dcmjs already groups fragments per frame when there is a Basic
 * Offset Table; without one, one fragment per frame, or all fragments for a single frame.
 */
function encapsulatedFrame(fragments: Uint8Array[], frames: number, index: number): Uint8Array {
  if (fragments.length === frames) return fragments[index] ?? new Uint8Array(0);
  if (frames === 1) return concat(fragments);
  throw new TriageError(
    'DICOM_UNSUPPORTED_IMAGE',
    `cannot tell which of ${fragments.length} Pixel Data fragments belong to which of ${frames} frames (no Basic Offset Table)`,
    { where: 'preprocess' },
  );
}

function concat(parts: Uint8Array[]): Uint8Array {
  const first = parts[0];
  if (parts.length === 1 && first !== undefined) return first;
  const out = new Uint8Array(parts.reduce((n, b) => n + b.byteLength, 0));
  let at = 0;
  for (const b of parts) {
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

/** A dcmjs binary value (ArrayBuffer, or a view with noCopy; alone or in an array) as byte views. */
export function binaryParts(value: unknown): Uint8Array[] {
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  const out: Uint8Array[] = [];
  for (const v of list) {
    if (v instanceof ArrayBuffer) out.push(new Uint8Array(v));
    else if (ArrayBuffer.isView(v)) out.push(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Attribute access on a dcmjs-naturalized data set: the same rules as InstanceMeta's.

const str = (ds: NaturalDataset, keyword: string): string | undefined => stringValue(ds[keyword]);
const num = (ds: NaturalDataset, keyword: string): number | undefined => numberValue(ds[keyword]);

function requiredInt(ds: Record<string, unknown>, keyword: string): number {
  const v = num(ds, keyword);
  if (v === undefined || !Number.isInteger(v)) throw unsupported(`${keyword} is missing or not an integer`);
  return v;
}

/** The Image Pixel module (+ rescale and first window) of a naturalized data set. */
export function pixelDescription(ds: Record<string, unknown>, littleEndian: boolean): PixelDescription {
  const rows = requiredInt(ds, 'Rows');
  const columns = requiredInt(ds, 'Columns');
  const bitsAllocated = requiredInt(ds, 'BitsAllocated');
  const samplesPerPixel = num(ds, 'SamplesPerPixel') ?? 1;
  const bitsStored = num(ds, 'BitsStored') ?? bitsAllocated;
  const photometricInterpretation = str(ds, 'PhotometricInterpretation') ?? (samplesPerPixel === 1 ? 'MONOCHROME2' : '');
  const windowCenter = num(ds, 'WindowCenter');
  const windowWidth = num(ds, 'WindowWidth');
  const pixel: PixelDescription = {
    rows,
    columns,
    samplesPerPixel,
    photometricInterpretation,
    bitsAllocated,
    bitsStored,
    highBit: num(ds, 'HighBit') ?? bitsStored - 1,
    pixelRepresentation: num(ds, 'PixelRepresentation') === 1 ? 1 : 0,
    numberOfFrames: num(ds, 'NumberOfFrames') ?? 1,
    planarConfiguration: num(ds, 'PlanarConfiguration') === 1 ? 1 : 0,
    rescaleSlope: num(ds, 'RescaleSlope') ?? 1,
    rescaleIntercept: num(ds, 'RescaleIntercept') ?? 0,
    ...(windowCenter !== undefined && windowWidth !== undefined ? { windowCenter, windowWidth } : {}),
  };
  if (photometricInterpretation === 'PALETTE COLOR') {
    const palette = paletteLut(ds, littleEndian);
    if (palette !== undefined) pixel.palette = palette;
  }
  return pixel;
}

/** Non-segmented Palette Color LUTs (PS3.3 C.7.6.3.1.5-6); undefined when absent. */
function paletteLut(ds: Record<string, unknown>, littleEndian: boolean): PaletteLut | undefined {
  const desc = ds.RedPaletteColorLookupTableDescriptor;
  if (!Array.isArray(desc) || desc.length < 3) return undefined;
  const entries = Number(desc[0]) === 0 ? 65536 : Number(desc[0]);
  let firstMapped = Number(desc[1]);
  // US-read descriptors of signed data: the second value is really SS.
  if (num(ds, 'PixelRepresentation') === 1 && firstMapped > 0x7fff) firstMapped -= 0x10000;
  const channel = (keyword: string): Uint8Array | Uint16Array | undefined => {
    const parts = binaryParts(ds[keyword]);
    if (parts.length === 0) return undefined;
    const data = concat(parts);
    if (data.byteLength === entries) return data; // 8-bit entries packed one per byte
    if (data.byteLength < entries * 2) throw unsupported(`${keyword} has ${data.byteLength} bytes for ${entries} entries`);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const out = new Uint16Array(entries);
    for (let i = 0; i < entries; i++) out[i] = dv.getUint16(i * 2, littleEndian);
    return out;
  };
  const red = channel('RedPaletteColorLookupTableData');
  const green = channel('GreenPaletteColorLookupTableData');
  const blue = channel('BluePaletteColorLookupTableData');
  if (red === undefined || green === undefined || blue === undefined) return undefined;
  return { firstMapped, red, green, blue };
}
