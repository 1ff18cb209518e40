import type { ClinicalSource } from '../../pipeline/context/fhir-context.ts';
import type { FhirResource } from '../../domain/types.ts';
import type { FhirClient } from './client.ts';

/** ClinicalSource over a FHIR server: one search per question. */
export class FhirServerSource implements ClinicalSource {
  constructor(private readonly fhir: FhirClient) {}

  patientsByIdentifier(system: string, value: string): Promise<FhirResource[]> {
    return this.fhir.search('Patient', { identifier: `${system}|${value}` }, 10);
  }

  serviceRequests(patientRef: string): Promise<FhirResource[]> {
    return this.fhir.search('ServiceRequest', { subject: patientRef }, 50);
  }

  reports(patientRef: string, since: string, max: number): Promise<FhirResource[]> {
    return this.fhir.search('DiagnosticReport', { subject: patientRef, date: `ge${since}`, _sort: '-date', _count: max }, max);
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

function dateOf(resource: FhirResource): string {
  const d = resource['effectiveDateTime'] ?? resource['issued'];
  return typeof d === 'string' ? d : '';
}

/**
 * ClinicalSource over the resources of a FHIR Bundle file (`analyze --fhir`), answering the same
 * questions with the same meaning as the server searches above.
 */
export class BundleSource implements ClinicalSource {
  constructor(private readonly resources: readonly FhirResource[]) {}

  async patientsByIdentifier(system: string, value: string): Promise<FhirResource[]> {
    return this.resources.filter(
      (r) =>
        r.resourceType === 'Patient' &&
        ((r['identifier'] as { system?: string; value?: string }[] | undefined) ?? []).some((i) => i.system === system && i.value === value),
    );
  }

  async serviceRequests(patientRef: string): Promise<FhirResource[]> {
    return this.resources.filter((r) => r.resourceType === 'ServiceRequest' && refersTo(r, patientRef));
  }

  async reports(patientRef: string, since: string, max: number): Promise<FhirResource[]> {
    return this.resources
      .filter((r) => r.resourceType === 'DiagnosticReport' && refersTo(r, patientRef) && dateOf(r).slice(0, 10) >= since)
      .sort((a, b) => (dateOf(a) < dateOf(b) ? 1 : -1))
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
