/**
 * Transfer syntaxes we recognise, and the per-syntax pixel codec registry.
 *
 * Native (uncompressed) syntaxes are decoded in dicom-file.ts. Encapsulated ones need a codec,
 * registered per transfer syntax UID with `registerCodec`; the built-in ones (codecs/index.ts:
 * JPEG, JPEG-LS, JPEG 2000, RLE, deflated frames) are registered when this module loads.
 * Without a codec an encapsulated syntax is refused with DICOM_UNSUPPORTED_SYNTAX.
 */
import { BUILT_IN_CODECS } from './codecs/index.ts';
import type { PixelCodec } from './codec.ts';

export type SyntaxEncoding =
  /** Pixel Data is a plain value in the data set (little or big endian samples). */
  | 'native'
  /** Pixel Data is a sequence of fragments: needs a codec. */
  | 'encapsulated'
  /** Pixel Data lives elsewhere (JPIP): never decodable here. */
  | 'referenced';

export interface TransferSyntaxInfo {
  uid: string;
  name: string;
  encoding: SyntaxEncoding;
  /** Byte order of the data set (and of native pixel samples). */
  littleEndian: boolean;
  explicitVr: boolean;
  /** The data set after the file meta group is deflated (RFC 1951). */
  deflated: boolean;
}

function ts(uid: string, name: string, encoding: SyntaxEncoding, extra: Partial<TransferSyntaxInfo> = {}): [string, TransferSyntaxInfo] {
  return [uid, { uid, name, encoding, littleEndian: true, explicitVr: true, deflated: false, ...extra }];
}

export const TRANSFER_SYNTAXES: ReadonlyMap<string, TransferSyntaxInfo> = new Map([
  ts('1.2.840.10008.1.2', 'Implicit VR Little Endian', 'native', { explicitVr: false }),
  ts('1.2.840.10008.1.2.1', 'Explicit VR Little Endian', 'native'),
  ts('1.2.840.10008.1.2.1.99', 'Deflated Explicit VR Little Endian', 'native', { deflated: true }),
  ts('1.2.840.10008.1.2.2', 'Explicit VR Big Endian', 'native', { littleEndian: false }),
  ts('1.2.840.10008.1.2.1.98', 'Encapsulated Uncompressed Explicit VR Little Endian', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.50', 'JPEG Baseline (Process 1)', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.51', 'JPEG Extended (Process 2 & 4)', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.57', 'JPEG Lossless, Non-Hierarchical (Process 14)', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.70', 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.80', 'JPEG-LS Lossless Image Compression', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.81', 'JPEG-LS Lossy (Near-Lossless) Image Compression', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.90', 'JPEG 2000 Image Compression (Lossless Only)', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.91', 'JPEG 2000 Image Compression', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.92', 'JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.93', 'JPEG 2000 Part 2 Multi-component Image Compression', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.94', 'JPIP Referenced', 'referenced'),
  ts('1.2.840.10008.1.2.4.95', 'JPIP Referenced Deflate', 'referenced', { deflated: true }),
  ts('1.2.840.10008.1.2.4.100', 'MPEG2 Main Profile / Main Level', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.101', 'MPEG2 Main Profile / High Level', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.102', 'MPEG-4 AVC/H.264 High Profile / Level 4.1', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.103', 'MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.104', 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.105', 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.106', 'MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.107', 'HEVC/H.265 Main Profile / Level 5.1', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.108', 'HEVC/H.265 Main 10 Profile / Level 5.1', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.110', 'JPEG XL Lossless', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.111', 'JPEG XL JPEG Recompression', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.112', 'JPEG XL', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.201', 'High-Throughput JPEG 2000 Image Compression (Lossless Only)', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.202', 'High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)', 'encapsulated'),
  ts('1.2.840.10008.1.2.4.203', 'High-Throughput JPEG 2000 Image Compression', 'encapsulated'),
  ts('1.2.840.10008.1.2.5', 'RLE Lossless', 'encapsulated'),
  ts('1.2.840.10008.1.2.8.1', 'Deflated Image Frame Compression', 'encapsulated'),
]);

export function transferSyntaxName(uid: string): string {
  return TRANSFER_SYNTAXES.get(uid)?.name ?? 'unknown transfer syntax';
}

/** What a codec gives back for one frame. */
export type { DecodedFrame, PixelCodec } from './codec.ts';

const codecs = new Map<string, PixelCodec>();

/**
 * Registers (or replaces) the codec for a transfer syntax; returns a function that removes it
 * again, putting back the codec it replaced (if any).
 */
export function registerCodec(transferSyntaxUID: string, codec: PixelCodec): () => void {
  const previous = codecs.get(transferSyntaxUID);
  codecs.set(transferSyntaxUID, codec);
  return () => {
    if (codecs.get(transferSyntaxUID) !== codec) return;
    if (previous === undefined) codecs.delete(transferSyntaxUID);
    else codecs.set(transferSyntaxUID, previous);
  };
}

export function codecFor(transferSyntaxUID: string): PixelCodec | undefined {
  return codecs.get(transferSyntaxUID);
}

/**
 * Encapsulated Uncompressed Explicit VR Little Endian: each frame is one fragment holding
 * native little-endian bytes. Registered by default; it also shows what a codec looks like.
 */
export const encapsulatedUncompressedCodec: PixelCodec = {
  name: 'encapsulated uncompressed (built in)',
  decodeFrame: (encoded) => ({ data: encoded }),
};
registerCodec('1.2.840.10008.1.2.1.98', encapsulatedUncompressedCodec);
for (const [uid, codec] of BUILT_IN_CODECS) registerCodec(uid, codec);
