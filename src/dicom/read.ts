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
import { instanceMeta, type NaturalDataset } from './instance-meta.ts';
import type { InstanceMeta } from '../domain/types.ts';

export type { DicomImage } from './image.ts';
import { StructureError, checkDatasetStructure, datasetOffset, headerStructure, metaTransferSyntax } from './structure.ts';
import { nativeAttributes, type NativeAttributes, type VisitedElement } from './native-attributes.ts';
import { DEFAULT_DICOM_LIMITS, type DicomLimits } from './limits.ts';
import { binaryParts, checkPixelLimits, encapsulatedImage, nativeImage, pixelDescription, type DicomImage } from './image.ts';
import { type TransferSyntaxInfo, TRANSFER_SYNTAXES, codecFor } from './transfer-syntax.ts';

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

const PIXEL_DATA = '7FE00010';

/** Options of the readers: the limits, and `viaDcmjs` (skip the native fast path; the comparison test reads both ways). */
export interface ReadOptions {
  limits?: Partial<DicomLimits>;
  /**
   * Header reads only: `bytes` is a prefix of a longer file. When the header runs past it,
   * NeedMoreBytes is thrown (instead of "truncated") and the caller reads more.
   */
  partial?: boolean;
  viaDcmjs?: boolean;
  /** Names the stage in errors (default `preprocess`). */
  where?: string;
}

/** A header read of a prefix needs more of the file (see ReadOptions.partial). */
export class NeedMoreBytes extends Error {
  constructor() {
    super('the header runs past the bytes read so far');
    this.name = 'NeedMoreBytes';
  }
}

interface OpenedDataset {
  syntax: TransferSyntaxInfo;
  /** The data set after the File Meta Information (inflated when the syntax is deflated). */
  dataset: Uint8Array;
  /** The native fast path's attributes, when it could read them. */
  fast: NativeAttributes | undefined;
  /** Where the header ends in `bytes` (the Pixel Data element's start; header reads only). */
  headerEnd: number;
}

/**
 * Steps 1 and 2 of every read: the File Meta Information, the transfer syntax, inflation (capped)
 * and the structure walk (depth and lengths checked) — before dcmjs or anything else sees the bytes.
 */
function openDataset(bytes: Uint8Array, options: ReadOptions, mode: 'image' | 'header' | 'whole'): OpenedDataset {
  const requirePixels = mode === 'image';
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
    if (options.partial && err instanceof StructureError && err.truncated) throw new NeedMoreBytes();
    throw unreadable(err, where);
  }
  if (tsUid === undefined || tsUid === '') {
    throw new TriageError('DICOM_UNREADABLE', 'File Meta Information has no Transfer Syntax UID (0002,0010)', { where });
  }
  const syntax = checkSyntax(tsUid, where, requirePixels);

  // 2. Refuse truncated or malformed files before dcmjs pads them with zeros.
  let dataset = bytes.subarray(metaEnd);
  if (syntax.deflated) {
    if (options.partial) throw new NeedMoreBytes();
    dataset = inflateCapped(dataset, limits.maxInflatedBytes, where);
  }
  // Native little-endian data sets (what a PACS sends when asked for Explicit VR Little
  // Endian) keep the top-level element headers for native-attributes.ts on the way.
  const elements: VisitedElement[] | undefined = syntax.encoding === 'native' && syntax.littleEndian && !options.viaDcmjs ? [] : undefined;
  const visit = elements && ((tag: number, vr: string | undefined, offset: number, length: number) => void elements.push({ tag, vr, offset, length }));
  let headerEnd = metaEnd + dataset.byteLength;
  try {
    if (mode !== 'header') checkDatasetStructure(dataset, syntax.explicitVr, syntax.littleEndian, visit, limits.maxDepth);
    else headerEnd = metaEnd + headerStructure(dataset, syntax.explicitVr, syntax.littleEndian, visit, limits.maxDepth);
  } catch (err) {
    if (options.partial && err instanceof StructureError && err.truncated) throw new NeedMoreBytes();
    throw unreadable(err, where);
  }
  return { syntax, dataset, headerEnd, fast: elements && nativeAttributes(dataset, elements, requirePixels) };
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
  const { fast, syntax, headerEnd } = openDataset(bytes, options, 'header');
  // dcmjs reads only what the walk checked: up to Pixel Data (the whole file when deflated).
  return instanceMeta(fast ? fast.dataset : dcmjsDataset(syntax.deflated ? bytes : bytes.subarray(0, headerEnd), where, true).ds, where);
}

/** The whole data set, keyword-named (sequences as arrays of data sets), after the same checks as readDicom. */
export function readNaturalDataset(bytes: Uint8Array, options: ReadOptions = {}): NaturalDataset {
  openDataset(bytes, options, 'whole');
  return dcmjsDataset(bytes, options.where ?? 'preprocess', false).ds;
}

/**
 * Reads a DICOM Part 10 file. Pixels are decoded lazily, one frame per `frame()` call, from a
 * view of `buffer` (not a copy): do not modify `buffer` while the image is in use.
 */
export function readDicom(bytes: Uint8Array, options: ReadOptions = {}): DicomImage {
  const where = options.where ?? 'preprocess';
  const limits = { ...DEFAULT_DICOM_LIMITS, ...options.limits };
  const { syntax, fast } = openDataset(bytes, options, 'image');
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

/** The ArrayBuffer dcmjs needs: the caller's own when the view covers all of it, else a copy. */
function wholeArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer;
  // Not bytes.slice(): on a Node Buffer that is a view of the same (pooled) memory.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

