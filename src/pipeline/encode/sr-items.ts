/**
 * Typed SR content-item builders (PS3.3 C.17.3, Comprehensive 3D SR). Each builder returns the
 * naturalized dataset of one content item and REFUSES incomplete or malformed input when called
 * (TriageError INTERNAL, naming the item), so a broken SR can never be assembled. The types allow
 * only the relationship types Comprehensive 3D SR permits for the value type (PS3.3 A.35.13.3.1.2),
 * and concept names are coded concepts (from codes.ts), never free text.
 */
import type { CodedConcept } from '../../domain/codes.ts';
import { TriageError } from '../../domain/errors.ts';
import { isValidUid } from '../../domain/uids.ts';

export interface CodeSequenceItem {
  CodeValue: string;
  CodingSchemeDesignator: string;
  CodeMeaning: string;
  CodingSchemeVersion?: string;
}

export type RelationshipType =
  | 'CONTAINS'
  | 'HAS OBS CONTEXT'
  | 'HAS CONCEPT MOD'
  | 'HAS PROPERTIES'
  | 'HAS ACQ CONTEXT'
  | 'INFERRED FROM'
  | 'SELECTED FROM';

interface ItemBase {
  RelationshipType: RelationshipType;
  ConceptNameCodeSequence?: CodeSequenceItem[];
  ContentSequence?: ContentItem[];
}

/** Template Identification (PS3.3 C.18.8.1.2): the DCMR template that defines a CONTAINER's content. */
export interface TemplateItem {
  MappingResource: 'DCMR';
  MappingResourceUID: string;
  TemplateIdentifier: string;
}

export interface ContainerItem extends ItemBase {
  ValueType: 'CONTAINER';
  ConceptNameCodeSequence: CodeSequenceItem[];
  ContinuityOfContent: 'SEPARATE' | 'CONTINUOUS';
  ContentTemplateSequence?: [TemplateItem];
}
export interface CodeItem extends ItemBase {
  ValueType: 'CODE';
  ConceptNameCodeSequence: CodeSequenceItem[];
  ConceptCodeSequence: CodeSequenceItem[];
}
export interface TextItem extends ItemBase {
  ValueType: 'TEXT';
  ConceptNameCodeSequence: CodeSequenceItem[];
  TextValue: string;
}
export interface UidrefItem extends ItemBase {
  ValueType: 'UIDREF';
  ConceptNameCodeSequence: CodeSequenceItem[];
  UID: string;
}
export interface NumItem extends ItemBase {
  ValueType: 'NUM';
  ConceptNameCodeSequence: CodeSequenceItem[];
  MeasuredValueSequence: { NumericValue: string; MeasurementUnitsCodeSequence: CodeSequenceItem[] }[];
}
export interface ImageItem extends ItemBase {
  ValueType: 'IMAGE';
  ReferencedSOPSequence: { ReferencedSOPClassUID: string; ReferencedSOPInstanceUID: string; ReferencedFrameNumber?: number }[];
}
export interface ScoordItem extends ItemBase {
  ValueType: 'SCOORD';
  GraphicType: 'POINT' | 'MULTIPOINT' | 'POLYLINE' | 'CIRCLE' | 'ELLIPSE';
  GraphicData: number[];
  ContentSequence: [ImageItem];
}

export type ContentItem = ContainerItem | CodeItem | TextItem | UidrefItem | NumItem | ImageItem | ScoordItem;

/** A reference to a composite instance (an image). */
export interface InstanceRef {
  sopClassUID: string;
  sopInstanceUID: string;
  /**
   * The frame referred to (1-based), for a multi-frame image only: Referenced Frame Number is 1C,
   * required when the reference does not apply to all frames and absent for single-frame images.
   */
  frameNumber?: number;
}

/** The DICOM Mapping Resource UID of DCMR (PS3.16 templates). */
export const DCMR_MAPPING_RESOURCE_UID = '1.2.840.10008.8.1.1';

/** Content Template Sequence of a DCMR template. */
export function dcmrTemplate(templateId: string): [TemplateItem] {
  if (!/^[1-9][0-9]*$/.test(templateId)) refuse(`template ${templateId}`, 'a DCMR Template Identifier is digits without leading zeros');
  return [{ MappingResource: 'DCMR', MappingResourceUID: DCMR_MAPPING_RESOURCE_UID, TemplateIdentifier: templateId }];
}

function refuse(what: string, problem: string): never {
  throw new TriageError('INTERNAL', `SR content item ${what}: ${problem}`, { where: 'encode.sr' });
}

const SH_MAX = 16;
const LO_MAX = 64;
const UT_MAX = 4294967294;

/** A coded entry (Code Sequence Macro) from a coded concept; refuses an incomplete or oversized one. */
export function codeSequenceItem(concept: CodedConcept | undefined, what: string): CodeSequenceItem {
  if (!concept) refuse(what, 'coded concept is missing');
  const { value, scheme, meaning } = concept;
  if (typeof value !== 'string' || value.trim() === '') refuse(what, 'Code Value is missing');
  if (typeof scheme !== 'string' || scheme.trim() === '') refuse(what, `Coding Scheme Designator is missing (code ${value})`);
  if (typeof meaning !== 'string' || meaning.trim() === '') refuse(what, `Code Meaning is missing (code ${value})`);
  if (value.length > SH_MAX) refuse(what, `Code Value "${value}" is longer than ${SH_MAX} characters`);
  if (scheme.length > SH_MAX) refuse(what, `Coding Scheme Designator "${scheme}" is longer than ${SH_MAX} characters`);
  if (meaning.length > LO_MAX) refuse(what, `Code Meaning "${meaning}" is longer than ${LO_MAX} characters`);
  if (/[\\\n\r]/.test(value + scheme + meaning)) refuse(what, 'coded concept contains a backslash or line break');
  return {
    CodeValue: value,
    CodingSchemeDesignator: scheme,
    CodeMeaning: meaning,
    ...(concept.schemeVersion ? { CodingSchemeVersion: concept.schemeVersion } : {}),
  };
}

function label(name: CodedConcept | undefined): string {
  return name ? `"${name.meaning}"` : '(unnamed)';
}

function withChildren<T extends ItemBase>(item: T, children: readonly ContentItem[] | undefined): T {
  if (children && children.length > 0) item.ContentSequence = [...children];
  return item;
}

/**
 * CONTAINER. Children are required: an empty container says nothing. `templateId`: the DCMR
 * template whose outermost CONTAINER this is (Content Template Sequence is 1C on it, PS3.3
 * C.18.8.1.2, and readers such as highdicom find TID 1410 groups by it).
 */
export function container(
  rel: 'CONTAINS',
  name: CodedConcept,
  children: readonly ContentItem[],
  options: { continuity?: 'SEPARATE' | 'CONTINUOUS'; templateId?: string } = {},
): ContainerItem {
  const what = `CONTAINER ${label(name)}`;
  const concept = codeSequenceItem(name, what);
  if (children.length === 0) refuse(what, 'has no content items');
  return withChildren(
    {
      RelationshipType: rel,
      ValueType: 'CONTAINER',
      ConceptNameCodeSequence: [concept],
      ContinuityOfContent: options.continuity ?? 'SEPARATE',
      ...(options.templateId ? { ContentTemplateSequence: dcmrTemplate(options.templateId) } : {}),
    },
    children,
  );
}

/** CODE: name = value. */
export function code(
  rel: 'CONTAINS' | 'HAS OBS CONTEXT' | 'HAS CONCEPT MOD' | 'HAS PROPERTIES' | 'HAS ACQ CONTEXT' | 'INFERRED FROM',
  name: CodedConcept,
  value: CodedConcept | undefined,
  children?: readonly ContentItem[],
): CodeItem {
  const what = `CODE ${label(name)}`;
  return withChildren(
    {
      RelationshipType: rel,
      ValueType: 'CODE',
      ConceptNameCodeSequence: [codeSequenceItem(name, what)],
      ConceptCodeSequence: [codeSequenceItem(value, `${what} value`)],
    },
    children,
  );
}

/** TEXT: a non-empty string. */
export function text(
  rel: 'CONTAINS' | 'HAS OBS CONTEXT' | 'HAS CONCEPT MOD' | 'HAS PROPERTIES' | 'HAS ACQ CONTEXT' | 'INFERRED FROM',
  name: CodedConcept,
  value: string | undefined,
): TextItem {
  const what = `TEXT ${label(name)}`;
  const concept = codeSequenceItem(name, what);
  if (typeof value !== 'string' || value.trim() === '') refuse(what, 'text value is missing');
  if (value.length > UT_MAX) refuse(what, 'text value is too long');
  return { RelationshipType: rel, ValueType: 'TEXT', ConceptNameCodeSequence: [concept], TextValue: value };
}

/** UIDREF: a valid DICOM UID. (Not HAS CONCEPT MOD: Comprehensive 3D SR does not allow UIDREF there.) */
export function uidref(
  rel: 'CONTAINS' | 'HAS OBS CONTEXT' | 'HAS ACQ CONTEXT' | 'INFERRED FROM',
  name: CodedConcept,
  uid: string | undefined,
): UidrefItem {
  const what = `UIDREF ${label(name)}`;
  const concept = codeSequenceItem(name, what);
  if (!isValidUid(uid)) refuse(what, `"${String(uid)}" is not a valid DICOM UID`);
  return { RelationshipType: rel, ValueType: 'UIDREF', ConceptNameCodeSequence: [concept], UID: uid };
}

/** Formats a number as a DICOM DS value (≤ 16 characters), refusing what DS cannot hold. */
export function formatDecimalString(value: number, what = 'DS'): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) refuse(what, `numeric value ${String(value)} is not a finite number`);
  for (let digits = 12; digits >= 1; digits--) {
    const s = String(Number(value.toPrecision(digits)));
    if (s.length <= 16) return s.replace('e', 'E');
  }
  refuse(what, `numeric value ${value} does not fit a DS`);
}

/** NUM: a finite value with a UCUM unit. */
export function num(
  rel: 'CONTAINS' | 'HAS OBS CONTEXT' | 'HAS PROPERTIES' | 'HAS ACQ CONTEXT' | 'INFERRED FROM',
  name: CodedConcept,
  value: number | undefined,
  unit: CodedConcept | undefined,
  children?: readonly ContentItem[],
): NumItem {
  const what = `NUM ${label(name)}`;
  const concept = codeSequenceItem(name, what);
  if (typeof value !== 'number') refuse(what, 'numeric value is missing');
  const numeric = formatDecimalString(value, what);
  const units = codeSequenceItem(unit, `${what} unit`);
  if (units.CodingSchemeDesignator !== 'UCUM') refuse(what, `unit must be a UCUM code, got ${units.CodingSchemeDesignator}`);
  return withChildren(
    {
      RelationshipType: rel,
      ValueType: 'NUM',
      ConceptNameCodeSequence: [concept],
      MeasuredValueSequence: [{ NumericValue: numeric, MeasurementUnitsCodeSequence: [units] }],
    },
    children,
  );
}

function instanceRef(ref: InstanceRef | undefined, what: string): ImageItem['ReferencedSOPSequence'][number] {
  if (!ref) refuse(what, 'image reference is missing');
  if (!isValidUid(ref.sopClassUID)) refuse(what, `SOP Class UID "${String(ref.sopClassUID)}" is not a valid UID`);
  if (!isValidUid(ref.sopInstanceUID)) refuse(what, `SOP Instance UID "${String(ref.sopInstanceUID)}" is not a valid UID`);
  const frame = ref.frameNumber;
  if (frame !== undefined && (!Number.isInteger(frame) || frame < 1)) refuse(what, `frame number ${String(frame)} is not a positive integer`);
  return {
    ReferencedSOPClassUID: ref.sopClassUID,
    ReferencedSOPInstanceUID: ref.sopInstanceUID,
    ...(frame !== undefined ? { ReferencedFrameNumber: frame } : {}),
  };
}

/** IMAGE: a reference to an image (the concept name is optional for IMAGE items). */
export function image(
  rel: 'CONTAINS' | 'SELECTED FROM' | 'INFERRED FROM' | 'HAS OBS CONTEXT' | 'HAS ACQ CONTEXT',
  ref: InstanceRef | undefined,
  name?: CodedConcept,
): ImageItem {
  const what = `IMAGE ${label(name)}`;
  const item: ImageItem = { RelationshipType: rel, ValueType: 'IMAGE', ReferencedSOPSequence: [instanceRef(ref, what)] };
  if (name) item.ConceptNameCodeSequence = [codeSequenceItem(name, what)];
  return item;
}

/** A rectangle in image pixel coordinates (column x, row y; 0,0 = top-left corner of the top-left pixel). */
export interface PixelRect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * SCOORD POLYLINE of a rectangle, closed (5 points, the last equal to the first), SELECTED FROM
 * the image it is drawn on. Refuses a degenerate rectangle or one outside the image.
 */
export function scoordRect(
  rel: 'CONTAINS' | 'INFERRED FROM',
  name: CodedConcept | undefined,
  rect: PixelRect | undefined,
  on: (InstanceRef & { rows: number | undefined; columns: number | undefined }) | undefined,
): ScoordItem {
  const what = `SCOORD ${label(name)}`;
  if (!rect) refuse(what, 'region is missing');
  if (!on) refuse(what, 'the image the region is drawn on is missing');
  const { x0, y0, x1, y1 } = rect;
  for (const [k, v] of Object.entries({ x0, y0, x1, y1 })) {
    if (typeof v !== 'number' || !Number.isFinite(v)) refuse(what, `${k} is not a finite number`);
  }
  if (!(x1 > x0 && y1 > y0)) refuse(what, `region (${x0},${y0})–(${x1},${y1}) is empty or inverted`);
  const { rows, columns } = on;
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || (rows as number) <= 0 || (columns as number) <= 0) {
    refuse(what, 'Rows and Columns of the source image are needed to check the region');
  }
  if (x0 < 0 || y0 < 0 || x1 > (columns as number) || y1 > (rows as number)) {
    refuse(what, `region (${x0},${y0})–(${x1},${y1}) lies outside the ${columns}×${rows} image`);
  }
  const item: ScoordItem = {
    RelationshipType: rel,
    ValueType: 'SCOORD',
    GraphicType: 'POLYLINE',
    GraphicData: [x0, y0, x1, y0, x1, y1, x0, y1, x0, y0],
    ContentSequence: [image('SELECTED FROM', on)],
  };
  if (name) item.ConceptNameCodeSequence = [codeSequenceItem(name, what)];
  return item;
}
