/**
 * What a retraction writes, encoded: pure and deterministic, like sr.ts and fhir.ts.
 *
 * PACS — an IHE IOCM **Rejection Note**: a Key Object Selection Document (KOS, SOP Class
 * 1.2.840.10008.5.1.4.1.1.88.59, TID 2010) whose document title is a CID 7011 rejection code
 * and whose content references the SRs being withdrawn. That is the one mechanism DICOM/IHE define
 * for "these stored instances are wrong, stop showing them": IOCM-aware archives (dcm4chee-arc and
 * others) hide the referenced instances from normal queries once the note is stored.
 *
 * Why not (only) a superseding SR with Predecessor Documents Sequence: Predecessor Documents names
 * SRs "whose content has been wholly or partially included in this document", i.e. a new version
 * of the report — the pipeline already uses it when a changed input gives a new result. A
 * retraction has no new result: TID 1500 needs Imaging Measurements (row 6) or Qualitative
 * Evaluations (row 12) with content, so a "no findings" TID 1500 would have to invent an
 * evaluation, and a reader that does not follow predecessors would show it as one more AI result.
 * A new result after a retraction (new series, new model) still names the retracted SR in its
 * Predecessor Documents, as any new result does.
 *
 * Title: (113001, DCM, "Rejected for Quality Reasons") for a result marked wrong — the CID 7011
 * reason for an object that is unfit for use but not misfiled; "Rejected for Patient Safety
 * Reasons" (113037) and "Incorrect Modality Worklist Entry" (113038) are for objects attached to the
 * wrong patient or order, which is not what a wrong AI finding is, and make IOCM archives refuse
 * the objects even to the rejected-instances views.
 *
 * FHIR — the RiskAssessment set to `entered-in-error` (R4: "the assessment was entered in error"),
 * and a Provenance of the change: activity v3-DataOperation NULLIFY, reason = the reason given,
 * agent = our service Device (by identifier), target = the RiskAssessment version that says so,
 * tagged `urn:pacs-triage:retraction|<result key>` and written as a conditional create on that
 * tag, so a retried retraction creates it once. Both carry a generated narrative; the
 * RiskAssessment's is made again, so that it says "entered in error" instead of what it said before.
 */
import type { CodedConcept } from '../../domain/codes.ts';
import { TriageError } from '../../domain/errors.ts';
import type { FhirResource, StudyMeta } from '../../domain/types.ts';
import { assertUidRoot, canonicalJson, deriveUid, deterministicUuid, isValidUid, rejectionNoteSeriesUID, sha256Hex } from '../../domain/uids.ts';
export { rejectionNoteSeriesUID } from '../../domain/uids.ts';
import { writePart10, type NaturalDataset } from '../../dicom/part10.ts';
import type { Provenance, RiskAssessment } from '@medplum/fhirtypes';
import { DATA_OPERATION, PARTICIPANT_TYPE, SERVICE_SYSTEM, type Coding, type Identifier } from './fhir.ts';
import { provenanceNarrative, riskAssessmentNarrative } from './narrative.ts';
import { DCMR_MAPPING_RESOURCE_UID, codeSequenceItem, text } from './sr-items.ts';
import { COMPREHENSIVE_3D_SR_SOP_CLASS_UID, dicomDateTimeUtc } from './sr.ts';
import { patientAndStudy } from './study-modules.ts';

export const KEY_OBJECT_SELECTION_SOP_CLASS_UID = '1.2.840.10008.5.1.4.1.1.88.59';
export const REJECTION_SERIES_NUMBER = 9902;
export const REJECTION_SERIES_DESCRIPTION = 'AI triage results rejected - do not use';
export const RETRACTION_SYSTEM = 'urn:pacs-triage:retraction';

/** CID 7011 "Rejected for Quality Reasons". */
export const REJECTED_FOR_QUALITY: CodedConcept = { value: '113001', scheme: 'DCM', meaning: 'Rejected for Quality Reasons' };
const KEY_OBJECT_DESCRIPTION: CodedConcept = { value: '113012', scheme: 'DCM', meaning: 'Key Object Description' };
const LANGUAGE: CodedConcept = { value: '121049', scheme: 'DCM', meaning: 'Language of Content Item and Descendants' };
const ENGLISH_US: CodedConcept = { value: 'en-US', scheme: 'RFC5646', meaning: 'English (United States)' };

/** The text of the note's Key Object Description: fixed, never the reason given (free text may name a patient). */
export const REJECTION_DESCRIPTION =
  'pacs-triage: the AI triage result in the referenced SR was marked wrong and is withdrawn. Do not use it.';

function refuse(problem: string): never {
  throw new TriageError('INTERNAL', `retraction encoder: ${problem}`, { where: 'encode.retraction' });
}

/** An SR being withdrawn (always one of ours: Comprehensive 3D SR unless said otherwise). */
export interface RejectedSr {
  seriesInstanceUID: string;
  sopInstanceUID: string;
  sopClassUID?: string;
}

export interface RejectionNoteInput {
  uidRoot: string;
  study: StudyMeta;
  rejected: readonly RejectedSr[];
  /** When the retraction was asked for (ISO 8601 with a zone): Content/Instance Creation Date and Time, so a retry writes the same bytes. */
  requestedAt: string;
  /** Our software, for Manufacturer / Software Versions of the note. */
  software: { name: string; version: string };
}

export interface RejectionNoteOutput {
  dataset: NaturalDataset;
  part10: Uint8Array;
  sopInstanceUID: string;
  seriesInstanceUID: string;
}

/**
 * UIDs of a rejection note. The instance UID derives from the set of SRs it rejects (so the same
 * retraction, retried or asked again, is the same note); the series is one per study for all our
 * notes. Both go through deriveUid with keys that no SR key can equal (they are hashes of
 * different canonical objects), so they never collide with an SR UID.
 */
export function rejectionNoteUids(uidRoot: string, studyInstanceUID: string, rejected: readonly RejectedSr[]): { seriesInstanceUID: string; sopInstanceUID: string } {
  const sops = [...new Set(rejected.map((r) => r.sopInstanceUID))].sort();
  return {
    seriesInstanceUID: rejectionNoteSeriesUID(uidRoot, studyInstanceUID),
    sopInstanceUID: deriveUid(uidRoot, sha256Hex(canonicalJson({ v: 1, studyInstanceUID, rejects: sops })), 'sr-instance'),
  };
}

/** Encodes the IOCM rejection note (KOS, TID 2010). Throws TriageError on incomplete input. */
export function encodeRejectionNote(input: RejectionNoteInput): RejectionNoteOutput {
  assertUidRoot(input.uidRoot);
  const study = input.study;
  if (!isValidUid(study?.StudyInstanceUID)) refuse(`study.StudyInstanceUID "${String(study?.StudyInstanceUID)}" is not a valid UID`);
  if (!Array.isArray(input.rejected) || input.rejected.length === 0) refuse('at least one SR to reject is required');
  for (const r of input.rejected) {
    if (!isValidUid(r.seriesInstanceUID)) refuse(`rejected series "${String(r.seriesInstanceUID)}" is not a valid UID`);
    if (!isValidUid(r.sopInstanceUID)) refuse(`rejected instance "${String(r.sopInstanceUID)}" is not a valid UID`);
  }
  const { date, time } = dicomDateTimeUtc(input.requestedAt);
  const { seriesInstanceUID, sopInstanceUID } = rejectionNoteUids(input.uidRoot, study.StudyInstanceUID, input.rejected);

  // Sorted and de-duplicated, so the bytes do not depend on the order the results were listed in.
  const bySop = new Map(input.rejected.map((r) => [r.sopInstanceUID, r]));
  const rejected = [...bySop.values()].sort((a, b) =>
    a.seriesInstanceUID === b.seriesInstanceUID ? cmp(a.sopInstanceUID, b.sopInstanceUID) : cmp(a.seriesInstanceUID, b.seriesInstanceUID),
  );
  const refOf = (r: RejectedSr): { ReferencedSOPClassUID: string; ReferencedSOPInstanceUID: string } => ({
    ReferencedSOPClassUID: r.sopClassUID ?? COMPREHENSIVE_3D_SR_SOP_CLASS_UID,
    ReferencedSOPInstanceUID: r.sopInstanceUID,
  });
  const bySeries = new Map<string, RejectedSr[]>();
  for (const r of rejected) bySeries.set(r.seriesInstanceUID, [...(bySeries.get(r.seriesInstanceUID) ?? []), r]);

  const content: NaturalDataset[] = [
    { RelationshipType: 'HAS CONCEPT MOD', ValueType: 'CODE', ConceptNameCodeSequence: [codeSequenceItem(LANGUAGE, 'language')], ConceptCodeSequence: [codeSequenceItem(ENGLISH_US, 'language value')] },
    text('CONTAINS', KEY_OBJECT_DESCRIPTION, REJECTION_DESCRIPTION) as unknown as NaturalDataset,
    // COMPOSITE: TID 2010 references non-image objects (an SR) this way.
    ...rejected.map((r) => ({ RelationshipType: 'CONTAINS', ValueType: 'COMPOSITE', ReferencedSOPSequence: [refOf(r)] })),
  ];

  const software = `${input.software.name} ${input.software.version}`;
  const dataset: NaturalDataset = {
    SpecificCharacterSet: 'ISO_IR 192',
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    SOPClassUID: KEY_OBJECT_SELECTION_SOP_CLASS_UID,
    SOPInstanceUID: sopInstanceUID,
    TimezoneOffsetFromUTC: '+0000',
    ...patientAndStudy(study),
    // Key Object Document Series: a series of its own (a series has one modality, and KO is not SR).
    Modality: 'KO',
    SeriesInstanceUID: seriesInstanceUID,
    SeriesNumber: REJECTION_SERIES_NUMBER,
    SeriesDescription: REJECTION_SERIES_DESCRIPTION,
    ReferencedPerformedProcedureStepSequence: [],
    Manufacturer: input.software.name,
    SoftwareVersions: software,
    // Key Object Document
    InstanceNumber: 1,
    ContentDate: date,
    ContentTime: time,
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: study.StudyInstanceUID,
        ReferencedSeriesSequence: [...bySeries.entries()].map(([series, list]) => ({
          SeriesInstanceUID: series,
          ReferencedSOPSequence: list.map(refOf),
        })),
      },
    ],
    // SR Document Content (root): the document title is the rejection reason (IOCM).
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [codeSequenceItem(REJECTED_FOR_QUALITY, 'document title')],
    ContinuityOfContent: 'SEPARATE',
    ContentTemplateSequence: [{ MappingResource: 'DCMR', MappingResourceUID: DCMR_MAPPING_RESOURCE_UID, TemplateIdentifier: '2010' }],
    ContentSequence: content,
  };
  return { dataset, part10: writePart10(dataset), sopInstanceUID, seriesInstanceUID };
}

/** A RiskAssessment as read from the server, set to entered-in-error; undefined when it already is (nothing to write). */
export function enteredInError(riskAssessment: FhirResource): FhirResource | undefined {
  if (riskAssessment.resourceType !== 'RiskAssessment') refuse(`expected a RiskAssessment, got ${riskAssessment.resourceType}`);
  if (riskAssessment['status'] === 'entered-in-error') return undefined;
  const updated = { ...riskAssessment, status: 'entered-in-error' } as unknown as RiskAssessment;
  return { ...updated, text: riskAssessmentNarrative(updated) } as unknown as FhirResource;
}

export interface RetractionProvenanceInput {
  /** The result key of the retracted RiskAssessment (its official identifier). */
  resultKey: string;
  /**
   * `RiskAssessment/<id>` and the versionId the entered-in-error update made: the target is then
   * that version (`…/_history/<versionId>`), the one that says it is wrong. Only a server that
   * answers an update with neither a body nor an ETag leaves it unknown (target unversioned).
   */
  riskAssessment: { ref: string; versionId?: string };
  /** When the retraction was asked for (ISO 8601 with a zone). */
  requestedAt: string;
  cause: 'marked-wrong' | 'study-deleted';
  /** Free text given with the request (absent once purged, or for a deletion). */
  reason?: string;
  service: { name: string; version: string };
}

export interface RetractionProvenanceEntry {
  fullUrl: string;
  resource: FhirResource;
  request: { method: 'POST'; url: 'Provenance'; ifNoneExist: string };
}

/** The transaction Bundle (one conditional create) of the Provenance of a retraction. */
export function encodeRetractionProvenance(input: RetractionProvenanceInput): { resourceType: 'Bundle'; type: 'transaction'; entry: [RetractionProvenanceEntry] } {
  if (typeof input.resultKey !== 'string' || input.resultKey === '') refuse('resultKey is required');
  if (!/^RiskAssessment\/[A-Za-z0-9\-.]{1,64}$/.test(input.riskAssessment?.ref ?? '')) refuse(`"${String(input.riskAssessment?.ref)}" is not a RiskAssessment/<id> reference`);
  const at = new Date(input.requestedAt);
  if (Number.isNaN(at.getTime())) refuse(`requestedAt "${input.requestedAt}" is not a date-time`);
  const recorded = at.toISOString();
  const target = input.riskAssessment.versionId ? `${input.riskAssessment.ref}/_history/${input.riskAssessment.versionId}` : input.riskAssessment.ref;
  const serviceId = `${input.service.name}@${input.service.version}`;
  const serviceIdentifier: Identifier = { system: SERVICE_SYSTEM, value: serviceId };
  const tag: Coding = { system: RETRACTION_SYSTEM, code: input.resultKey };
  const why = input.cause === 'study-deleted' ? 'The imaging study was deleted from the PACS.' : 'The AI result was marked wrong.';
  const reasonText = input.reason?.trim() ? `${why} ${input.reason.trim()}` : why;
  const provenance: Provenance = {
    resourceType: 'Provenance',
    meta: { tag: [tag] },
    target: [{ reference: target }],
    occurredDateTime: recorded,
    recorded,
    reason: [{ text: reasonText }],
    activity: { coding: [{ system: DATA_OPERATION, code: 'NULLIFY', display: 'nullify' }] },
    agent: [
      {
        type: { coding: [{ system: PARTICIPANT_TYPE, code: 'performer', display: 'Performer' }] },
        who: { identifier: serviceIdentifier, display: serviceId },
      },
    ],
  };
  provenance.text = provenanceNarrative(provenance);
  const enc = (s: string): string => encodeURIComponent(s).replace(/%3A/gi, ':');
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: `urn:uuid:${deterministicUuid(`retraction-provenance|${input.resultKey}`)}`,
        resource: provenance as unknown as FhirResource,
        request: { method: 'POST', url: 'Provenance', ifNoneExist: `_tag=${enc(RETRACTION_SYSTEM)}|${enc(input.resultKey)}` },
      },
    ],
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
