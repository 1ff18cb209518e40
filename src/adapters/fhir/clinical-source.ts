import type { FhirResource } from '../../domain/types.ts';
import type { FhirClient } from './client.ts';

/** FHIR's system for DICOM UIDs (as `urn:oid:<uid>` values). */
const DICOM_UID_SYSTEM = 'urn:dicom:uid';

/** The pipeline's ClinicalSource over a FHIR server: one search per question. */
export class FhirServerSource {
  constructor(private readonly fhir: FhirClient) {}

  patientsByIdentifier(system: string, value: string): Promise<FhirResource[]> {
    return this.fhir.search('Patient', { identifier: `${system}|${value}` }, 10);
  }

  serviceRequests(patientRef: string, max: number): Promise<FhirResource[]> {
    return this.fhir.search('ServiceRequest', { subject: patientRef }, max);
  }

  reports(patientRef: string, since: string, max: number): Promise<FhirResource[]> {
    return this.fhir.search('DiagnosticReport', { subject: patientRef, date: `ge${since}`, _sort: '-date', _count: max }, max);
  }

  reportsBasedOn(orderRefs: readonly string[], max: number): Promise<FhirResource[]> {
    return this.fhir.search('DiagnosticReport', { 'based-on': orderRefs.join(','), _sort: '-date', _count: max }, max);
  }

  imagingStudies(studyInstanceUID: string): Promise<FhirResource[]> {
    return this.fhir.search('ImagingStudy', { identifier: `${DICOM_UID_SYSTEM}|urn:oid:${studyInstanceUID}` }, 10);
  }

  reportsOfImagingStudies(searchParam: string, imagingStudyRefs: readonly string[], max: number): Promise<FhirResource[]> {
    return this.fhir.search('DiagnosticReport', { [searchParam]: imagingStudyRefs.join(','), _sort: '-date', _count: max }, max);
  }

  observations(patientRef: string, codes: readonly { system: string; code: string }[], since: string, max: number): Promise<FhirResource[]> {
    return this.fhir.search(
      'Observation',
      { subject: patientRef, code: codes.map((c) => `${c.system}|${c.code}`).join(','), date: `ge${since}`, _sort: '-date', _count: max },
      max,
    );
  }
}

function refersTo(resource: FhirResource, patientRef: string): boolean {
  const subject = resource['subject'] as { reference?: string } | undefined;
  return subject?.reference === patientRef;
}

function refersToAny(resource: FhirResource, element: string, refs: readonly string[]): boolean {
  const value = resource[element] as { reference?: string } | { reference?: string }[] | undefined;
  return (Array.isArray(value) ? value : value ? [value] : []).some((r) => r.reference !== undefined && refs.includes(r.reference));
}

const newestFirst = (a: FhirResource, b: FhirResource): number => (dateOf(a) < dateOf(b) ? 1 : dateOf(a) > dateOf(b) ? -1 : 0);

function dateOf(resource: FhirResource): string {
  const d = resource['effectiveDateTime'] ?? resource['issued'];
  return typeof d === 'string' ? d : '';
}

/**
 * ClinicalSource over the resources of a FHIR Bundle file (`analyze --fhir`), answering the same
 * questions with the same meaning as the server searches above.
 */
export class BundleSource {
  constructor(private readonly resources: readonly FhirResource[]) {}

  async patientsByIdentifier(system: string, value: string): Promise<FhirResource[]> {
    return this.resources.filter(
      (r) =>
        r.resourceType === 'Patient' &&
        ((r['identifier'] as { system?: string; value?: string }[] | undefined) ?? []).some((i) => i.system === system && i.value === value),
    );
  }

  async serviceRequests(patientRef: string, max: number): Promise<FhirResource[]> {
    return this.resources.filter((r) => r.resourceType === 'ServiceRequest' && refersTo(r, patientRef)).slice(0, max);
  }

  async reports(patientRef: string, since: string, max: number): Promise<FhirResource[]> {
    return this.resources
      .filter((r) => r.resourceType === 'DiagnosticReport' && refersTo(r, patientRef) && dateOf(r).slice(0, 10) >= since)
      .sort((a, b) => (dateOf(a) < dateOf(b) ? 1 : -1))
      .slice(0, max);
  }

  async reportsBasedOn(orderRefs: readonly string[], max: number): Promise<FhirResource[]> {
    return this.resources
      .filter((r) => r.resourceType === 'DiagnosticReport' && refersToAny(r, 'basedOn', orderRefs))
      .sort(newestFirst)
      .slice(0, max);
  }

  async imagingStudies(studyInstanceUID: string): Promise<FhirResource[]> {
    return this.resources.filter(
      (r) =>
        r.resourceType === 'ImagingStudy' &&
        ((r['identifier'] as { system?: string; value?: string }[] | undefined) ?? []).some((i) => i.system === DICOM_UID_SYSTEM && i.value === `urn:oid:${studyInstanceUID}`),
    );
  }

  /** A Bundle has no search parameters: whatever the server calls it, it means DiagnosticReport.imagingStudy. */
  async reportsOfImagingStudies(_searchParam: string, imagingStudyRefs: readonly string[], max: number): Promise<FhirResource[]> {
    return this.resources
      .filter((r) => r.resourceType === 'DiagnosticReport' && refersToAny(r, 'imagingStudy', imagingStudyRefs))
      .sort(newestFirst)
      .slice(0, max);
  }

  async observations(patientRef: string, codes: readonly { system: string; code: string }[], since: string, max: number): Promise<FhirResource[]> {
    return this.resources
      .filter(
        (r) =>
          r.resourceType === 'Observation' &&
          refersTo(r, patientRef) &&
          dateOf(r).slice(0, 10) >= since &&
          ((r['code'] as { coding?: { system?: string; code?: string }[] } | undefined)?.coding ?? []).some((c) =>
            codes.some((want) => want.system === c.system && want.code === c.code),
          ),
      )
      .sort((a, b) => (dateOf(a) < dateOf(b) ? 1 : -1))
      .slice(0, max);
  }
}
