/** What a pixel codec is: a decoder of one encapsulated frame (codecs/ holds the built-in ones). */
import type { PixelDescription } from './pixels.ts';

export interface DecodedFrame {
  /**
   * The frame in native layout, exactly as it would be stored under Explicit VR Little Endian:
   * little-endian samples of `bitsAllocated` bits, pixel-interleaved unless
   * `planarConfiguration` says 1.
   */
  data: Uint8Array;
  /** When the codec changed the colour space (e.g. YBR_FULL_422 JPEG decoded to RGB). */
  photometricInterpretation?: string;
  planarConfiguration?: 0 | 1;
}

/**
 * Decodes the encapsulated frames of one transfer syntax. Synchronous on purpose: a codec that
 * needs asynchronous set-up (WebAssembly) finishes it before it registers.
 */
export interface PixelCodec {
  /** For messages, e.g. "openjpeg 2.5 (wasm)". */
  readonly name: string;
  /** `encoded`: one frame's bytes, fragments already joined. */
  decodeFrame(encoded: Uint8Array, pixel: PixelDescription, frameIndex: number): DecodedFrame;
}
