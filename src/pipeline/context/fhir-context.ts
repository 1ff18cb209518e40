import type { FhirMapping } from '../../config/mappings.ts';
import type { Manifest } from '../../adapters/model/manifest.ts';
import type { ClinicalContext, FhirResource, StudyMeta } from '../../domain/types.ts';

/**
 * Where clinical resources come from: a FHIR server (adapters/fhir) or, offline, a Bundle file.
 * Both answer the same questions, so the context stage is the same code for `serve` and `analyze`.
 */
export interface ClinicalSource {
  patientsByIdentifier(system: string, value: string): Promise<FhirResource[]>;
  serviceRequests(patientRef: string): Promise<FhirResource[]>;
  reports(patientRef: string, since: string, max: number): Promise<FhirResource[]>;
  observations(patientRef: string, codes: readonly { system: string; code: string }[], since: string, max: number): Promise<FhirResource[]>;
}

/** YYYYMMDD (DICOM DA) → YYYY-MM-DD, minus `days`. Look-back windows count from the study, not from now, so reruns see the same window. */
export function windowStart(studyDate: string | undefined, days: number, now: Date): string {
  const base = studyDate && /^\d{8}$/.test(studyDate) ? new Date(`${studyDate.slice(0, 4)}-${studyDate.slice(4, 6)}-${studyDate.slice(6, 8)}T23:59:59Z`) : now;
  return new Date(base.getTime() - days * 86_400_000).toISOString().slice(0, 10);
}

function hasAccession(resource: FhirResource, accession: string, type: FhirMapping['order']['accessionType']): boolean {
  const identifiers = (resource['identifier'] as { value?: string; type?: { coding?: { system?: string; code?: string }[] } }[] | undefined) ?? [];
  return identifiers.some(
    (id) => id.value === accession && (id.type?.coding ?? []).some((c) => c.system === type.system && c.code === type.code),
  );
}

/**
 * Finds the study's patient by PatientID and gathers the resources the manifest's text template
 * uses. Never guesses a patient: none or several matches are reported as a problem and no
 * clinical text is used.
 */
export async function gatherClinicalContext(
  study: StudyMeta,
  source: ClinicalSource,
  mapping: FhirMapping,
  template: Manifest['text'],
  now: Date = new Date(),
): Promise<ClinicalContext> {
  if (!study.PatientID) {
    return { patientProblem: { code: 'PATIENT_NOT_FOUND', message: 'the study has no PatientID' }, resources: [] };
  }
  const patients = await source.patientsByIdentifier(mapping.patient.identifierSystem, study.PatientID);
  if (patients.length === 0) {
    return { patientProblem: { code: 'PATIENT_NOT_FOUND', message: `no Patient with identifier system ${mapping.patient.identifierSystem} and the study's PatientID` }, resources: [] };
  }
  if (patients.length > 1) {
    return { patientProblem: { code: 'PATIENT_AMBIGUOUS', message: `${patients.length} Patients share the study's PatientID under ${mapping.patient.identifierSystem}` }, resources: [] };
  }
  const patientRef = `Patient/${patients[0]?.id ?? ''}`;
  const resources: FhirResource[] = [];
  const kinds = new Set(template.sections.map((s) => s.kind));
  if (kinds.has('orderReason')) {
    const orders = await source.serviceRequests(patientRef);
    // The order for this study is the one carrying its accession number; without one, none is used.
    const mine = study.AccessionNumber ? orders.filter((o) => hasAccession(o, study.AccessionNumber as string, mapping.order.accessionType)) : [];
    resources.push(...mine);
  }
  if (kinds.has('priorReports')) {
    resources.push(...(await source.reports(patientRef, windowStart(study.StudyDate, mapping.reports.lookbackDays, now), mapping.reports.max)));
  }
  for (const section of template.sections) {
    if (section.kind !== 'observations') continue;
    const since = windowStart(study.StudyDate, mapping.observations.lookbackDays, now);
    resources.push(...(await source.observations(patientRef, section.codes, since, mapping.observations.max)));
  }
  return { patientRef, resources };
}
