/**
 * JPEG-LS Lossless (1.2.840.10008.1.2.4.80) and Near-Lossless (.81), ISO/IEC 14495-1, through
 * CharLS (WebAssembly build from @cornerstonejs/codec-charls).
 */
import type { PixelCodec } from '../codec.ts';
import { checkEndsWithEoi } from './jpeg-markers.ts';
import { type DecodedSamples, fullResolution, toNative } from './samples.ts';
import { type EmbindDecoder, WasmCodec } from './wasm.ts';

interface JpegLsDecoder extends EmbindDecoder {
  /** 0: none (planar output), 1: line, 2: sample (both decoded pixel-interleaved). */
  getInterleaveMode(): number;
  getNearLossless(): number;
}

const charls = new WasmCodec<JpegLsDecoder>('CharLS', '@cornerstonejs/codec-charls', 'JpegLSDecoder');

export const jpegLsCodec: PixelCodec = {
  name: 'JPEG-LS (CharLS wasm)',
  decodeFrame: (encoded, pixel) => {
    // CharLS can spend tens of seconds on a stream cut short inside its scan before it gives up
    // (28 s for MR_small_jpeg_ls_lossless.dcm cut at 4000 of its 5964 bytes): refuse those first.
    checkEndsWithEoi(encoded, 'JPEG-LS');
    const { samples, planar } = charls.use((d) => {
      d.getEncodedBuffer(encoded.byteLength).set(encoded);
      d.decode();
      const info = d.getFrameInfo();
      const decoded: DecodedSamples = {
        bytes: d.getDecodedBuffer().slice(), // a view into the WebAssembly heap: copy it
        bytesPerSample: info.bitsPerSample > 8 ? 2 : 1,
        signed: false,
        width: info.width,
        height: info.height,
        components: info.componentCount,
      };
      return { samples: decoded, planar: info.componentCount > 1 && d.getInterleaveMode() === 0 };
    });
    return { data: toNative(samples, pixel), ...fullResolution(pixel, planar) };
  },
};
