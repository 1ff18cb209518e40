/**
 * The SR's references to the source images: the image references of content items (with the
 * frame the model read, for a multi-frame image), the TID 1600 Image Library, and the
 * Hierarchical SOP Instance References of the evidence and predecessor sequences. Pure.
 */
import type { CodedConcept } from '../../domain/codes.ts';
import { TriageError } from '../../domain/errors.ts';
import type { InstanceMeta } from '../../domain/types.ts';
import { isValidUid } from '../../domain/uids.ts';
import type { NaturalDataset } from '../../dicom/part10.ts';
import type { ContainerItem, InstanceRef } from './sr-items.ts';
import { container, image } from './sr-items.ts';

/**
 * The frame of a multi-frame image the model reads: preprocessing takes frame index 0
 * (pipeline/preprocess/image-tensor.ts), which DICOM numbers 1.
 */
export const MODEL_FRAME_NUMBER = 1;

function refuse(problem: string): never {
  throw new TriageError('INTERNAL', `SR encoder: ${problem}`, { where: 'encode.sr' });
}

/**
 * Image SOP Classes whose IODs have no Multi-frame Module: an instance of one is a single-frame
 * image whatever NumberOfFrames it carries, and Referenced Frame Number "shall not be present"
 * for it (dciodvfy reports an error). CR, DX / MG / IO (presentation and processing), CT, MR,
 * US, SC, PET, VL endoscopic / microscopic / slide-coordinates / photographic. A deny-list, not an
 * allow-list of multi-frame classes: a newer multi-frame class (photoacoustic, say) must still
 * get its frame number, which the standard requires.
 */
const SINGLE_FRAME_SOP_CLASSES: ReadonlySet<string> = new Set(
  ['1', '1.1', '1.1.1', '1.2', '1.2.1', '1.3', '1.3.1', '2', '4', '6.1', '7', '128', '77.1.1', '77.1.2', '77.1.3', '77.1.4'].map(
    (suffix) => `1.2.840.10008.5.1.4.1.1.${suffix}`,
  ),
);

/**
 * Whether Referenced Frame Number is needed (PS3.3 Image SOP Instance Reference Macro, 1C: "the
 * Referenced SOP Instance is a multi-frame image"): more than one frame (absent = one), in a
 * SOP Class that can have more than one.
 */
export function isMultiFrame(meta: Pick<InstanceMeta, 'NumberOfFrames' | 'SOPClassUID'>): boolean {
  return (meta.NumberOfFrames ?? 1) > 1 && !SINGLE_FRAME_SOP_CLASSES.has(meta.SOPClassUID);
}

/**
 * A reference to a source image. `read`: the model read it, so a multi-frame image is referenced
 * at the frame it read — the reference does not apply to the other frames, which makes Referenced
 * Frame Number required (PS3.3 Image SOP Instance Reference Macro, 1C). An image the result used
 * without reading its pixels is referenced whole, without a frame.
 */
export function instanceRefOf(meta: InstanceMeta, read: boolean): InstanceRef {
  return {
    sopClassUID: meta.SOPClassUID,
    sopInstanceUID: meta.SOPInstanceUID,
    ...(read && isMultiFrame(meta) ? { frameNumber: MODEL_FRAME_NUMBER } : {}),
  };
}

/** Checks a source instance's UIDs and that it belongs to the study the SR reports on. */
export function validateInstance(meta: InstanceMeta | undefined, studyUID: string, what: string): InstanceMeta {
  if (!meta) refuse(`${what} is required`);
  for (const k of ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID', 'SOPClassUID'] as const) {
    if (!isValidUid(meta[k])) refuse(`${what}.${k} "${String(meta[k])}" is not a valid UID`);
  }
  if (meta.StudyInstanceUID !== studyUID) {
    refuse(`${what} ${meta.SOPInstanceUID} belongs to study ${meta.StudyInstanceUID}, not ${studyUID}`);
  }
  const frames = meta.NumberOfFrames;
  if (frames !== undefined && (!Number.isInteger(frames) || frames < 1)) refuse(`${what}.NumberOfFrames ${frames} is not a positive integer`);
  return meta;
}

/** TID 1600 Image Library: one group, an IMAGE per source image (TID 1601/1602). */
export function imageLibrary(
  names: { imageLibrary: CodedConcept; imageLibraryGroup: CodedConcept },
  images: readonly InstanceRef[],
): ContainerItem {
  return container(
    'CONTAINS',
    names.imageLibrary,
    [container('CONTAINS', names.imageLibraryGroup, images.map((r) => image('CONTAINS', r)))],
    { templateId: '1600' },
  );
}

/** Hierarchical SOP Instance Reference Macro (one study, one series). */
export function hierarchicalRef(
  studyInstanceUID: string,
  seriesInstanceUID: string,
  instances: readonly Pick<InstanceRef, 'sopClassUID' | 'sopInstanceUID'>[],
): NaturalDataset {
  return {
    StudyInstanceUID: studyInstanceUID,
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: seriesInstanceUID,
        ReferencedSOPSequence: instances.map((r) => ({
          ReferencedSOPClassUID: r.sopClassUID,
          ReferencedSOPInstanceUID: r.sopInstanceUID,
        })),
      },
    ],
  };
}

/** Current Requested Procedure Evidence Sequence: the source images, by series. */
export function evidenceSequence(studyInstanceUID: string, instances: readonly InstanceMeta[]): NaturalDataset[] {
  const bySeries = new Map<string, InstanceMeta[]>();
  for (const m of instances) {
    const list = bySeries.get(m.SeriesInstanceUID) ?? [];
    list.push(m);
    bySeries.set(m.SeriesInstanceUID, list);
  }
  return [
    {
      StudyInstanceUID: studyInstanceUID,
      ReferencedSeriesSequence: [...bySeries.entries()].map(([series, list]) => ({
        SeriesInstanceUID: series,
        ReferencedSOPSequence: list.map((m) => ({
          ReferencedSOPClassUID: m.SOPClassUID,
          ReferencedSOPInstanceUID: m.SOPInstanceUID,
        })),
      })),
    },
  ];
}
