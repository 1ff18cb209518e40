/** Preprocess stage: DICOM bytes → model image tensor (models/MANIFEST.md "Image preprocessing"). */
import { readDicom, type DicomImage } from './dicom-file.ts';
import { imageToTensor, type ImageSpec, type TensorResult } from './image-tensor.ts';

export { readDicom, metaFromDataset, type DicomImage } from './dicom-file.ts';
export {
  imageToTensor,
  checkImageSpec,
  voiLinear,
  resizeBilinearHalfPixel,
  planBilinearHalfPixel,
  inverseResize,
  saliencyRegion,
  type ImageSpec,
  type GreyImage,
  type DicomImageLike,
  type TensorResult,
  type ResizePlan,
  type Box,
  type WindowSource,
  type ResizeKernel,
} from './image-tensor.ts';
export { percentiles, orderStatistics } from './percentile.ts';
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

/** Reads a DICOM file and preprocesses frame 0: `{ image, ...tensorResult }`. */
export function dicomToTensor(buffer: Uint8Array, spec: ImageSpec): TensorResult & { image: DicomImage } {
  const image = readDicom(buffer);
  return { image, ...imageToTensor(image, spec) };
}
