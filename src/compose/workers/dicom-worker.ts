/**
 * A DICOM worker thread: reads headers and turns instances into model tensors, so that a big or
 * crafted file never holds the event loop that answers /healthz, the webhook and the API. Each
 * message is one task; the bytes come transferred (not copied) and the tensor goes back the same way.
 */
import { parentPort } from 'node:worker_threads';
import { asTriageError } from '../../domain/errors.ts';
import { NeedMoreBytes, readDicom, readDicomHeader } from '../../dicom/read.ts';
import type { DicomLimits } from '../../dicom/limits.ts';
import { imageToTensor, type ImageSpec } from '../../pipeline/preprocess/image-tensor.ts';
import type { Answer, Task } from './protocol.ts';

function run(task: Task): { answer: Answer; transfer: ArrayBuffer[] } {
  const bytes = new Uint8Array(task.bytes);
  const limits: Partial<DicomLimits> = task.limits ?? {};
  if (task.kind === 'header') {
    try {
      return { answer: { id: task.id, ok: true, meta: readDicomHeader(bytes, { limits, partial: task.partial, where: task.where }) }, transfer: [] };
    } catch (err) {
      if (err instanceof NeedMoreBytes) return { answer: { id: task.id, ok: false, needMore: true }, transfer: [] };
      throw err;
    }
  }
  const result = imageToTensor(readDicom(bytes, { limits, where: task.where }), task.spec as ImageSpec);
  return { answer: { id: task.id, ok: true, tensor: result }, transfer: [result.tensor.buffer as ArrayBuffer] };
}

parentPort?.on('message', (task: Task) => {
  try {
    const { answer, transfer } = run(task);
    parentPort?.postMessage(answer, transfer);
  } catch (err) {
    const e = asTriageError(err, task.where);
    parentPort?.postMessage({ id: task.id, ok: false, error: { code: e.code, message: e.message, where: e.where } } satisfies Answer);
  }
});
