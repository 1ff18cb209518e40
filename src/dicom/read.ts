/**
 * DICOM Part 10 bytes → instance attributes and grey pixel values: native little-endian
 * files through native-attributes.ts (the ~40 attributes we read, from the element headers),
 * everything else through dcmjs.
 *
 * Every failure is a TriageError: DICOM_UNREADABLE (not DICOM, truncated, malformed),
 * DICOM_UNSUPPORTED_SYNTAX (encapsulated syntax without a registered codec),
 * DICOM_NO_PIXEL_DATA, DICOM_UNSUPPORTED_IMAGE (a pixel layout we do not convert).
 */
import { createRequire } from 'node:module';
import { inflateRawSync } from 'node:zlib';
import { TriageError } from '../domain/errors.ts';
import { instanceMeta, numberValue, stringValue, type NaturalDataset } from './instance-meta.ts';
import type { InstanceMeta } from '../domain/types.ts';
import { StructureError, checkDatasetStructure, datasetOffset, metaTransferSyntax } from './structure.ts';
import { nativeAttributes, type NativeAttributes, type VisitedElement } from './native-attributes.ts';
import { DEFAULT_DICOM_LIMITS, type DicomLimits } from './limits.ts';
import {
  type PaletteLut,
  type PixelDescription,
  bigEndianToLittle,
  frameBitLength,
  readStoredSamples,
  toGrey,
  unsupportedReason,
} from './pixels.ts';
import { type TransferSyntaxInfo, TRANSFER_SYNTAXES, codecFor, transferSyntaxName } from './transfer-syntax.ts';

// dcmjs ships no type declarations; load the CJS build through require (as src/sandbox does)
// and describe only the little we call.
interface DcmjsElement {
  vr: string;
  Value?: unknown[];
}
type DcmjsDataset = Record<string, DcmjsElement>;
interface Dcmjs {
  data: {
    DicomMessage: {
      readFile(buffer: ArrayBuffer, options?: { ignoreErrors?: boolean; noCopy?: boolean }): { meta: DcmjsDataset; dict: DcmjsDataset };
    };
    DicomMetaDictionary: { naturalizeDataset(dataset: DcmjsDataset): Record<string, unknown> };
  };
  log: Logger & { getLogger(name: string): Logger };
}
interface Logger {
  getLevel(): number;
  setLevel(level: number | string, persist?: boolean): void;
}
const require = createRequire(import.meta.url);
const dcmjs = require('dcmjs') as Dcmjs;

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
}

const PIXEL_DATA = '7FE00010';

/** Options of the readers: the limits, and `viaDcmjs` (skip the native fast path; the comparison test reads both ways). */
export interface ReadOptions {
  limits?: Partial<DicomLimits>;
  viaDcmjs?: boolean;
  /** Names the stage in errors (default `preprocess`). */
  where?: string;
}

interface OpenedDataset {
  syntax: TransferSyntaxInfo;
  /** The data set after the File Meta Information (inflated when the syntax is deflated). */
  dataset: Uint8Array;
  /** The native fast path's attributes, when it could read them. */
  fast: NativeAttributes | undefined;
}

/**
 * Steps 1 and 2 of every read: the File Meta Information, the transfer syntax, inflation (capped)
 * and the structure walk (depth and lengths checked) — before dcmjs or anything else sees the bytes.
 */
function openDataset(bytes: Uint8Array, options: ReadOptions, requirePixels: boolean): OpenedDataset {
  const where = options.where ?? 'preprocess';
  const limits = { ...DEFAULT_DICOM_LIMITS, ...options.limits };
  if (bytes.byteLength < 132 || String.fromCharCode(...bytes.subarray(128, 132)) !== 'DICM') {
    throw new TriageError('DICOM_UNREADABLE', `not a DICOM Part 10 file: no "DICM" prefix after the 128-byte preamble (${bytes.byteLength} bytes)`, { where });
  }
  if (bytes.byteLength > limits.maxFileBytes) {
    throw new TriageError('DICOM_TOO_LARGE', `the file has ${bytes.byteLength} bytes; limits.dicom.maxFileBytes is ${limits.maxFileBytes}`, { where });
  }

  // 1. The File Meta Information says how to read the rest.
  let metaEnd: number;
  let tsUid: string | undefined;
  try {
    metaEnd = datasetOffset(bytes);
    tsUid = metaTransferSyntax(bytes, metaEnd);
  } catch (err) {
    throw unreadable(err, where);
  }
  if (tsUid === undefined || tsUid === '') {
    throw new TriageError('DICOM_UNREADABLE', 'File Meta Information has no Transfer Syntax UID (0002,0010)', { where });
  }
  const syntax = checkSyntax(tsUid, where, requirePixels);

  // 2. Refuse truncated or malformed files before dcmjs pads them with zeros.
  let dataset = bytes.subarray(metaEnd);
  if (syntax.deflated) dataset = inflateCapped(dataset, limits.maxInflatedBytes, where);
  // Native little-endian data sets (what a PACS sends when asked for Explicit VR Little
  // Endian) keep the top-level element headers for native-attributes.ts on the way.
  const elements: VisitedElement[] | undefined = syntax.encoding === 'native' && syntax.littleEndian && !options.viaDcmjs ? [] : undefined;
  try {
    checkDatasetStructure(
      dataset,
      syntax.explicitVr,
      syntax.littleEndian,
      elements && ((tag, vr, offset, length) => void elements.push({ tag, vr, offset, length })),
      limits.maxDepth,
    );
  } catch (err) {
    throw unreadable(err, where);
  }
  return { syntax, dataset, fast: elements && nativeAttributes(dataset, elements, requirePixels) };
}

/** Inflates a deflated data set, refusing (DICOM_TOO_LARGE) past `max` bytes instead of allocating them. */
function inflateCapped(deflated: Uint8Array, max: number, where: string): Uint8Array {
  try {
    return inflateRawSync(deflated, { maxOutputLength: max });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new TriageError('DICOM_TOO_LARGE', `the deflated data set inflates past limits.dicom.maxInflatedBytes (${max} bytes)`, { cause: err, where });
    }
    throw new TriageError('DICOM_UNREADABLE', `the deflated data set cannot be inflated (truncated or corrupt): ${(err as Error).message}`, { cause: err, where });
  }
}

/** The keyword-named attributes of a file through dcmjs (after openDataset checked its structure). */
function dcmjsDataset(bytes: Uint8Array, where: string, untilPixels: boolean): { dict: DcmjsDataset; ds: NaturalDataset } {
  try {
    return quietly(() => {
      // noCopy: binary values come back as views into the caller's buffer rather than copies
      // (copying 8 MB of Pixel Data costs more than the rest of the parse).
      const dict = dcmjs.data.DicomMessage.readFile(wholeArrayBuffer(bytes), { noCopy: true, ...(untilPixels ? { untilTag: PIXEL_DATA } : {}) }).dict;
      return { dict, ds: dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict) };
    });
  } catch (err) {
    throw unreadable(err, where);
  }
}

/**
 * The attributes of a Part 10 file, up to its Pixel Data: what grouping files into studies needs.
 * A file without pixels (an SR, a key object) is still read; its structure is checked with the
 * same limits as readDicom.
 */
export function readDicomHeader(bytes: Uint8Array, options: ReadOptions = {}): InstanceMeta {
  const where = options.where ?? 'preprocess';
  const { fast } = openDataset(bytes, options, false);
  return instanceMeta(fast ? fast.dataset : dcmjsDataset(bytes, where, true).ds, where);
}

/** The whole data set, keyword-named (sequences as arrays of data sets), after the same checks as readDicom. */
export function readNaturalDataset(bytes: Uint8Array, options: ReadOptions = {}): NaturalDataset {
  openDataset(bytes, options, false);
  return dcmjsDataset(bytes, options.where ?? 'preprocess', false).ds;
}

/**
 * Reads a DICOM Part 10 file. Pixels are decoded lazily, one frame per `frame()` call, from a
 * view of `buffer` (not a copy): do not modify `buffer` while the image is in use.
 */
export function readDicom(bytes: Uint8Array, options: ReadOptions = {}): DicomImage {
  const where = options.where ?? 'preprocess';
  const limits = { ...DEFAULT_DICOM_LIMITS, ...options.limits };
  const { syntax, fast } = openDataset(bytes, options, true);
  if (fast !== undefined) {
    const meta = instanceMeta(fast.dataset, where);
    return nativeImage(meta, syntax, checkPixelLimits(pixelDescription(fast.dataset, true), limits, where), [fast.pixelData], 'OW');
  }

  // 3. Parse with dcmjs.
  const { dict, ds } = dcmjsDataset(bytes, where, false);
  const meta = instanceMeta(ds, where);

  // 4. Pixel Data.
  const pixelElement = dict[PIXEL_DATA];
  const fragments = binaryParts(pixelElement?.Value);
  if (pixelElement === undefined || fragments.length === 0 || fragments.every((f) => f.byteLength === 0)) {
    if (dict['7FE00008'] !== undefined || dict['7FE00009'] !== undefined) {
      throw new TriageError('DICOM_UNSUPPORTED_IMAGE', 'Float / Double Float Pixel Data is not supported', { where: 'preprocess' });
    }
    throw new TriageError(
      'DICOM_NO_PIXEL_DATA',
      `no Pixel Data (7FE0,0010) in this instance (SOP Class ${meta.SOPClassUID}${meta.Modality ? `, modality ${meta.Modality}` : ''})`,
      { where: 'preprocess' },
    );
  }
  const pixel = checkPixelLimits(pixelDescription(ds, syntax.littleEndian), limits, where);

  if (syntax.encoding === 'native') {
    return nativeImage(meta, syntax, pixel, fragments, pixelElement.vr);
  }
  return encapsulatedImage(meta, syntax, pixel, fragments);
}

/**
 * Runs fn with dcmjs's loggers silenced: it writes to the console for every implicit-VR
 * attribute whose dictionary VR is "US or SS"/"OB or OW", which is noise, not a problem.
 * Synchronous, so restoring the levels afterwards cannot race with other callers.
 */
function quietly<T>(fn: () => T): T {
  const loggers = [dcmjs.log, dcmjs.log.getLogger('validation.dcmjs')];
  const levels = loggers.map((l) => l.getLevel());
  try {
    for (const l of loggers) l.setLevel('silent', false);
    return fn();
  } finally {
    loggers.forEach((l, i) => l.setLevel(levels[i] ?? 'warn', false));
  }
}

/**
 * The transfer syntax, refused when unknown or when its pixels cannot be read here. A header
 * read (`requirePixels` false) takes any syntax whose data set it can walk.
 */
function checkSyntax(uid: string, where: string, requirePixels: boolean): TransferSyntaxInfo {
  const info = TRANSFER_SYNTAXES.get(uid);
  if (info === undefined) {
    throw new TriageError('DICOM_UNSUPPORTED_SYNTAX', `transfer syntax ${uid} (unknown transfer syntax) is not supported`, { where });
  }
  if (!requirePixels) return info;
  if (info.encoding === 'referenced') {
    throw new TriageError('DICOM_UNSUPPORTED_SYNTAX', `transfer syntax ${uid} (${info.name}) references its pixels elsewhere; they cannot be read from the file`, { where });
  }
  if (info.encoding === 'encapsulated' && codecFor(uid) === undefined) {
    throw new TriageError(
      'DICOM_UNSUPPORTED_SYNTAX',
      `transfer syntax ${uid} (${info.name}) is compressed; no decoder for it is installed (ask the PACS for Explicit VR Little Endian)`,
      { where },
    );
  }
  return info;
}

function unreadable(err: unknown, where: string): TriageError {
  if (err instanceof TriageError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof StructureError && err.tooDeep) return new TriageError('DICOM_TOO_DEEP', message, { cause: err, where });
  const text = err instanceof StructureError ? message : `cannot parse the DICOM data set: ${message}`;
  return new TriageError('DICOM_UNREADABLE', text, { cause: err, where });
}

/**
 * Refuses (DICOM_TOO_LARGE) an image whose declared size is past the limits, before any buffer is
 * sized from it: a file may declare 30000 × 30000 × 1000 frames in a few hundred bytes.
 */
function checkPixelLimits(pixel: PixelDescription, limits: DicomLimits, where: string): PixelDescription {
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

function nativeImage(meta: InstanceMeta, syntax: TransferSyntaxInfo, pixel: PixelDescription, fragments: Uint8Array[], vr: string): DicomImage {
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
  return {
    meta,
    transferSyntaxUID: syntax.uid,
    pixel,
    frame(index = 0) {
      checkFrameIndex(index, pixel.numberOfFrames);
      little ??= bigEndianToLittle(stored, pixel.bitsAllocated, vr);
      return greyFrame(little, pixel, index);
    },
  };
}

function encapsulatedImage(meta: InstanceMeta, syntax: TransferSyntaxInfo, pixel: PixelDescription, fragments: Uint8Array[]): DicomImage {
  const codec = codecFor(syntax.uid);
  if (codec === undefined) throw new Error(`no codec for ${syntax.uid}`); // checked in checkSyntax
  return {
    meta,
    transferSyntaxUID: syntax.uid,
    pixel,
    frame(index = 0) {
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
      return greyFrame(decoded.data, effective, 0);
    },
  };
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

/** The ArrayBuffer dcmjs needs: the caller's own when the view covers all of it, else a copy. */
function wholeArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer;
  // Not bytes.slice(): on a Node Buffer that is a view of the same (pooled) memory.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

/** A dcmjs binary value (ArrayBuffer, or a view with noCopy; alone or in an array) as byte views. */
function binaryParts(value: unknown): Uint8Array[] {
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
function pixelDescription(ds: Record<string, unknown>, littleEndian: boolean): PixelDescription {
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
