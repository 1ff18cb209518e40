/**
 * The encode stage: the findings of one study as the result record, the SR (TID 1500) and the
 * FHIR transaction (RiskAssessment, Device, Provenance) — all derived from the result key, so
 * the same inputs always give the same bytes.
 */
import type { ClinicalContext, FhirResource, Finding, InstanceMeta, Priority, StudyMeta } from '../../domain/types.ts';
import type { StoredResult } from '../../domain/records.ts';
import { studyFieldsOf } from '../../domain/study-fields.ts';
import type { PipelineDeps } from '../ports.ts';
import type { Timed } from '../timing.ts';
import { encodeSr } from './sr.ts';
import { encodeFhirResults } from './fhir.ts';

export interface EncodeInput {
  key: string;
  study: StudyMeta;
  instance: InstanceMeta;
  /** The selection rule and attributes that chose `instance` (absent where no rules chose it). */
  selectedBy?: StoredResult['selectedBy'];
  findings: Finding[];
  priority: Priority;
  clinical: ClinicalContext;
  usedVersions: { ref: string; versionId?: string }[];
  /** The stored result with this very key, when one exists (a resume): its time and flags are kept. */
  sameKey: StoredResult | undefined;
  /** The study's latest result before this run. */
  previous: StoredResult | undefined;
  /** Whether the order's priority is to be written (a ServiceRequest was found and the sink can). */
  writesOrder: boolean;
}

export interface Encoded {
  result: StoredResult;
  sr: { part10: Uint8Array; seriesInstanceUID: string; sopInstanceUID: string };
  fhir: FhirResource | undefined;
}

/**
 * The SR's Instance Number. All results of a study share one SR series (per model and Device
 * UID), so each gets its own: a stored result keeps the number it was written with (1 for one
 * stored before numbers were kept: that is what its SR says), a new one follows the latest. Only
 * when the latest predates numbering does it count the study's results (one store call).
 */
export async function srInstanceNumber(
  studyInstanceUID: string,
  sameKey: StoredResult | undefined,
  previous: StoredResult | undefined,
  store: Pick<PipelineDeps['store'], 'resultsOf'>,
): Promise<number> {
  if (sameKey) return sameKey.instanceNumber ?? 1;
  if (!previous) return 1;
  return (previous.instanceNumber ?? (await store.resultsOf(studyInstanceUID)).length) + 1;
}

export async function encodeStage(input: EncodeInput, deps: PipelineDeps, timed: Timed): Promise<Encoded> {
  const { key, study, instance, findings, priority, clinical, sameKey, previous } = input;
  const manifest = deps.model.manifest;
  const now = deps.now ?? (() => new Date());
  // A rerun of the same key reproduces the same SR byte for byte: its time is the stored one.
  const producedAt = sameKey ? new Date(sameKey.createdAt).toISOString() : now().toISOString();
  const predecessor = sameKey
    ? sameKey.predecessor
    : previous && previous.resultKey !== key && previous.written.pacs
      ? { seriesInstanceUID: previous.srSeriesInstanceUID, sopInstanceUID: previous.srSopInstanceUID }
      : undefined;
  const instanceNumber = await srInstanceNumber(study.StudyInstanceUID, sameKey, previous, deps.store);
  const inference = { modelId: manifest.id, modelVersion: manifest.version, deviceUid: manifest.deviceUid, sourceInstance: instance, findings };
  const sr = await timed('encode', async () =>
    encodeSr({
      uidRoot: deps.uidRoot,
      resultKey: key,
      study,
      inference,
      model: { name: manifest.name, manufacturer: manifest.manufacturer },
      mappings: deps.mappings.findings,
      producedAt,
      software: deps.software,
      instanceNumber,
      ...(predecessor ? { predecessor: { studyInstanceUID: study.StudyInstanceUID, ...predecessor } } : {}),
    }),
  );
  const bundle = clinical.patientRef
    ? encodeFhirResults({
        resultKey: key,
        patientRef: clinical.patientRef,
        studyInstanceUID: study.StudyInstanceUID,
        inference,
        model: { name: manifest.name, manufacturer: manifest.manufacturer, notForClinicalUse: manifest.notForClinicalUse },
        service: deps.software,
        mappings: deps.mappings.findings,
        producedAt,
        fhirResources: input.usedVersions,
        srSopInstanceUID: sr.sopInstanceUID,
      })
    : undefined;
  const result: StoredResult = {
    resultKey: key,
    studyInstanceUID: study.StudyInstanceUID,
    sourceSopInstanceUIDs: [instance.SOPInstanceUID],
    srSopInstanceUID: sr.sopInstanceUID,
    srSeriesInstanceUID: sr.seriesInstanceUID,
    priority,
    findings,
    modelId: manifest.id,
    modelVersion: manifest.version,
    executionProvider: deps.model.provider,
    ...(instance.Modality ? { modality: instance.Modality } : {}),
    createdAt: Date.parse(producedAt),
    written: {
      ...(sameKey?.written ?? { pacs: false, fhir: false, metadata: false }),
      ...(input.writesOrder ? { order: sameKey?.written.order ?? false } : {}),
    },
    notes: [],
    // Carried forward until we write the order again, so our last write keeps not counting as a change.
    ...(previous?.orderPriority ? { orderPriority: previous.orderPriority } : {}),
    ...(sameKey?.riskAssessmentRef ? { riskAssessmentRef: sameKey.riskAssessmentRef } : {}),
    ...(predecessor ? { predecessor } : {}),
    instanceNumber,
    ...(input.selectedBy ? { selectedBy: input.selectedBy } : {}),
    // The study's own attributes (validated as the SR copies them); the age from the image.
    study: studyFieldsOf({ ...study, PatientAge: instance.PatientAge }, deps.keepPatientIdentity ?? false),
  };
  if (!clinical.patientRef) result.notes.push(`fhir skipped: ${clinical.patientProblem?.message ?? 'no FHIR server configured'}`);
  // Said where the result is shown (the page's notes, the API), so that no region and no heat
  // map read as the model's nature rather than as nothing found.
  if (!manifest.outputs.saliency) result.notes.push(NO_SALIENCY_NOTE);
  return { result, sr, fhir: bundle as unknown as FhirResource | undefined };
}

/** The note of a result from a model without saliency. */
export const NO_SALIENCY_NOTE = 'no saliency: this model gives none, so the SR has no image region (each finding is a qualitative evaluation) and there is no heat map';
