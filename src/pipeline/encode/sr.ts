/**
 * Encodes one inference result as a DICOM Comprehensive 3D SR with a TID 1500 Measurement Report
 * root, per IHE AI Results (AIR). Pure: the same input gives byte-identical Part 10 output (all
 * UIDs derive from the result key; all times come from the input, never from the clock).
 *
 * Content tree (relationship, value type, concept):
 *
 *   CONTAINER (126000, DCM, "Imaging Measurement Report")               TID 1500, template 1500/DCMR
 *   ├ HAS CONCEPT MOD  CODE  Language of Content Item… = en-US               TID 1204
 *   ├ HAS OBS CONTEXT  CODE  Observer Type = Device                          TID 1001/1004
 *   ├ HAS OBS CONTEXT  UIDREF Device Observer UID = manifest deviceUid
 *   ├ HAS OBS CONTEXT  TEXT  Device Observer Name / Manufacturer / Model Name
 *   ├ HAS CONCEPT MOD  CODE  Procedure reported = the imaging procedure       (not the algorithm)
 *   ├ CONTAINS CONTAINER Image Library › Image Library Group › IMAGE (each source image)  TID 1600 (template 1600/DCMR)
 *   ├ CONTAINS CONTAINER Imaging Measurements          (only when a finding has a region)   TID 1500 row 6
 *   │   └ CONTAINS CONTAINER Measurement Group (one per finding WITH a region)    TID 1410 (template 1410/DCMR)
 *   │       ├ HAS OBS CONTEXT TEXT   Tracking Identifier
 *   │       ├ HAS OBS CONTEXT UIDREF Tracking Unique Identifier      (stable per study+model+finding)
 *   │       ├ CONTAINS CODE  Finding = SNOMED CT concept of the finding
 *   │       ├ CONTAINS SCOORD Image Region POLYLINE (closed rectangle) › SELECTED FROM IMAGE (+ frame 1 if multi-frame)
 *   │       ├ CONTAINS NUM   Certainty of Finding = probability × 100 %    TID 300
 *   │       │   ├ HAS CONCEPT MOD TEXT Algorithm Name / Version / Parameters (threshold)  TID 4019
 *   │       │   └ INFERRED FROM SCOORD POLYLINE › SELECTED FROM IMAGE  (where OHIF looks to list it)
 *   │       └ CONTAINS CODE  Presence = Present | Absent (probability ≥ threshold)
 *   └ CONTAINS CONTAINER Qualitative Evaluations       (only when a finding has none)   TID 1500 row 12
 *       └ CONTAINS CODE  <SNOMED CT finding> = Present | Absent (one per finding WITHOUT a region)  row 13
 *           ├ HAS OBS CONTEXT TEXT / UIDREF Tracking Identifier / Tracking Unique Identifier
 *           └ INFERRED FROM NUM Certainty of Finding = probability × 100 %
 *               └ HAS CONCEPT MOD TEXT Algorithm Name / Version / Parameters (threshold)
 *
 * Why two places: OHIF 3.13 (@ohif/app 3.13.2) throws a TypeError on any Measurement Group that
 * has no image coordinates (getSopClassHandlerModule `_checkIfCanAddMeasurementsToDisplaySet`
 * reads `coords[0].ReferencedSOPSequence`), and then shows nothing of the SR at all. Findings
 * without a region therefore go to TID 1500's Qualitative Evaluations, which OHIF ignores and
 * every TID 1500 reader understands; see test/integration/ohif.test.ts and README.md beside this.
 */
import type { CodedConcept, FindingsMappings } from '../../domain/codes.ts';
import { findingCodes } from '../../domain/codes.ts';
import { TriageError } from '../../domain/errors.ts';
import type { Finding, InferenceResult, InstanceMeta, StudyMeta } from '../../domain/types.ts';
import { assertUidRoot, deriveUid, isValidUid, srSeriesInstanceUID, trackingKey } from '../../domain/uids.ts';
export { srSeriesInstanceUID } from '../../domain/uids.ts';
import type { NaturalDataset } from '../../dicom/part10.ts';
import { writePart10 } from '../../dicom/part10.ts';
import type { ContentItem } from './sr-items.ts';
import { DCMR_MAPPING_RESOURCE_UID, code, codeSequenceItem, container, num, scoordRect, text, uidref } from './sr-items.ts';
import { evidenceSequence, hierarchicalRef, imageLibrary, instanceRefOf, isMultiFrame, validateInstance } from './sr-references.ts';
import { codingSchemeIdentification } from './sr-schemes.ts';
import { patientAndStudy } from './study-modules.ts';

export { DCMR_MAPPING_RESOURCE_UID } from './sr-items.ts';
export const COMPREHENSIVE_3D_SR_SOP_CLASS_UID = '1.2.840.10008.5.1.4.1.1.88.34';
export const SR_SERIES_NUMBER = 9901;
export const SR_SERIES_DESCRIPTION = 'AI triage results - not for diagnostic use';

/** A previously written SR that this one supersedes (Predecessor Documents Sequence). */
export interface SrReference {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  /** Defaults to Comprehensive 3D SR. */
  sopClassUID?: string;
}

export interface SrEncodeInput {
  /** The configured DICOM UID root all derived UIDs go under. */
  uidRoot: string;
  /** `resultKey(...)` of this result (domain/uids.ts). */
  resultKey: string;
  /** Patient and General Study attributes, copied verbatim (same Study Instance UID). */
  study: StudyMeta;
  /** The model run; `inference.sourceInstance` is the image the model read. */
  inference: Pick<InferenceResult, 'modelId' | 'modelVersion' | 'deviceUid' | 'sourceInstance' | 'findings'>;
  /** Other source instances the result used (e.g. for the result key), referenced as evidence too. */
  otherSourceInstances?: readonly InstanceMeta[];
  /** From the model manifest. */
  model: { name: string; manufacturer: string };
  mappings: FindingsMappings;
  /**
   * When the result was produced: the inference time stored with the job (ISO 8601 with a zone,
   * e.g. `2024-05-01T10:11:12.345Z`). Content and Instance Creation Date/Time come from it (in UTC),
   * so a rerun of the same key writes an identical SR.
   */
  producedAt: string;
  /** The imaging procedure (the study's Procedure Code Sequence); default from the mappings. */
  procedure?: CodedConcept;
  /** The SR this one supersedes, if any. */
  predecessor?: SrReference;
  /**
   * Instance Number (default 1). Every result of a study shares the SR series, so each needs its
   * own number there; the encode stage numbers them and stores the number with the result.
   */
  instanceNumber?: number;
  /** Our software, for Software Versions (default: model version only). */
  software?: { name: string; version: string };
}

export interface SrEncodeOutput {
  dataset: NaturalDataset;
  part10: Uint8Array;
  sopInstanceUID: string;
  seriesInstanceUID: string;
}

function refuse(problem: string): never {
  throw new TriageError('INTERNAL', `SR encoder: ${problem}`, { where: 'encode.sr' });
}

function requireText(value: string | undefined, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') refuse(`${what} is required`);
  return value;
}

/** ISO 8601 instant → DICOM DA/TM in UTC. */
export function dicomDateTimeUtc(iso: string): { date: string; time: string } {
  if (typeof iso !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(iso)) {
    refuse(`producedAt "${String(iso)}" is not an ISO 8601 date-time with a time zone`);
  }
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) refuse(`producedAt "${iso}" is not a valid date-time`);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const date = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}`;
  const ms = d.getUTCMilliseconds();
  const time = `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}${ms ? `.${p(ms, 3)}` : ''}`;
  return { date, time };
}

/** Threshold as written in (and read back from) the Algorithm Parameters text. */
export function formatAlgorithmParameters(finding: Pick<Finding, 'threshold'>): string {
  return `threshold=${finding.threshold}`;
}

function validateFinding(f: Finding, i: number): void {
  const what = `finding[${i}]`;
  requireText(f.code, `${what}.code`);
  for (const k of ['probability', 'threshold'] as const) {
    const v = f[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) refuse(`${what} (${f.code}).${k} must be in [0, 1], got ${String(v)}`);
  }
  if (typeof f.positive !== 'boolean') refuse(`${what} (${f.code}).positive must be a boolean`);
}

/** Encodes the SR. Throws TriageError (INTERNAL / CONFIG_INVALID) on incomplete input; never writes a partial SR. */
export function encodeSr(input: SrEncodeInput): SrEncodeOutput {
  const { mappings, inference, study } = input;
  const sr = mappings.sr;
  assertUidRoot(input.uidRoot);
  requireText(input.resultKey, 'resultKey');
  if (!isValidUid(study?.StudyInstanceUID)) refuse(`study.StudyInstanceUID "${String(study?.StudyInstanceUID)}" is not a valid UID`);
  requireText(inference.modelId, 'inference.modelId');
  requireText(inference.modelVersion, 'inference.modelVersion');
  if (!isValidUid(inference.deviceUid)) refuse(`inference.deviceUid "${String(inference.deviceUid)}" is not a valid UID`);
  requireText(input.model?.name, 'model.name');
  requireText(input.model?.manufacturer, 'model.manufacturer');
  if (!Array.isArray(inference.findings) || inference.findings.length === 0) refuse('at least one finding is required');
  inference.findings.forEach(validateFinding);
  const codes = new Set<string>();
  for (const f of inference.findings) {
    if (codes.has(f.code)) refuse(`finding "${f.code}" appears twice`);
    codes.add(f.code);
  }
  const { date, time } = dicomDateTimeUtc(input.producedAt);
  const instanceNumber = input.instanceNumber ?? 1;
  if (!Number.isInteger(instanceNumber) || instanceNumber < 1) refuse(`instanceNumber ${String(instanceNumber)} is not a positive integer`);

  const source = validateInstance(inference.sourceInstance, study.StudyInstanceUID, 'inference.sourceInstance');
  const evidence = new Map<string, InstanceMeta>([[source.SOPInstanceUID, source]]);
  (input.otherSourceInstances ?? []).forEach((m, i) => {
    const v = validateInstance(m, study.StudyInstanceUID, `otherSourceInstances[${i}]`);
    if (!evidence.has(v.SOPInstanceUID)) evidence.set(v.SOPInstanceUID, v);
  });
  const evidenceList = [...evidence.values()].sort((a, b) =>
    a.SeriesInstanceUID === b.SeriesInstanceUID
      ? cmp(a.SOPInstanceUID, b.SOPInstanceUID)
      : cmp(a.SeriesInstanceUID, b.SeriesInstanceUID),
  );

  const seriesInstanceUID = srSeriesInstanceUID(input.uidRoot, study.StudyInstanceUID, inference.modelId, inference.deviceUid);
  const sopInstanceUID = deriveUid(input.uidRoot, input.resultKey, 'sr-instance');
  const trackKey = trackingKey(study.StudyInstanceUID, inference.modelId);

  const algorithm = (f: Finding): ContentItem[] => [
    text('HAS CONCEPT MOD', sr.algorithmName, input.model.name),
    text('HAS CONCEPT MOD', sr.algorithmVersion, inference.modelVersion),
    text('HAS CONCEPT MOD', sr.algorithmParameters, formatAlgorithmParameters(f)),
  ];

  const trackingItems = (f: Finding): ContentItem[] => [
    text('HAS OBS CONTEXT', sr.trackingIdentifier, `${inference.modelId} ${f.code}`),
    uidref('HAS OBS CONTEXT', sr.trackingUniqueIdentifier, deriveUid(input.uidRoot, trackKey, `tracking:${f.code}`)),
  ];

  const isRead = (m: InstanceMeta): boolean => m.SOPInstanceUID === source.SOPInstanceUID;

  // A finding with a region: a TID 1410 Measurement Group (a group-level SCOORD, and the
  // probability NUM INFERRED FROM the same SCOORD, which is what OHIF needs to list it).
  const groups = inference.findings
    .filter((f) => f.region)
    .map((f) => {
      const concepts = findingCodes(mappings, f.code);
      const r = f.region!;
      const img = evidence.get(r.sopInstanceUID);
      if (!img) refuse(`finding "${f.code}" has a region on ${r.sopInstanceUID}, which is not a source image`);
      // A region is in the pixels of the frame the model read; another image has no such frame.
      if (!isRead(img) && isMultiFrame(img)) refuse(`finding "${f.code}" has a region on multi-frame ${r.sopInstanceUID}, which the model did not read`);
      const on = { ...instanceRefOf(img, isRead(img)), rows: img.Rows, columns: img.Columns };
      const rect = { x0: r.x0, y0: r.y0, x1: r.x1, y1: r.y1 };
      return container(
        'CONTAINS',
        sr.measurementGroup,
        [
          ...trackingItems(f),
          code('CONTAINS', sr.finding, concepts.concept),
          scoordRect('CONTAINS', sr.imageRegion, rect, on),
          num('CONTAINS', sr.probability.concept, f.probability * sr.probability.scale, sr.probability.unit, [
            ...algorithm(f),
            scoordRect('INFERRED FROM', undefined, rect, on),
          ]),
          code('CONTAINS', sr.presence, f.positive ? sr.present : sr.absent),
        ],
        { templateId: '1410' },
      );
    });

  // A finding without a region: a qualitative evaluation (TID 1500 row 13), finding = Present |
  // Absent, INFERRED FROM its probability NUM. Not a Measurement Group: OHIF 3.13 throws on a
  // Measurement Group that has no image coordinates and then shows nothing of the whole SR.
  const evaluations = inference.findings
    .filter((f) => !f.region)
    .map((f) =>
      code('CONTAINS', findingCodes(mappings, f.code).concept, f.positive ? sr.present : sr.absent, [
        ...trackingItems(f),
        num('INFERRED FROM', sr.probability.concept, f.probability * sr.probability.scale, sr.probability.unit, algorithm(f)),
      ]),
    );

  const procedure = input.procedure ?? mappings.procedureReported.default;
  const content: ContentItem[] = [
    code('HAS CONCEPT MOD', sr.language, sr.languageValue),
    code('HAS OBS CONTEXT', sr.observerType, sr.observerTypeDevice),
    uidref('HAS OBS CONTEXT', sr.deviceObserverUid, inference.deviceUid),
    text('HAS OBS CONTEXT', sr.deviceObserverName, input.model.name),
    text('HAS OBS CONTEXT', sr.deviceObserverManufacturer, input.model.manufacturer),
    text('HAS OBS CONTEXT', sr.deviceObserverModelName, inference.modelId),
    code('HAS CONCEPT MOD', sr.procedureReported, procedure),
    imageLibrary(sr, evidenceList.map((m) => instanceRefOf(m, isRead(m)))),
    // TID 1500 needs row 6 (Imaging Measurements) or row 12 (Qualitative Evaluations), or both.
    ...(groups.length > 0 ? [container('CONTAINS', sr.imagingMeasurements, groups)] : []),
    ...(evaluations.length > 0 ? [container('CONTAINS', sr.qualitativeEvaluations, evaluations)] : []),
  ];

  const softwareVersions = input.software
    ? [inference.modelVersion, `${input.software.name} ${input.software.version}`]
    : [inference.modelVersion];
  const equipment = {
    Manufacturer: input.model.manufacturer,
    ManufacturerModelName: inference.modelId,
    SoftwareVersions: softwareVersions,
    DeviceUID: inference.deviceUid,
  };

  const predecessor = input.predecessor;
  if (predecessor) {
    for (const k of ['studyInstanceUID', 'seriesInstanceUID', 'sopInstanceUID'] as const) {
      if (!isValidUid(predecessor[k])) refuse(`predecessor.${k} "${String(predecessor[k])}" is not a valid UID`);
    }
    if (predecessor.sopInstanceUID === sopInstanceUID) refuse('the predecessor is this SR itself (same result key)');
  }

  const dataset: NaturalDataset = {
    // SOP Common
    SpecificCharacterSet: 'ISO_IR 192',
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    SOPClassUID: COMPREHENSIVE_3D_SR_SOP_CLASS_UID,
    SOPInstanceUID: sopInstanceUID,
    TimezoneOffsetFromUTC: '+0000',
    ContributingEquipmentSequence: [
      {
        ...equipment,
        PurposeOfReferenceCodeSequence: [codeSequenceItem(sr.processingAlgorithm, 'Contributing Equipment purpose')],
        ContributionDescription: `${input.model.name} ${inference.modelVersion}`,
      },
    ],
    // Patient and General Study (copied)
    ...patientAndStudy(study),
    // SR Document Series
    Modality: 'SR',
    SeriesInstanceUID: seriesInstanceUID,
    SeriesNumber: SR_SERIES_NUMBER,
    SeriesDescription: SR_SERIES_DESCRIPTION,
    ReferencedPerformedProcedureStepSequence: [],
    // General Equipment (Device UID only in Contributing Equipment: General Equipment has none in the
    // IOD dciodvfy checks against, and the Device Observer UID item carries it in the content)
    Manufacturer: equipment.Manufacturer,
    ManufacturerModelName: equipment.ManufacturerModelName,
    SoftwareVersions: equipment.SoftwareVersions,
    // SR Document General
    InstanceNumber: instanceNumber,
    ContentDate: date,
    ContentTime: time,
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    ...(predecessor
      ? {
          PredecessorDocumentsSequence: [
            hierarchicalRef(predecessor.studyInstanceUID, predecessor.seriesInstanceUID, [
              { sopClassUID: predecessor.sopClassUID ?? COMPREHENSIVE_3D_SR_SOP_CLASS_UID, sopInstanceUID: predecessor.sopInstanceUID },
            ]),
          ],
        }
      : {}),
    CurrentRequestedProcedureEvidenceSequence: evidenceSequence(study.StudyInstanceUID, evidenceList),
    PerformedProcedureCodeSequence: [],
    // SR Document Content (root)
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [codeSequenceItem(sr.documentTitle, 'document title')],
    ContinuityOfContent: 'SEPARATE',
    ContentTemplateSequence: [{ MappingResource: 'DCMR', MappingResourceUID: DCMR_MAPPING_RESOURCE_UID, TemplateIdentifier: '1500' }],
    ContentSequence: content,
  };
  const schemes = codingSchemeIdentification(dataset);
  if (schemes) dataset.CodingSchemeIdentificationSequence = schemes;

  return { dataset, part10: writePart10(dataset), sopInstanceUID, seriesInstanceUID };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
