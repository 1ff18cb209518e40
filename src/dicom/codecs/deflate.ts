/**
 * Deflated Image Frame Compression (1.2.840.10008.1.2.8.1): each frame is its native
 * little-endian bytes compressed with Deflate (RFC 1951, no zlib header).
 */
import { inflateRawSync } from 'node:zlib';
import { frameBitLength } from '../pixels.ts';
import type { PixelCodec } from '../codec.ts';

export const deflatedFrameCodec: PixelCodec = {
  name: 'Deflate (node:zlib)',
  decodeFrame: (encoded, pixel) => {
    const expected = Math.ceil(frameBitLength({ ...pixel, numberOfFrames: 1 }) / 8);
    // The cap keeps a corrupt or hostile stream from inflating without bound.
    return { data: new Uint8Array(inflateRawSync(encoded, { maxOutputLength: Math.max(expected, 1) + 1024 })) };
  },
};
