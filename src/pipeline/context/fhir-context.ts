import type { FhirMapping } from '../../config/mappings.ts';
import type { TextSpec } from '../../config/manifest.ts';
import type { ClinicalContext, FhirResource, StudyMeta } from '../../domain/types.ts';
import type { ClinicalSource } from '../ports.ts';
import { refOf } from './resource-text.ts';


/** YYYYMMDD (DICOM DA) → YYYY-MM-DD, minus `days`. Look-back windows count from the study, not from now, so reruns see the same window. */
export function windowStart(studyDate: string | undefined, days: number, now: Date): string {
  const base = studyDate && /^\d{8}$/.test(studyDate) ? new Date(`${studyDate.slice(0, 4)}-${studyDate.slice(4, 6)}-${studyDate.slice(6, 8)}T23:59:59Z`) : now;
  return new Date(base.getTime() - days * 86_400_000).toISOString().slice(0, 10);
}

interface Identifier {
  system?: string;
  value?: string;
  type?: { coding?: { system?: string; code?: string }[] };
}

function hasAccession(resource: FhirResource, accession: string, type: FhirMapping['order']['accessionType']): boolean {
  const identifiers = (resource['identifier'] as Identifier[] | undefined) ?? [];
  return identifiers.some(
    (id) => id.value === accession && (id.type?.coding ?? []).some((c) => c.system === type.system && c.code === type.code),
  );
}

function references(resource: FhirResource, element: string): string[] {
  const value = resource[element] as { reference?: string } | { reference?: string }[] | undefined;
  return (Array.isArray(value) ? value : value ? [value] : []).flatMap((r) => (typeof r.reference === 'string' ? [r.reference] : []));
}

/**
 * The identifier system to search the study's PatientID under: the one its IssuerOfPatientID
 * maps to; without an issuer, `identifierSystem`; with an issuer the mapping does not know,
 * `identifierSystem` or none, as `unknownIssuer` says (the same MRN from another issuer is
 * another person).
 */
export function patientIdentifierSystem(study: StudyMeta, patient: FhirMapping['patient']): string | undefined {
  const issuer = study.IssuerOfPatientID?.trim();
  if (!issuer) return patient.identifierSystem;
  const mapped = patient.issuers[issuer];
  if (mapped !== undefined) return mapped;
  return patient.unknownIssuer === 'identifierSystem' ? patient.identifierSystem : undefined;
}

/** A patient's orders asked for at most (the study's own is picked from them by accession number). */
export const SERVICE_REQUESTS_MAX = 50;

/** Resources found so far: each once, in the order found, and no more than the fetch budget. */
class Found {
  readonly resources: FhirResource[] = [];
  private readonly seen = new Set<string>();
  constructor(private readonly budget: number) {}

  /** How many to ask for at most: `max`, or fewer when the budget is nearly spent. */
  room(max: number): number {
    return Math.max(0, Math.min(max, this.budget - this.resources.length));
  }

  add(resources: readonly FhirResource[]): void {
    for (const r of resources) {
      if (this.resources.length >= this.budget) return;
      const key = r.id === undefined ? undefined : refOf(r);
      if (key !== undefined && this.seen.has(key)) continue;
      if (key !== undefined) this.seen.add(key);
      this.resources.push(r);
    }
  }
}

/**
 * Finds the study's patient by PatientID and gathers the resources the manifest's text template
 * uses. Never guesses a patient: none or several matches are reported as a problem and no
 * clinical text is used.
 *
 * The fetch budget is one more than `caps.maxResources`, so that the renderer, which applies the
 * cap, can tell it was hit and say so, and no search asks for more than the cap could use.
 */
export async function gatherClinicalContext(
  study: StudyMeta,
  source: ClinicalSource,
  mapping: FhirMapping,
  template: Pick<TextSpec, 'sections'>,
  now: Date = new Date(),
): Promise<ClinicalContext> {
  if (!study.PatientID) {
    return { patientProblem: { code: 'PATIENT_NOT_FOUND', message: 'the study has no PatientID' }, resources: [] };
  }
  const system = patientIdentifierSystem(study, mapping.patient);
  if (system === undefined) {
    return { patientProblem: { code: 'PATIENT_NOT_FOUND', message: "the study's IssuerOfPatientID is not in the mapping's patient.issuers (unknownIssuer: noPatient)" }, resources: [] };
  }
  const patients = await source.patientsByIdentifier(system, study.PatientID);
  if (patients.length === 0) {
    return { patientProblem: { code: 'PATIENT_NOT_FOUND', message: `no Patient with identifier system ${system} and the study's PatientID` }, resources: [] };
  }
  if (patients.length > 1) {
    return { patientProblem: { code: 'PATIENT_AMBIGUOUS', message: `${patients.length} Patients share the study's PatientID under ${system}` }, resources: [] };
  }
  const patientRef = `Patient/${patients[0]?.id ?? ''}`;
  const found = new Found(mapping.caps.maxResources + 1);
  const kinds = new Set(template.sections.map((s) => s.kind));
  const lookups = kinds.has('priorReports') ? mapping.reports.by : [];
  const ofPatient = (rs: FhirResource[]) => rs.filter((r) => references(r, 'subject').includes(patientRef));

  const since = {
    reports: windowStart(study.StudyDate, mapping.reports.lookbackDays, now),
    observations: windowStart(study.StudyDate, mapping.observations.lookbackDays, now),
  };
  // The searches below are independent of one another except through the fetch budget. When
  // every search's own maximum fits in the budget together, the budget cannot bind, so they
  // are all sent at once (each FHIR round trip costs the study latency) with exactly the
  // parameters the one-by-one order would use; results are still taken in that order.
  const sections = template.sections.flatMap((s) => (s.kind === 'observations' ? [s] : []));
  const obsMax = (latestPerCode: boolean | undefined): number => (mapping.observations.searchPerCode && latestPerCode ? 1 : mapping.observations.max);
  const worstCase =
    (kinds.has('orderReason') ? SERVICE_REQUESTS_MAX : 0) +
    lookups.length * mapping.reports.max +
    sections.reduce((n, s) => n + (mapping.observations.searchPerCode ? s.codes.length * obsMax(s.latestPerCode) : mapping.observations.max), 0);
  const early = new Map<string, Promise<FhirResource[]>>();
  const fetchOnce = (key: string, run: () => Promise<FhirResource[]>): Promise<FhirResource[]> => early.get(key) ?? run();
  const startEarly = (key: string, run: () => Promise<FhirResource[]>): void => {
    const promise = run();
    promise.catch(() => undefined); // awaited where it is used; not an unhandled rejection meanwhile
    early.set(key, promise);
  };
  const needOrders = kinds.has('orderReason') || lookups.includes('basedOn');
  if (needOrders) startEarly('orders', () => source.serviceRequests(patientRef, SERVICE_REQUESTS_MAX));
  if (lookups.includes('imagingStudy')) startEarly('imagingStudies', () => source.imagingStudies(study.StudyInstanceUID));
  if (worstCase < found.room(Number.MAX_SAFE_INTEGER)) {
    if (lookups.includes('patientDate')) startEarly('reports', () => source.reports(patientRef, since.reports, mapping.reports.max));
    sections.forEach((section, i) => {
      if (!mapping.observations.searchPerCode) startEarly(`obs ${i}`, () => source.observations(patientRef, section.codes, since.observations, mapping.observations.max));
      else section.codes.forEach((code, j) => startEarly(`obs ${i} ${j}`, () => source.observations(patientRef, [code], since.observations, obsMax(section.latestPerCode))));
    });
  }

  // The order for this study is the one carrying its accession number; without one, none is used.
  let orders: FhirResource[] = [];
  if (needOrders) {
    const all = await fetchOnce('orders', () => source.serviceRequests(patientRef, SERVICE_REQUESTS_MAX));
    orders = study.AccessionNumber ? all.filter((o) => hasAccession(o, study.AccessionNumber as string, mapping.order.accessionType)) : [];
  }
  if (kinds.has('orderReason')) found.add(orders);
  let imagingStudies: FhirResource[] = [];
  if (lookups.includes('imagingStudy')) imagingStudies = ofPatient(await fetchOnce('imagingStudies', () => source.imagingStudies(study.StudyInstanceUID)));

  const thisStudy = {
    orders: new Set([...orders.map(refOf), ...imagingStudies.flatMap((s) => references(s, 'basedOn'))]),
    imagingStudies: new Set(imagingStudies.map(refOf)),
  };
  const reports: FhirResource[] = [];
  for (const lookup of lookups) {
    const max = found.room(mapping.reports.max);
    if (max === 0) break;
    switch (lookup) {
      case 'patientDate':
        reports.push(...(await fetchOnce('reports', () => source.reports(patientRef, since.reports, max))));
        break;
      case 'basedOn': {
        const refs = orders.map(refOf);
        if (refs.length > 0) reports.push(...ofPatient(await source.reportsBasedOn(refs, max)));
        break;
      }
      case 'imagingStudy': {
        const refs = [...thisStudy.imagingStudies];
        if (refs.length === 0) break;
        const param = mapping.reports.imagingStudyParam;
        if (param !== undefined) {
          reports.push(...ofPatient(await source.reportsOfImagingStudies(param, refs, max)));
        } else {
          // R4 has no DiagnosticReport search by ImagingStudy: the study's orders lead to its reports.
          const orderRefs = [...new Set(imagingStudies.flatMap((s) => references(s, 'basedOn')).filter((r) => r.startsWith('ServiceRequest/')))];
          if (orderRefs.length > 0) reports.push(...ofPatient(await source.reportsBasedOn(orderRefs, max)));
        }
        break;
      }
      default: {
        const never: never = lookup;
        throw new Error(`unknown report lookup ${String(never)}`);
      }
    }
    found.add(reports.splice(0).filter((r) => readable(r) && (!aboutThisStudy(r) || mapping.reports.thisStudyStatuses.some((s) => s === r['status']))));
  }

  for (const [i, section] of sections.entries()) {
    if (mapping.observations.searchPerCode) {
      for (const [j, code] of section.codes.entries()) {
        const max = found.room(obsMax(section.latestPerCode));
        if (max > 0) found.add((await fetchOnce(`obs ${i} ${j}`, () => source.observations(patientRef, [code], since.observations, max))).filter(readable));
      }
    } else {
      const max = found.room(mapping.observations.max);
      if (max > 0) found.add((await fetchOnce(`obs ${i}`, () => source.observations(patientRef, section.codes, since.observations, max))).filter(readable));
    }
  }
  return { patientRef, resources: found.resources };

  /**
   * A report about this very study (on its order, its ImagingStudy, or with its accession
   * number) is not a prior report: read only while not final, since a final reading of the
   * study is the answer the model is asked to anticipate (a backfill would otherwise feed it in).
   */
  function aboutThisStudy(report: FhirResource): boolean {
    return (
      references(report, 'basedOn').some((r) => thisStudy.orders.has(r)) ||
      references(report, 'imagingStudy').some((r) => thisStudy.imagingStudies.has(r)) ||
      (study.AccessionNumber !== undefined && study.AccessionNumber !== '' && hasAccession(report, study.AccessionNumber, mapping.order.accessionType))
    );
  }
}

/** Resources recorded in error are not the patient's information. */
function readable(resource: FhirResource): boolean {
  return resource['status'] !== 'entered-in-error';
}
