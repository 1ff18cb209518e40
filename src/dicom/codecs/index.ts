/**
 * The pixel codecs pacs-triage ships, by transfer syntax UID. transfer-syntax.ts registers them
 * all when it loads; the WebAssembly ones compile on first use.
 *
 *   JPEG Baseline / Extended / Lossless / Lossless SV1 → jpeg.ts (libjpeg-turbo, built-in 12-bit DCT, jpeg-lossless-decoder-js)
 *   JPEG-LS Lossless / Near-Lossless                   → jpeg-ls.ts (CharLS)
 *   JPEG 2000 Lossless / JPEG 2000                     → jpeg2000.ts (OpenJPEG)
 *   RLE Lossless                                       → rle.ts (built in)
 *   Deflated Image Frame Compression                   → deflate.ts (node:zlib)
 *
 * Not decoded (DICOM_UNSUPPORTED_SYNTAX): JPEG 2000 Part 2, HTJ2K, JPEG XL, MPEG-2/4, HEVC, JPIP.
 */
import type { PixelCodec } from '../codec.ts';
import { deflatedFrameCodec } from './deflate.ts';
import { jpegCodec } from './jpeg.ts';
import { jpegLsCodec } from './jpeg-ls.ts';
import { jpeg2000Codec } from './jpeg2000.ts';
import { rleCodec } from './rle.ts';

export const BUILT_IN_CODECS: ReadonlyArray<readonly [transferSyntaxUID: string, codec: PixelCodec]> = [
  ['1.2.840.10008.1.2.4.50', jpegCodec],
  ['1.2.840.10008.1.2.4.51', jpegCodec],
  ['1.2.840.10008.1.2.4.57', jpegCodec],
  ['1.2.840.10008.1.2.4.70', jpegCodec],
  ['1.2.840.10008.1.2.4.80', jpegLsCodec],
  ['1.2.840.10008.1.2.4.81', jpegLsCodec],
  ['1.2.840.10008.1.2.4.90', jpeg2000Codec],
  ['1.2.840.10008.1.2.4.91', jpeg2000Codec],
  ['1.2.840.10008.1.2.5', rleCodec],
  ['1.2.840.10008.1.2.8.1', deflatedFrameCodec],
];
