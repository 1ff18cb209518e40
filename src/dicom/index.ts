/**
 * The one DICOM module: bounded reading (structure walk with limits on every path), transfer
 * syntaxes and codecs, the one InstanceMeta builder, DICOM JSON at the boundary, and the Part 10
 * writer. Everything that reads or writes DICOM goes through here.
 */
export { readDicom, readDicomHeader, type DicomImage, type ReadOptions } from './read.ts';
export { DEFAULT_DICOM_LIMITS, type DicomLimits } from './limits.ts';
export { instanceMeta, studyUidOf, type NaturalDataset } from './instance-meta.ts';
export { ATTRIBUTES, QIDO_INSTANCE_FIELDS, hexTag, type Attribute } from './attributes.ts';
export { naturalize, type DicomJson } from './json.ts';
export { type PixelDescription, type PaletteLut } from './pixels.ts';
export {
  registerCodec,
  codecFor,
  transferSyntaxName,
  TRANSFER_SYNTAXES,
  type PixelCodec,
  type DecodedFrame,
  type TransferSyntaxInfo,
} from './transfer-syntax.ts';
export { writePart10, readPart10, metaFor, EXPLICIT_VR_LITTLE_ENDIAN, IMPLEMENTATION_CLASS_UID } from './part10.ts';
