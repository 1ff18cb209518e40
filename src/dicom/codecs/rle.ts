/**
 * RLE Lossless (1.2.840.10008.1.2.5), PS3.5 Annex G: a 64-byte header of up to 15 segment
 * offsets, then one PackBits segment per byte plane: for each sample, its bytes from most to
 * least significant. Decoded to pixel-interleaved little-endian samples.
 */
import type { DecodedFrame, PixelCodec } from '../codec.ts';
import type { PixelDescription } from '../pixels.ts';

const HEADER = 64;

export function decodeRleFrame(encoded: Uint8Array, pixel: PixelDescription): Uint8Array {
  const ba = pixel.bitsAllocated;
  if (ba !== 8 && ba !== 16 && ba !== 32) throw new Error(`BitsAllocated ${ba} is not supported for RLE (8, 16 or 32)`);
  const bytesPerSample = ba / 8;
  const spp = pixel.samplesPerPixel;
  const pixels = pixel.rows * pixel.columns;
  if (encoded.byteLength < HEADER) throw new Error(`the RLE header needs ${HEADER} bytes; the frame has ${encoded.byteLength}`);
  const dv = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const segments = dv.getUint32(0, true);
  const expected = spp * bytesPerSample;
  if (segments !== expected) {
    throw new Error(`the RLE header lists ${segments} segment(s); ${spp} sample(s) per pixel of ${ba} bits need ${expected}`);
  }
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(dv.getUint32(4 + 4 * s, true));
  offsets.push(encoded.byteLength);
  for (let s = 0; s < segments; s++) {
    const start = offsets[s] ?? 0;
    const end = offsets[s + 1] ?? 0;
    if (start < HEADER || start > end || end > encoded.byteLength) {
      throw new Error(`RLE segment ${s + 1} has an invalid offset ${start} (frame of ${encoded.byteLength} bytes)`);
    }
  }

  const stride = spp * bytesPerSample;
  const out = new Uint8Array(pixels * stride);
  for (let s = 0; s < segments; s++) {
    const sample = Math.floor(s / bytesPerSample);
    const byteInSample = bytesPerSample - 1 - (s % bytesPerSample); // segments run most significant byte first
    const produced = unpackBits(encoded, offsets[s] ?? 0, offsets[s + 1] ?? 0, out, sample * bytesPerSample + byteInSample, stride, pixels);
    if (produced < pixels) throw new Error(`RLE segment ${s + 1} decodes to ${produced} bytes; ${pixels} expected`);
  }
  return out;
}

/** PackBits from src[start, end) into dst at `at`, `at + stride`, …; stops after `count` bytes. Returns bytes written. */
function unpackBits(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number, stride: number, count: number): number {
  let n = 0;
  let i = start;
  while (i < end && n < count) {
    const header = src[i++] ?? 0;
    if (header < 128) {
      // literal run of header + 1 bytes
      const len = Math.min(header + 1, end - i, count - n);
      for (let k = 0; k < len; k++) {
        dst[at + n * stride] = src[i + k] ?? 0;
        n++;
      }
      i += header + 1;
    } else if (header > 128) {
      // replicate the next byte 257 - header times
      if (i >= end) break;
      const value = src[i++] ?? 0;
      const len = Math.min(257 - header, count - n);
      for (let k = 0; k < len; k++) {
        dst[at + n * stride] = value;
        n++;
      }
    }
    // 128: no operation
  }
  return n;
}

export const rleCodec: PixelCodec = {
  name: 'RLE Lossless (built in)',
  decodeFrame: (encoded, pixel): DecodedFrame => ({ data: decodeRleFrame(encoded, pixel), planarConfiguration: 0 }),
};
