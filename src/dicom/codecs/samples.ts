/**
 * Decoder output → the native frame layout `DecodedFrame` promises: little-endian samples of
 * BitsAllocated bits. Decoders hand back 1 or 2 bytes per sample (whatever the codestream's
 * precision needs); DICOM may allocate more (8-bit JPEG in 16-bit Pixel Data) or, wrongly, fewer.
 */
import type { PixelDescription } from '../pixels.ts';
import type { DecodedFrame } from '../codec.ts';

export interface DecodedSamples {
  /** Little-endian samples, row-major, pixel-interleaved unless the codec says planar. */
  bytes: Uint8Array;
  bytesPerSample: 1 | 2;
  signed: boolean;
  width: number;
  height: number;
  components: number;
}

/** Throws a plain Error (the caller names the codec) when the decoded image is not the one the data set describes. */
export function checkGeometry(s: DecodedSamples, pixel: PixelDescription): void {
  if (s.width !== pixel.columns || s.height !== pixel.rows) {
    throw new Error(`the codestream is ${s.width}x${s.height} (columns x rows); the data set says ${pixel.columns}x${pixel.rows}`);
  }
  if (s.components !== pixel.samplesPerPixel) {
    throw new Error(`the codestream has ${s.components} component(s); the data set says SamplesPerPixel ${pixel.samplesPerPixel}`);
  }
}

/** The decoded samples as BitsAllocated-bit little-endian values (widened when BitsAllocated is larger). */
export function toNative(s: DecodedSamples, pixel: PixelDescription): Uint8Array {
  checkGeometry(s, pixel);
  const count = s.width * s.height * s.components;
  const have = count * s.bytesPerSample;
  if (s.bytes.byteLength < have) throw new Error(`the decoder returned ${s.bytes.byteLength} bytes; ${have} expected`);
  const ba = pixel.bitsAllocated;
  if (ba === s.bytesPerSample * 8) return s.bytes.byteLength === have ? s.bytes : s.bytes.subarray(0, have);
  if (ba !== 16 && ba !== 32) {
    throw new Error(`the codestream has ${s.bytesPerSample * 8}-bit samples; BitsAllocated ${ba} cannot hold them`);
  }
  const out = new Uint8Array(count * (ba / 8));
  const dv = new DataView(out.buffer);
  const src = new DataView(s.bytes.buffer, s.bytes.byteOffset, have);
  for (let i = 0; i < count; i++) {
    const v =
      s.bytesPerSample === 1 ? (s.signed ? src.getInt8(i) : src.getUint8(i)) : s.signed ? src.getInt16(i * 2, true) : src.getUint16(i * 2, true);
    if (ba === 16) dv.setUint16(i * 2, v & 0xffff, true);
    else dv.setUint32(i * 4, v >>> 0, true);
  }
  return out;
}

/**
 * For decoders that return every component at full resolution, pixel-interleaved, without
 * colour conversion: YBR_FULL_422 describes the compressed data, the decoded samples are YBR_FULL.
 */
export function fullResolution(pixel: PixelDescription, planar = false): Pick<DecodedFrame, 'photometricInterpretation' | 'planarConfiguration'> {
  return {
    planarConfiguration: planar ? 1 : 0,
    ...(pixel.photometricInterpretation === 'YBR_FULL_422' ? { photometricInterpretation: 'YBR_FULL' } : {}),
  };
}
