/** Preprocess stage: DICOM bytes → model image tensor (models/MANIFEST.md "Image preprocessing"). */
import { readDicom, type DicomImage } from '../../dicom/index.ts';
import { imageToTensor, type ImageSpec, type TensorResult } from './image-tensor.ts';

export {
  imageToTensor,
  checkImageSpec,
  voiLinear,
  tensorPlane,
  unnormalizeOf,
  type ImageSpec,
  type GreyImage,
  type DicomImageLike,
  type TensorResult,
  type WindowSource,
} from './image-tensor.ts';
export { planResize, planBilinearHalfPixel, resizeBilinearHalfPixel, resizeWith, type ResizePlan } from './resize.ts';
export { inverseResize, resizeGeometry, saliencyRegion, type Box, type ResizeGeometry } from './geometry.ts';
export { percentiles, orderStatistics } from './percentile.ts';

/** Reads a DICOM file and preprocesses frame 0: `{ image, ...tensorResult }`. */
export function dicomToTensor(buffer: Uint8Array, spec: ImageSpec): TensorResult & { image: DicomImage } {
  const image = readDicom(buffer);
  return { image, ...imageToTensor(image, spec) };
}
