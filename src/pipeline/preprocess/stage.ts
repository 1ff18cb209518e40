/** The preprocess stage: the selected instance retrieved, decoded by the one DICOM reader, and made the model's tensor. */
import { TriageError } from '../../domain/errors.ts';
import type { InstanceMeta } from '../../domain/types.ts';
import { readDicom } from '../../dicom/index.ts';
import type { PipelineDeps } from '../ports.ts';
import type { Timed } from '../timing.ts';
import { imageToTensor, type TensorResult } from './image-tensor.ts';

export async function imageStage(instance: InstanceMeta, deps: PipelineDeps, timed: Timed): Promise<TensorResult> {
  const bytes = await timed('retrieve', () => deps.source.retrieve(instance));
  return timed('preprocess', async () => {
    try {
      if (deps.decode) return await deps.decode(bytes, deps.model.manifest.image, deps.dicomLimits ?? {});
      return imageToTensor(readDicom(bytes, deps.dicomLimits ? { limits: deps.dicomLimits } : {}), deps.model.manifest.image);
    } catch (err) {
      if (err instanceof TriageError) throw err;
      throw new TriageError('DICOM_UNREADABLE', `instance ${instance.SOPInstanceUID}: ${(err as Error).message}`, { cause: err });
    }
  });
}
