/**
 * JPEG 2000 (1.2.840.10008.1.2.4.90 lossless, .91), ISO/IEC 15444-1, through OpenJPEG
 * (WebAssembly build from @cornerstonejs/codec-openjpeg). OpenJPEG applies the inverse
 * multiple-component transform itself, so YBR_RCT / YBR_ICT data come back as RGB.
 */
import type { PixelCodec } from '../codec.ts';
import { type DecodedSamples, fullResolution, toNative } from './samples.ts';
import { type EmbindDecoder, WasmCodec, lastErrors } from './wasm.ts';

const openjpeg = new WasmCodec<EmbindDecoder>('OpenJPEG', '@cornerstonejs/codec-openjpeg', 'J2KDecoder');

export const jpeg2000Codec: PixelCodec = {
  name: 'JPEG 2000 (OpenJPEG wasm)',
  decodeFrame: (encoded, pixel) => {
    const samples = openjpeg.use((d, printed): DecodedSamples => {
      d.getEncodedBuffer(encoded.byteLength).set(encoded);
      d.decode();
      const info = d.getFrameInfo();
      // OpenJPEG reports most failures by printing them and leaving an empty image.
      if (info.width === 0 || info.height === 0 || info.componentCount === 0) {
        throw new Error(lastErrors(printed) ?? 'the codestream decoded to an empty image');
      }
      return {
        bytes: d.getDecodedBuffer().slice(), // a view into the WebAssembly heap: copy it
        bytesPerSample: info.bitsPerSample > 8 ? 2 : 1,
        signed: info.isSigned === true,
        width: info.width,
        height: info.height,
        components: info.componentCount,
      };
    });
    const pi = pixel.photometricInterpretation;
    const rgb = pi === 'YBR_RCT' || pi === 'YBR_ICT' ? { photometricInterpretation: 'RGB' } : {};
    return { data: toNative(samples, pixel), ...fullResolution(pixel), ...rgb };
  },
};
