/** The messages between the DICOM worker pool and its threads. */
import type { DicomLimits } from '../../dicom/limits.ts';
import type { ErrorCode } from '../../domain/errors.ts';
import type { InstanceMeta } from '../../domain/types.ts';
import type { TensorResult } from '../../pipeline/preprocess/image-tensor.ts';

export type Task =
  | { id: number; kind: 'header'; bytes: ArrayBuffer; limits?: Partial<DicomLimits>; partial: boolean; where: string }
  | { id: number; kind: 'tensor'; bytes: ArrayBuffer; limits?: Partial<DicomLimits>; spec: unknown; where: string };

export type Answer =
  | { id: number; ok: true; meta: InstanceMeta }
  | { id: number; ok: true; tensor: TensorResult }
  | { id: number; ok: false; needMore: true }
  | { id: number; ok: false; error: { code: ErrorCode; message: string; where?: string | undefined } };
