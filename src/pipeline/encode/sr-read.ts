/**
 * Reads our TID 1500 SRs back: the proof that every SR written says what the model said.
 * `readSrFindings(part10)` returns the findings (finding code via the SNOMED CT concept, present /
 * absent, probability, threshold, region); `srRepresentation(finding)` is the same finding at the
 * precision an SR holds (probability through a DS, coordinates through FL), for comparisons.
 * Findings are read from both places `encodeSr` writes them — Measurement Groups (findings with a
 * region) and Qualitative Evaluations (findings without) — and returned in the mappings' order.
 * The frame a region or an Image Library entry refers to (multi-frame images) is read back too.
 */
import type { CodedConcept, FindingsMappings } from '../../domain/codes.ts';
import { findingCodeForConcept, sameConcept } from '../../domain/codes.ts';
import { defaultFindingsMappings } from '../../config/findings.ts';
import { TriageError } from '../../domain/errors.ts';
import type { Finding, InstanceMeta } from '../../domain/types.ts';
import type { NaturalDataset } from '../../dicom/part10.ts';
import { readPart10 } from '../../dicom/part10.ts';
import { formatDecimalString } from './sr-items.ts';
import { MODEL_FRAME_NUMBER, isMultiFrame } from './sr-references.ts';
import type { SrReference } from './sr.ts';
import { formatAlgorithmParameters } from './sr.ts';

/** A finding as an SR carries it. */
export interface SrFinding {
  code: string;
  positive: boolean;
  probability: number;
  threshold?: number;
  /** `frameNumber`: the frame of a multi-frame image the region is on (absent for a single-frame image). */
  region?: { sopInstanceUID: string; frameNumber?: number; x0: number; y0: number; x1: number; y1: number };
}

/** An image reference (Image Library entry). */
export interface SrImageRef {
  sopClassUID: string;
  sopInstanceUID: string;
  frameNumber?: number;
}

export interface SrDocument {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  deviceObserverUid?: string;
  instanceNumber?: number;
  /** The TID 1600 Image Library: the source images (and the frame read, for a multi-frame one). */
  imageLibrary: SrImageRef[];
  predecessors: SrReference[];
  findings: SrFinding[];
}

const PROBABILITY_DIGITS = 10;

function bad(problem: string): never {
  throw new TriageError('DICOM_UNREADABLE', `SR: ${problem}`, { where: 'encode.sr-read' });
}

type Item = NaturalDataset;

function seq(item: Item | undefined, key: string): Item[] {
  const v = item?.[key];
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]) as Item[];
}

function str(item: Item | undefined, key: string): string | undefined {
  const v = item?.[key];
  if (Array.isArray(v)) return v.length > 0 ? String(v[0]) : undefined;
  return v === undefined || v === null ? undefined : String(v);
}

function conceptOf(codeItem: Item | undefined): CodedConcept | undefined {
  if (!codeItem) return undefined;
  const value = str(codeItem, 'CodeValue');
  const scheme = str(codeItem, 'CodingSchemeDesignator');
  const meaning = str(codeItem, 'CodeMeaning') ?? '';
  return value && scheme ? { value, scheme, meaning } : undefined;
}

function nameOf(item: Item): CodedConcept | undefined {
  return conceptOf(seq(item, 'ConceptNameCodeSequence')[0]);
}

function isNamed(item: Item, concept: CodedConcept): boolean {
  const n = nameOf(item);
  return n !== undefined && sameConcept(n, concept);
}

function children(item: Item): Item[] {
  return seq(item, 'ContentSequence');
}

function findChild(item: Item, concept: CodedConcept, valueType: string): Item | undefined {
  return children(item).find((c) => str(c, 'ValueType') === valueType && isNamed(c, concept));
}

/** Referenced Frame Number: one frame (that is what we write); undefined when absent. */
function frameOf(sop: Item | undefined, what: string): number | undefined {
  const raw = sop?.['ReferencedFrameNumber'];
  if (raw === undefined || raw === null) return undefined;
  const values = (Array.isArray(raw) ? raw : [raw]).map(Number);
  if (values.length !== 1 || !Number.isInteger(values[0]) || values[0]! < 1) bad(`${what}: Referenced Frame Number is not one frame number`);
  return values[0];
}

function imageRefOf(img: Item | undefined, what: string): SrImageRef | undefined {
  const sop = seq(img, 'ReferencedSOPSequence')[0];
  const sopInstanceUID = str(sop, 'ReferencedSOPInstanceUID');
  if (!sopInstanceUID) return undefined;
  const frameNumber = frameOf(sop, what);
  return { sopClassUID: str(sop, 'ReferencedSOPClassUID') ?? '', sopInstanceUID, ...(frameNumber === undefined ? {} : { frameNumber }) };
}

function regionOf(scoord: Item, what: string): SrFinding['region'] {
  if (str(scoord, 'GraphicType') !== 'POLYLINE') bad(`${what}: SCOORD is not a POLYLINE`);
  const data = scoord.GraphicData;
  const points = (Array.isArray(data) ? data : []).map(Number);
  if (points.length < 6 || points.length % 2 !== 0 || points.some((n) => !Number.isFinite(n))) {
    bad(`${what}: SCOORD has malformed Graphic Data`);
  }
  const xs = points.filter((_, i) => i % 2 === 0);
  const ys = points.filter((_, i) => i % 2 === 1);
  const img = children(scoord).find((c) => str(c, 'RelationshipType') === 'SELECTED FROM' && str(c, 'ValueType') === 'IMAGE');
  const ref = imageRefOf(img, what);
  if (!ref) bad(`${what}: SCOORD is not SELECTED FROM an image`);
  return {
    sopInstanceUID: ref.sopInstanceUID,
    ...(ref.frameNumber === undefined ? {} : { frameNumber: ref.frameNumber }),
    x0: Math.min(...xs),
    y0: Math.min(...ys),
    x1: Math.max(...xs),
    y1: Math.max(...ys),
  };
}

function parseThreshold(params: string | undefined): number | undefined {
  const m = params?.match(/(?:^|[\s;,])threshold=([0-9.eE+-]+)/);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : undefined;
}

/** Reads an SR dataset (naturalized) written by `encodeSr`. */
export function readSrDataset(ds: NaturalDataset, mappings: FindingsMappings = defaultFindingsMappings()): SrDocument {
  const sr = mappings.sr;
  if (str(ds, 'ValueType') !== 'CONTAINER' || !isNamed(ds, sr.documentTitle)) {
    bad(`root is not a CONTAINER "${sr.documentTitle.meaning}"`);
  }
  const template = seq(ds, 'ContentTemplateSequence')[0];
  if (template && str(template, 'TemplateIdentifier') !== '1500') bad('root template is not TID 1500');
  const measurements = findChild(ds, sr.imagingMeasurements, 'CONTAINER');
  const evaluations = findChild(ds, sr.qualitativeEvaluations, 'CONTAINER');
  if (!measurements && !evaluations) bad(`neither "${sr.imagingMeasurements.meaning}" nor "${sr.qualitativeEvaluations.meaning}"`);
  const deviceObserverUid = str(findChild(ds, sr.deviceObserverUid, 'UIDREF'), 'UID');
  const library = findChild(ds, sr.imageLibrary, 'CONTAINER');
  const imageLibrary = (library ? children(library) : [])
    .filter((g) => str(g, 'ValueType') === 'CONTAINER' && isNamed(g, sr.imageLibraryGroup))
    .flatMap((g) => children(g).filter((c) => str(c, 'ValueType') === 'IMAGE'))
    .flatMap((img, i) => imageRefOf(img, `image library entry ${i + 1}`) ?? []);
  const instanceNumber = Number(str(ds, 'InstanceNumber'));

  /** The probability NUM (and the threshold in its Algorithm Parameters). */
  const probabilityOf = (numItem: Item | undefined, what: string, code: string): Pick<SrFinding, 'probability' | 'threshold'> => {
    const measured = seq(numItem, 'MeasuredValueSequence')[0];
    const unit = conceptOf(seq(measured, 'MeasurementUnitsCodeSequence')[0]);
    const raw = Number(str(measured, 'NumericValue'));
    if (!numItem || !unit || !Number.isFinite(raw)) bad(`${what} (${code}) has no "${sr.probability.concept.meaning}" value`);
    if (!sameConcept(unit, sr.probability.unit)) bad(`${what} (${code}): probability unit is ${unit.value}, expected ${sr.probability.unit.value}`);
    const probability = Number((raw / sr.probability.scale).toPrecision(PROBABILITY_DIGITS));
    const threshold = parseThreshold(str(findChild(numItem, sr.algorithmParameters, 'TEXT'), 'TextValue'));
    return { probability, ...(threshold === undefined ? {} : { threshold }) };
  };
  const presenceOf = (value: CodedConcept | undefined, what: string, code: string): boolean => {
    if (!value) bad(`${what} (${code}) has no "${sr.presence.meaning}" evaluation`);
    if (sameConcept(value, sr.present)) return true;
    if (sameConcept(value, sr.absent)) return false;
    return bad(`${what} (${code}): presence is neither present nor absent`);
  };

  // Findings with a region: Measurement Groups under Imaging Measurements.
  const located = (measurements ? children(measurements) : [])
    .filter((g) => str(g, 'ValueType') === 'CONTAINER' && isNamed(g, sr.measurementGroup))
    .map((group, i): SrFinding => {
      const what = `measurement group ${i + 1}`;
      const findingItem = findChild(group, sr.finding, 'CODE');
      const concept = conceptOf(seq(findingItem, 'ConceptCodeSequence')[0]);
      if (!concept) bad(`${what} has no "${sr.finding.meaning}"`);
      const code = findingCodeForConcept(mappings, concept);
      if (!code) bad(`${what}: finding (${concept.value}, ${concept.scheme}, "${concept.meaning}") is not in the mappings`);
      const positive = presenceOf(conceptOf(seq(findChild(group, sr.presence, 'CODE'), 'ConceptCodeSequence')[0]), what, code);
      const scoord = children(group).find((c) => str(c, 'ValueType') === 'SCOORD' && isNamed(c, sr.imageRegion));
      return {
        code,
        positive,
        ...probabilityOf(findChild(group, sr.probability.concept, 'NUM'), what, code),
        ...(scoord ? { region: regionOf(scoord, `${what} (${code})`) } : {}),
      };
    });

  // Findings without a region: qualitative evaluations, <finding> = Present | Absent, INFERRED FROM the NUM.
  const unlocated = (evaluations ? children(evaluations) : [])
    .filter((c) => str(c, 'ValueType') === 'CODE')
    .flatMap((item, i): SrFinding[] => {
      const concept = nameOf(item);
      const code = concept ? findingCodeForConcept(mappings, concept) : undefined;
      if (!code) return []; // another qualitative evaluation, not one of the model's findings
      const what = `qualitative evaluation ${i + 1}`;
      const positive = presenceOf(conceptOf(seq(item, 'ConceptCodeSequence')[0]), what, code);
      const numItem = children(item).find(
        (c) => str(c, 'RelationshipType') === 'INFERRED FROM' && str(c, 'ValueType') === 'NUM' && isNamed(c, sr.probability.concept),
      );
      return [{ code, positive, ...probabilityOf(numItem, what, code) }];
    });

  // In the order of the mappings (the model's findings), wherever each was written.
  const order = Object.keys(mappings.findings);
  const findings = [...located, ...unlocated].sort((a, b) => order.indexOf(a.code) - order.indexOf(b.code));
  const seen = new Set<string>();
  for (const f of findings) {
    if (seen.has(f.code)) bad(`finding "${f.code}" appears twice`);
    seen.add(f.code);
  }

  const predecessors = seq(ds, 'PredecessorDocumentsSequence').flatMap((st) =>
    seq(st, 'ReferencedSeriesSequence').flatMap((se) =>
      seq(se, 'ReferencedSOPSequence').map((sop) => ({
        studyInstanceUID: str(st, 'StudyInstanceUID') ?? '',
        seriesInstanceUID: str(se, 'SeriesInstanceUID') ?? '',
        sopInstanceUID: str(sop, 'ReferencedSOPInstanceUID') ?? '',
        sopClassUID: str(sop, 'ReferencedSOPClassUID') ?? '',
      })),
    ),
  );

  return {
    studyInstanceUID: str(ds, 'StudyInstanceUID') ?? bad('no Study Instance UID'),
    seriesInstanceUID: str(ds, 'SeriesInstanceUID') ?? bad('no Series Instance UID'),
    sopInstanceUID: str(ds, 'SOPInstanceUID') ?? bad('no SOP Instance UID'),
    ...(deviceObserverUid ? { deviceObserverUid } : {}),
    ...(Number.isInteger(instanceNumber) ? { instanceNumber } : {}),
    imageLibrary,
    predecessors,
    findings,
  };
}

/** Reads a Part 10 SR written by `encodeSr`. */
export function readSr(part10: Uint8Array, mappings?: FindingsMappings): SrDocument {
  return readSrDataset(readPart10(part10), mappings);
}

/** The findings an SR written by `encodeSr` carries. */
export function readSrFindings(part10: Uint8Array, mappings?: FindingsMappings): SrFinding[] {
  return readSr(part10, mappings).findings;
}

/**
 * A model finding at the precision an SR holds it: probability through the DS of the NUM (10
 * significant digits), region coordinates through FL (float32), and — when `source` (the image
 * the model read) is multi-frame — the frame the region is on. `readSrFindings(encodeSr(x))`
 * equals `x.inference.findings.map(f => srRepresentation(f, mappings, x.inference.sourceInstance))`.
 */
export function srRepresentation(
  f: Finding,
  mappings: FindingsMappings = defaultFindingsMappings(),
  source?: Pick<InstanceMeta, 'SOPInstanceUID' | 'SOPClassUID' | 'NumberOfFrames'>,
): SrFinding {
  const frame = source && f.region?.sopInstanceUID === source.SOPInstanceUID && isMultiFrame(source) ? MODEL_FRAME_NUMBER : undefined;
  const scale = mappings.sr.probability.scale;
  const ds = Number(formatDecimalString(f.probability * scale));
  return {
    code: f.code,
    positive: f.positive,
    probability: Number((ds / scale).toPrecision(PROBABILITY_DIGITS)),
    threshold: parseThreshold(formatAlgorithmParameters(f)) as number,
    ...(f.region
      ? {
          region: {
            sopInstanceUID: f.region.sopInstanceUID,
            ...(frame === undefined ? {} : { frameNumber: frame }),
            x0: Math.fround(f.region.x0),
            y0: Math.fround(f.region.y0),
            x1: Math.fround(f.region.x1),
            y1: Math.fround(f.region.y1),
          },
        }
      : {}),
  };
}
