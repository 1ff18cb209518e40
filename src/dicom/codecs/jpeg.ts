/**
 * The JPEG transfer syntaxes (ISO/IEC 10918-1): Baseline (1.2.840.10008.1.2.4.50), Extended
 * (.51), Lossless (.57) and Lossless SV1 (.70). The decoder is chosen by the stream's own frame
 * header, not by the transfer syntax (mislabelled streams are common):
 *   - baseline / extended / progressive DCT, 8-bit → libjpeg-turbo (WebAssembly), no colour conversion;
 *   - extended DCT, 12-bit                       → the built-in decoder (jpeg-dct.ts);
 *   - lossless (SOF3)                             → jpeg-lossless-decoder-js;
 *   - anything else (hierarchical, arithmetic)    → a named error.
 */
import { createRequire } from 'node:module';
import type { PixelDescription } from '../pixels.ts';
import type { DecodedFrame, PixelCodec } from '../codec.ts';
import { decodeJpegDct } from './jpeg-dct.ts';
import { type JpegHeader, checkEndsWithEoi, jpegColourSpace, readJpegHeader, sofName, withoutColourTransform } from './jpeg-markers.ts';
import { type DecodedSamples, checkGeometry, fullResolution, toNative } from './samples.ts';
import { type EmbindDecoder, WasmCodec } from './wasm.ts';

const require = createRequire(import.meta.url);

const libjpegTurbo = new WasmCodec<EmbindDecoder>('libjpeg-turbo', '@cornerstonejs/codec-libjpeg-turbo-8bit', 'JPEGDecoder');

interface LosslessDecoder {
  decode(buffer: ArrayBuffer, offset: number, length: number): Uint8Array | Uint16Array;
}
let losslessModule: { Decoder: new () => LosslessDecoder } | undefined;

function decodeLossless(encoded: Uint8Array, header: JpegHeader): DecodedSamples {
  const n = header.components.length;
  if (!(n === 1 || (n === 3 && header.precision <= 8))) {
    throw new Error(`jpeg-lossless-decoder-js decodes 1 component, or 3 of at most 8 bits; this stream has ${n} of ${header.precision} bits`);
  }
  // jpeg-lossless-decoder-js decodes a stream cut short without complaint (the rest comes back as zeros)
  checkEndsWithEoi(encoded, 'lossless JPEG');
  losslessModule ??= require('jpeg-lossless-decoder-js') as { Decoder: new () => LosslessDecoder };
  let out: Uint8Array | Uint16Array;
  try {
    out = new losslessModule.Decoder().decode(encoded.buffer as ArrayBuffer, encoded.byteOffset, encoded.byteLength);
  } catch (err) {
    throw new Error(`jpeg-lossless-decoder-js: ${(err as Error).message}`);
  }
  const bytesPerSample = header.precision > 8 ? 2 : 1;
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const expected = header.width * header.height * n * bytesPerSample;
  if (bytes.byteLength < expected) throw new Error(`jpeg-lossless-decoder-js returned ${bytes.byteLength} bytes; ${expected} expected`);
  return { bytes, bytesPerSample, signed: false, width: header.width, height: header.height, components: n };
}

/**
 * 8-bit DCT through libjpeg-turbo, with its colour conversion switched off: 3-component
 * streams come back as coded, YCbCr (reported as YBR_FULL, whose Y the preprocessing takes) or
 * RGB, whatever the data set's Photometric Interpretation said about the compressed data.
 */
function decodeTurbo(encoded: Uint8Array, header: JpegHeader, pixel: PixelDescription): DecodedFrame {
  const three = header.components.length === 3;
  const space = three ? jpegColourSpace(header, pixel.photometricInterpretation) : undefined;
  const stream = three ? withoutColourTransform(encoded, header) : encoded;
  const samples = libjpegTurbo.use((d): DecodedSamples => {
    d.getEncodedBuffer(stream.byteLength).set(stream);
    d.decode();
    const info = d.getFrameInfo();
    const bytes = d.getDecodedBuffer().slice(); // a view into the WebAssembly heap: copy it
    return { bytes, bytesPerSample: 1, signed: false, width: info.width, height: info.height, components: info.componentCount };
  });
  const data = toNative(samples, pixel);
  if (space === undefined) return { data };
  return { data, photometricInterpretation: space === 'RGB' ? 'RGB' : 'YBR_FULL', planarConfiguration: 0 };
}

function decodeJpegFrame(encoded: Uint8Array, pixel: PixelDescription): DecodedFrame {
  const header = readJpegHeader(encoded);
  // Before decoding: a header that disagrees with the data set (or claims an absurd size) goes no further.
  checkGeometry({ bytes: encoded, bytesPerSample: 1, signed: false, width: header.width, height: header.height, components: header.components.length }, pixel);
  const sof = header.sof;
  if (sof === 0xc3) {
    return { data: toNative(decodeLossless(encoded, header), pixel), ...fullResolution(pixel) };
  }
  if (sof === 0xc0 || sof === 0xc1 || sof === 0xc2) {
    if (header.precision <= 8) {
      return decodeTurbo(encoded, header, pixel);
    }
    if (sof === 0xc2) throw new Error(`${header.precision}-bit progressive JPEG is not supported`);
    const img = decodeJpegDct(encoded);
    const samples: DecodedSamples = {
      bytes: new Uint8Array(img.samples.buffer, img.samples.byteOffset, img.samples.byteLength),
      bytesPerSample: 2,
      signed: false,
      width: img.width,
      height: img.height,
      components: img.components,
    };
    return { data: toNative(samples, pixel), ...fullResolution(pixel) };
  }
  throw new Error(`${sofName(sof)} JPEG is not supported`);
}

export const jpegCodec: PixelCodec = {
  name: 'JPEG (libjpeg-turbo / built-in 12-bit / jpeg-lossless-decoder-js)',
  decodeFrame: (encoded, pixel) => decodeJpegFrame(encoded, pixel),
};
