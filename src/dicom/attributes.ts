/**
 * The one table of the DICOM attributes pacs-triage reads: keyword, tag, VR, and how each is
 * used. Every reader takes its list from here — the InstanceMeta builder, the native fast path,
 * the QIDO-RS includefield list — so an attribute is spelled once.
 */
import type { InstanceMeta } from '../domain/types.ts';

/**
 * - `uid`: one of the four identifying UIDs (required);
 * - `string`: first value, padding trimmed, empty = absent;
 * - `person`: the Alphabetic group of the first value;
 * - `number`: first value as a number (IS, US);
 * - `strings`: every value, trimmed (ImageType);
 * - `pixel`: the Image Pixel module, rescale and window — read by the pixel description, not InstanceMeta.
 */
export type AttributeKind = 'uid' | 'string' | 'person' | 'number' | 'strings' | 'pixel';

export interface Attribute {
  keyword: string;
  /** (group << 16 | element) >>> 0 */
  tag: number;
  vr: string;
  kind: AttributeKind;
  /** Asked for in QIDO-RS instance searches (series selection and the SR need it before retrieval). */
  qido: boolean;
}

type Spec = readonly [tag: number, vr: string, kind: AttributeKind, qido: boolean];

/** InstanceMeta's attributes: a mapped type, so the compiler insists on a row per key. */
const META: { readonly [K in keyof Required<InstanceMeta>]: Spec } = {
  ImageType: [0x00080008, 'CS', 'strings', true],
  SOPClassUID: [0x00080016, 'UI', 'uid', true],
  SOPInstanceUID: [0x00080018, 'UI', 'uid', true],
  StudyDate: [0x00080020, 'DA', 'string', true],
  StudyTime: [0x00080030, 'TM', 'string', true],
  AccessionNumber: [0x00080050, 'SH', 'string', true],
  Modality: [0x00080060, 'CS', 'string', true],
  Manufacturer: [0x00080070, 'LO', 'string', true],
  ReferringPhysicianName: [0x00080090, 'PN', 'person', true],
  StudyDescription: [0x00081030, 'LO', 'string', true],
  SeriesDescription: [0x0008103e, 'LO', 'string', true],
  PatientName: [0x00100010, 'PN', 'person', true],
  PatientID: [0x00100020, 'LO', 'string', true],
  IssuerOfPatientID: [0x00100021, 'LO', 'string', true],
  PatientBirthDate: [0x00100030, 'DA', 'string', true],
  PatientSex: [0x00100040, 'CS', 'string', true],
  PatientAge: [0x00101010, 'AS', 'string', true],
  BodyPartExamined: [0x00180015, 'CS', 'string', true],
  // ProtocolName and RequestedProcedureDescription: series selection reads them when an archive
  // leaves BodyPartExamined empty (mappings/series-selection.yaml).
  ProtocolName: [0x00181030, 'LO', 'string', true],
  ViewPosition: [0x00185101, 'CS', 'string', true],
  StudyInstanceUID: [0x0020000d, 'UI', 'uid', true],
  SeriesInstanceUID: [0x0020000e, 'UI', 'uid', true],
  StudyID: [0x00200010, 'SH', 'string', true],
  SeriesNumber: [0x00200011, 'IS', 'number', true],
  InstanceNumber: [0x00200013, 'IS', 'number', true],
  // In InstanceMeta (not only the pixel description) because the SR must say which frame of a
  // multi-frame image it refers to (Referenced Frame Number is 1C on multi-frame references),
  // and the SR is written from QIDO-RS attributes; Orthanc's QIDO-RS returns it (a main instance tag).
  NumberOfFrames: [0x00280008, 'IS', 'number', true],
  Rows: [0x00280010, 'US', 'number', true],
  Columns: [0x00280011, 'US', 'number', true],
  RequestedProcedureDescription: [0x00321060, 'LO', 'string', true],
};

/** The Image Pixel module, rescale and the first window: read by the pixel description. */
const PIXEL: Readonly<Record<string, Spec>> = {
  SamplesPerPixel: [0x00280002, 'US', 'pixel', false],
  PhotometricInterpretation: [0x00280004, 'CS', 'pixel', false],
  PlanarConfiguration: [0x00280006, 'US', 'pixel', false],
  BitsAllocated: [0x00280100, 'US', 'pixel', false],
  BitsStored: [0x00280101, 'US', 'pixel', false],
  HighBit: [0x00280102, 'US', 'pixel', false],
  PixelRepresentation: [0x00280103, 'US', 'pixel', false],
  WindowCenter: [0x00281050, 'DS', 'pixel', false],
  WindowWidth: [0x00281051, 'DS', 'pixel', false],
  RescaleIntercept: [0x00281052, 'DS', 'pixel', false],
  RescaleSlope: [0x00281053, 'DS', 'pixel', false],
};

export const ATTRIBUTES: readonly Attribute[] = Object.entries({ ...META, ...PIXEL })
  .map(([keyword, [tag, vr, kind, qido]]) => ({ keyword, tag, vr, kind, qido }))
  .sort((a, b) => a.tag - b.tag);

/** InstanceMeta's attributes, by kind. */
export const META_ATTRIBUTES = ATTRIBUTES.filter((a) => a.kind !== 'pixel') as readonly (Attribute & { keyword: keyof InstanceMeta })[];

/** By tag (the native fast path looks elements up as it meets them). */
export const ATTRIBUTE_BY_TAG: ReadonlyMap<number, Attribute> = new Map(ATTRIBUTES.map((a) => [a.tag, a]));

/** `0020000D` — the hex form DICOM JSON and QIDO-RS use. */
export function hexTag(tag: number): string {
  return tag.toString(16).toUpperCase().padStart(8, '0');
}

/** The includefield list of a QIDO-RS instance search. */
export const QIDO_INSTANCE_FIELDS: readonly string[] = ATTRIBUTES.filter((a) => a.qido).map((a) => hexTag(a.tag));

