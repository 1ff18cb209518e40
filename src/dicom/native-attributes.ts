/**
 * The attributes preprocessing reads (InstanceMeta, the Image Pixel module, rescale and
 * window), taken straight from the element headers the structure check walks anyway, for
 * native (uncompressed) little-endian data sets — what a PACS returns when asked for Explicit
 * VR Little Endian. Parsing the whole data set with dcmjs cost ~0.7 ms of the ~2.5 ms budget
 * per image (it decodes every attribute, then naturalizes them all); this reads ~40.
 *
 * It answers only for plain, conformant values, where it reads what dcmjs reads (the values go
 * to the same InstanceMeta builder and pixel description). Anything else returns undefined and the caller
 * reads the file with dcmjs, quirks included: a byte outside printable ASCII or any Specific
 * Character Set beyond ASCII/Latin-1/UTF-8 (dcmjs decodes or refuses them), an unexpected VR or
 * length, an empty US value (dcmjs reads 0), a UID, IS or DS that is not well formed (dcmjs
 * strips foreign characters), a NUL inside a value, a multi-valued person name, palette colour,
 * float Pixel Data, Pixel Data empty or of undefined length.
 * test/unit/dicom/native-attributes.test.ts compares both paths on every sample file. Pure.
 */

import { ATTRIBUTE_BY_TAG } from './attributes.ts';

const PIXEL_DATA = 0x7fe00010;
const SPECIFIC_CHARACTER_SET = 0x00080005;
/** Character sets whose ASCII bytes mean ASCII (anything else: dcmjs decides). */
const PLAIN_CHARSETS = new Set(['', 'ISO_IR 6', 'ISO_IR 100', 'ISO_IR 192']);
/** Well-formed values (PS3.5 6.2); dcmjs strips other characters, and we leave such values to it. */
const WELL_FORMED: Record<string, RegExp> = {
  UI: /^[0-9.]+$/,
  IS: /^[+-]?[0-9]+$/,
  DS: /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/,
};
/** Float and Double Float Pixel Data: dcmjs's path gives the specific error. */
const FLOAT_PIXEL_DATA = new Set([0x7fe00008, 0x7fe00009]);

/** A top-level element as the structure walk reports it. */
export interface VisitedElement {
  tag: number;
  vr: string | undefined;
  offset: number;
  length: number;
}

export interface NativeAttributes {
  /** Keyword → values, in the shape dcmjs's naturalizeDataset gives them. */
  dataset: Record<string, unknown>;
  /** Pixel Data's value, a view into the data set's bytes. */
  pixelData: Uint8Array;
}

/**
 * The wanted attributes of a native little-endian data set from its top-level elements (in
 * the order the walk met them), or undefined when only dcmjs can say (see the module comment).
 */
export function nativeAttributes(bytes: Uint8Array, elements: readonly VisitedElement[], requirePixels = true): NativeAttributes | undefined {
  const dataset: Record<string, unknown> = {};
  let pixelData: Uint8Array | undefined;
  for (const e of elements) {
    if (e.tag === SPECIFIC_CHARACTER_SET) {
      const charset = e.length < 0 ? undefined : printableAscii(bytes, e.offset, e.length);
      if (charset === undefined || charset.includes('\\') || !PLAIN_CHARSETS.has(clean(charset))) return undefined;
      continue;
    }
    if (e.tag === PIXEL_DATA) {
      if (e.length <= 0 || (e.vr !== undefined && e.vr !== 'OB' && e.vr !== 'OW')) return undefined;
      pixelData = bytes.subarray(e.offset, e.offset + e.length);
      continue;
    }
    if (FLOAT_PIXEL_DATA.has(e.tag)) return undefined;
    const want = ATTRIBUTE_BY_TAG.get(e.tag);
    if (want === undefined) continue;
    if (e.length < 0 || (e.vr !== undefined && e.vr !== want.vr)) return undefined;
    if (want.vr === 'US') {
      if (e.length === 0 || e.length % 2 !== 0) return undefined;
      const values: number[] = [];
      for (let i = 0; i < e.length; i += 2) values.push(bytes[e.offset + i]! | (bytes[e.offset + i + 1]! << 8));
      dataset[want.keyword] = values;
      continue;
    }
    if (e.length === 0) continue; // an empty string is an absent one downstream, as with dcmjs
    const text = printableAscii(bytes, e.offset, e.length);
    if (text === undefined) return undefined;
    const values = text.split('\\').map(clean);
    if (values.some((v) => v.includes('\0'))) return undefined;
    if (want.vr === 'PN' && values.length > 1) return undefined;
    const form = WELL_FORMED[want.vr];
    if (form && values.some((v) => v !== '' && !form.test(v))) return undefined;
    dataset[want.keyword] = values;
  }
  if (!requirePixels) return { dataset, pixelData: pixelData ?? new Uint8Array(0) };
  if (pixelData === undefined || dataset.PhotometricInterpretation === undefined) return undefined;
  if (String((dataset.PhotometricInterpretation as string[])[0]).startsWith('PALETTE')) return undefined;
  return { dataset, pixelData };
}

/** The value as a string when every byte is printable ASCII (or NUL/space padding), else undefined. */
function printableAscii(bytes: Uint8Array, offset: number, length: number): string | undefined {
  let s = '';
  for (let i = offset; i < offset + length; i++) {
    const b = bytes[i]!;
    if (b >= 0x7f || (b < 0x20 && b !== 0)) return undefined;
    s += String.fromCharCode(b);
  }
  return s;
}

/** Padding off both ends (dcmjs trims string values; UIDs are padded with NUL). */
function clean(value: string): string {
  return value.replace(/^[\0 ]+|[\0 ]+$/g, '');
}
