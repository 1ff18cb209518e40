/**
 * Just enough of the JPEG (ISO/IEC 10918-1) marker structure to choose a decoder: the frame
 * header (SOFn: process, precision, size, components) and the colour-space hints (JFIF APP0,
 * Adobe APP14). Pure; no decoding.
 */

export interface JpegComponent {
  id: number;
  h: number;
  v: number;
  tq: number;
}

export interface JpegHeader {
  /** The SOF marker's low byte: 0xC0 baseline, 0xC1 extended, 0xC2 progressive, 0xC3 lossless, … */
  sof: number;
  precision: number;
  height: number;
  width: number;
  components: JpegComponent[];
  jfif: boolean;
  /** The Adobe APP14 colour transform (0 none, 1 YCbCr, 2 YCCK), when the marker is there. */
  adobeTransform: number | undefined;
}

const SOF_NAMES: Record<number, string> = {
  0xc0: 'baseline DCT (SOF0)',
  0xc1: 'extended sequential DCT (SOF1)',
  0xc2: 'progressive DCT (SOF2)',
  0xc3: 'lossless (SOF3)',
  0xc5: 'differential sequential DCT (SOF5, hierarchical)',
  0xc6: 'differential progressive DCT (SOF6, hierarchical)',
  0xc7: 'differential lossless (SOF7, hierarchical)',
  0xc9: 'arithmetic-coded sequential DCT (SOF9)',
  0xca: 'arithmetic-coded progressive DCT (SOF10)',
  0xcb: 'arithmetic-coded lossless (SOF11)',
  0xcd: 'arithmetic-coded differential sequential DCT (SOF13)',
  0xce: 'arithmetic-coded differential progressive DCT (SOF14)',
  0xcf: 'arithmetic-coded differential lossless (SOF15)',
};

export function sofName(sof: number): string {
  return SOF_NAMES[sof] ?? `SOF 0x${sof.toString(16)}`;
}

export function isSof(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Reads markers up to the frame header. Throws a plain Error when the stream is not JPEG or ends first. */
export function readJpegHeader(b: Uint8Array): JpegHeader {
  if (b[0] !== 0xff || b[1] !== 0xd8) {
    const head = Array.from(b.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ');
    throw new Error(`not a JPEG stream: it starts ${head || '(empty)'}, not with the SOI marker ff d8`);
  }
  let jfif = false;
  let adobeTransform: number | undefined;
  let pos = 2;
  for (;;) {
    while (pos < b.length && b[pos] !== 0xff) pos++; // tolerate junk between segments
    while (pos < b.length && b[pos] === 0xff) pos++; // fill bytes
    if (pos + 2 >= b.length) throw new Error('the JPEG stream ends before its frame header (SOF)');
    const marker = b[pos++] ?? 0;
    if (marker === 0xd9) throw new Error('the JPEG stream ends (EOI) before its frame header (SOF)');
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) continue;
    const length = ((b[pos] ?? 0) << 8) | (b[pos + 1] ?? 0);
    if (length < 2 || pos + length > b.length) throw new Error(`JPEG marker ff ${marker.toString(16)} declares ${length} bytes past the end of the stream`);
    const body = b.subarray(pos + 2, pos + length);
    if (marker === 0xe0 && ascii(body, 0, 5) === 'JFIF\0') jfif = true;
    if (marker === 0xee && ascii(body, 0, 5) === 'Adobe' && body.length >= 12) adobeTransform = body[11];
    if (isSof(marker)) {
      if (body.length < 6) throw new Error('the JPEG frame header is too short');
      const n = body[5] ?? 0;
      if (body.length < 6 + 3 * n) throw new Error('the JPEG frame header is too short for its components');
      const components: JpegComponent[] = [];
      for (let i = 0; i < n; i++) {
        const hv = body[7 + 3 * i] ?? 0;
        components.push({ id: body[6 + 3 * i] ?? 0, h: hv >> 4, v: hv & 15, tq: body[8 + 3 * i] ?? 0 });
      }
      return {
        sof: marker,
        precision: body[0] ?? 0,
        height: ((body[1] ?? 0) << 8) | (body[2] ?? 0),
        width: ((body[3] ?? 0) << 8) | (body[4] ?? 0),
        components,
        jfif,
        adobeTransform,
      };
    }
    pos += length;
  }
}

/**
 * Throws unless the stream ends with EOI (ff d9), allowing the zero byte that pads a DICOM
 * fragment to even length. For decoders that would otherwise take a stream cut short for a
 * whole one (or spend a very long time finding out it is not).
 */
export function checkEndsWithEoi(b: Uint8Array, what: string): void {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  if (end < 4 || b[end - 2] !== 0xff || b[end - 1] !== 0xd9) {
    throw new Error(`the ${what} stream does not end with the EOI marker (ff d9): it is truncated`);
  }
}

function ascii(b: Uint8Array, from: number, n: number): string {
  return String.fromCharCode(...b.subarray(from, from + n));
}

/**
 * Whether the three components of a stream are Y/Cb/Cr or R/G/B. The stream's own markers
 * decide first (JFIF means YCbCr; an Adobe APP14 marker says by its transform flag); without
 * them the data set does: Photometric Interpretation RGB means RGB samples, as DCMTK and
 * pydicom read such streams. Otherwise libjpeg's rule: identifiers 'R','G','B' mean RGB,
 * anything else YCbCr.
 */
export function jpegColourSpace(header: JpegHeader, photometricInterpretation: string): 'RGB' | 'YBR' {
  if (header.jfif) return 'YBR';
  if (header.adobeTransform !== undefined) return header.adobeTransform === 0 ? 'RGB' : 'YBR';
  if (photometricInterpretation === 'RGB') return 'RGB';
  const ids = header.components.map((c) => c.id).join(',');
  return ids === '82,71,66' ? 'RGB' : 'YBR';
}

/**
 * A copy of a 3-component stream that libjpeg decodes without any colour conversion: the JFIF
 * identifier is defaced, an Adobe transform flag set to 0 and the component identifiers made
 * 'R','G','B' in the frame and scan headers (libjpeg-turbo jdapimin.c, default_decompress_parms).
 * The decoded samples are then exactly the coded ones: YCbCr stays YCbCr (whose Y is the luma
 * the preprocessing wants, with no clamping of converted RGB), RGB stays RGB.
 */
export function withoutColourTransform(b: Uint8Array, header: JpegHeader): Uint8Array {
  const out = b.slice();
  const map = new Map<number, number>();
  header.components.forEach((c, i) => map.set(c.id, [0x52, 0x47, 0x42][i] ?? c.id));
  let pos = 2;
  while (pos + 4 <= out.length) {
    if (out[pos] !== 0xff) {
      pos++;
      continue;
    }
    const marker = out[pos + 1] ?? 0;
    if (marker === 0xff || marker === 0x00 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      pos += marker === 0xff ? 1 : 2;
      continue;
    }
    if (marker === 0xd9) break;
    const length = ((out[pos + 2] ?? 0) << 8) | (out[pos + 3] ?? 0);
    const body = pos + 4;
    if (marker === 0xe0 && ascii(out, body, 5) === 'JFIF\0') {
      out[body + 3] = 0x58; // "JFIX": no longer a JFIF marker
    } else if (marker === 0xee && ascii(out, body, 5) === 'Adobe' && length >= 14) {
      out[body + 11] = 0; // transform: none
    } else if (isSof(marker)) {
      const n = out[body + 5] ?? 0;
      for (let i = 0; i < n; i++) remap(out, body + 6 + 3 * i, map);
    } else if (marker === 0xda) {
      const n = out[body] ?? 0;
      for (let i = 0; i < n; i++) remap(out, body + 1 + 2 * i, map);
      // skip the entropy-coded segment: up to the next marker that is not a stuffed 00 or RSTn
      pos = body + length - 2;
      while (pos + 1 < out.length && !(out[pos] === 0xff && out[pos + 1] !== 0x00 && !((out[pos + 1] ?? 0) >= 0xd0 && (out[pos + 1] ?? 0) <= 0xd7))) pos++;
      continue;
    }
    pos = body + length - 2;
  }
  return out;
}

function remap(b: Uint8Array, at: number, map: Map<number, number>): void {
  const to = map.get(b[at] ?? -1);
  if (to !== undefined) b[at] = to;
}
