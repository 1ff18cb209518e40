import dcmjs from 'dcmjs';
import type { InstanceMeta } from '../../domain/types.ts';

/** A DICOM JSON object (PS3.18 F.2): hex tags → { vr, Value }. */
export type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

const { DicomMetaDictionary } = dcmjs.data;

/**
 * DICOM JSON becomes a keyword-named object at the adapter boundary (OHIF's qido.js does the
 * same), with the first value of each attribute and person names as their alphabetic string.
 */
export function naturalize(json: DicomJson): Record<string, unknown> {
  const natural = DicomMetaDictionary.naturalizeDataset(structuredClone(json)) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [keyword, value] of Object.entries(natural)) {
    if (keyword === '_vrMap') continue;
    out[keyword] = value;
  }
  return out;
}

function first(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : value;
}

function str(value: unknown): string | undefined {
  const v = first(value);
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object' && 'Alphabetic' in (v as object)) return String((v as { Alphabetic?: string }).Alphabetic ?? '');
  return String(v);
}

function num(value: unknown): number | undefined {
  const v = first(value);
  if (v === undefined || v === null || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Keyword-named InstanceMeta from a naturalized dataset; the three UIDs are required. */
export function instanceMetaOf(natural: Record<string, unknown>): InstanceMeta {
  const meta: InstanceMeta = {
    StudyInstanceUID: str(natural['StudyInstanceUID']) ?? '',
    SeriesInstanceUID: str(natural['SeriesInstanceUID']) ?? '',
    SOPInstanceUID: str(natural['SOPInstanceUID']) ?? '',
    SOPClassUID: str(natural['SOPClassUID']) ?? '',
  };
  const strings = [
    'Modality', 'BodyPartExamined', 'SeriesDescription', 'ViewPosition', 'PatientID', 'IssuerOfPatientID', 'PatientName',
    'PatientBirthDate', 'PatientSex', 'PatientAge', 'AccessionNumber', 'StudyDate', 'StudyTime', 'StudyDescription', 'StudyID',
    'ReferringPhysicianName', 'Manufacturer',
  ] as const;
  for (const key of strings) {
    const v = str(natural[key]);
    if (v !== undefined) meta[key] = v;
  }
  for (const key of ['SeriesNumber', 'InstanceNumber', 'Rows', 'Columns'] as const) {
    const v = num(natural[key]);
    if (v !== undefined) meta[key] = v;
  }
  const imageType = natural['ImageType'];
  if (imageType !== undefined) meta.ImageType = (Array.isArray(imageType) ? imageType : [imageType]).map(String);
  return meta;
}
