/**
 * The FHIR lookups of mappings/fhir.yaml against a FHIR server that really searches (the
 * sandbox: medplum's in-memory repository, which answers 400 to a search it cannot do): each
 * lookup is a search the server supports, and finds what the unit tests say it finds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FhirServerSource } from '../../src/adapters/fhir/clinical-source.ts';
import { FhirClient } from '../../src/adapters/fhir/client.ts';
import { loadMappings, type FhirMapping } from '../../src/config/mappings.ts';
import { gatherClinicalContext } from '../../src/pipeline/context/fhir-context.ts';
import { renderClinicalText, type TextTemplate } from '../../src/pipeline/context/text-template.ts';
import { startFhirServer, type RunningFhirServer } from '../../src/sandbox/fhir-server.ts';
import type { StudyMeta } from '../../src/domain/types.ts';

const base = loadMappings('mappings').fhir;
const SYSTEM = base.patient.identifierSystem;
const ACSN = base.order.accessionType;
const STUDY_UID = '1.2.826.0.1.3680043.10.999.7';
const study: StudyMeta = { StudyInstanceUID: STUDY_UID, PatientID: 'MRN-L1', IssuerOfPatientID: 'HOSP-A', AccessionNumber: 'ACC-L1', StudyDate: '20260301' };
const template: TextTemplate = {
  joiner: ' | ',
  empty: 'none',
  sections: [
    { kind: 'orderReason', resourceType: 'ServiceRequest', template: 'indication: {reason}', max: 1 },
    { kind: 'priorReports', resourceType: 'DiagnosticReport', template: 'prior report {date}: {conclusion}', max: 5, order: 'newest-first' },
    {
      kind: 'observations',
      resourceType: 'Observation',
      latestPerCode: true,
      template: '{label} {value} {unit}',
      codes: [
        { system: 'http://loinc.org', code: '59408-5', label: 'spo2' },
        { system: 'http://loinc.org', code: '94500-6', label: 'covid' },
      ],
    },
  ],
};
const P = 'Patient/pl1';
const put = (resource: { resourceType: string; id: string; [key: string]: unknown }) => ({ resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } });
const report = (id: string, extra: Record<string, unknown>) =>
  put({ resourceType: 'DiagnosticReport', id, status: 'final', code: { text: 'XR chest' }, subject: { reference: P }, ...extra });
const obs = (id: string, code: string, when: string, value: Record<string, unknown>) =>
  put({ resourceType: 'Observation', id, status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: P }, effectiveDateTime: when, ...value });

describe('FHIR lookups against the sandbox FHIR server', () => {
  let fhir: RunningFhirServer;
  let source: FhirServerSource;
  beforeAll(async () => {
    fhir = await startFhirServer();
    await fhir.seed({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        put({ resourceType: 'Patient', id: 'pl1', identifier: [{ system: 'urn:oid:1.2.3.4', value: 'MRN-L1' }] }),
        // The same MRN under the default system is someone else: the issuer must decide.
        put({ resourceType: 'Patient', id: 'pl2', identifier: [{ system: SYSTEM, value: 'MRN-L1' }] }),
        put({ resourceType: 'ServiceRequest', id: 'sl1', status: 'active', intent: 'order', subject: { reference: P }, identifier: [{ type: { coding: [ACSN] }, value: 'ACC-L1' }], reasonCode: [{ text: 'dyspnoea' }] }),
        put({ resourceType: 'ServiceRequest', id: 'sl2', status: 'active', intent: 'order', subject: { reference: P } }),
        put({ resourceType: 'ImagingStudy', id: 'il1', status: 'available', subject: { reference: P }, identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${STUDY_UID}` }], basedOn: [{ reference: 'ServiceRequest/sl2' }] }),
        report('prior', { effectiveDateTime: '2025-06-01', conclusion: 'Clear lungs.' }),
        report('prior-form', {
          effectiveDateTime: '2024-06-01',
          presentedForm: [
            { contentType: 'application/pdf', url: 'https://reports.example/x.pdf' },
            { contentType: 'text/plain; charset=utf-8', data: Buffer.from('Small right effusion.').toString('base64') },
          ],
        }),
        report('prelim', { status: 'preliminary', effectiveDateTime: '2026-03-01T10:00:00Z', basedOn: [{ reference: 'ServiceRequest/sl1' }], conclusion: 'Wet read: no pneumothorax.' }),
        report('final', { effectiveDateTime: '2026-03-02', basedOn: [{ reference: 'ServiceRequest/sl1' }], conclusion: 'THE ANSWER' }),
        report('prelim-is', { status: 'preliminary', effectiveDateTime: '2026-03-01T09:00:00Z', basedOn: [{ reference: 'ServiceRequest/sl2' }], imagingStudy: [{ reference: 'ImagingStudy/il1' }], conclusion: 'ED note: line in place.' }),
        obs('o-old', '59408-5', '2026-02-27', { valueQuantity: { value: 97, unit: '%' } }),
        obs('o-new', '59408-5', '2026-02-28', { valueQuantity: { value: 91, unit: '%' } }),
        obs('o-cov', '94500-6', '2026-02-20', { valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '260373001', display: 'Detected' }] } }),
      ],
    } as never);
    source = new FhirServerSource(new FhirClient({ baseUrl: fhir.url, timeoutMs: 10_000 }));
  });
  afterAll(async () => {
    await fhir?.close();
  });

  it('patient by IssuerOfPatientID, reports by basedOn + imagingStudy + patientDate, observations per code: all answered 200, no final reading of the study', async () => {
    const mapping: FhirMapping = structuredClone(base);
    mapping.patient.issuers = { 'HOSP-A': 'urn:oid:1.2.3.4' };
    mapping.reports.by = ['basedOn', 'imagingStudy', 'patientDate'];
    mapping.reports.text = ['conclusion', 'presentedForm'];
    mapping.observations.searchPerCode = true;
    fhir.requestLog.length = 0;
    const ctx = await gatherClinicalContext(study, source, mapping, template, new Date('2026-11-28'));
    // The Patient first, then the rest concurrently (answers arrive in any order).
    const log = fhir.requestLog.map((r) => `${r.status} ${r.method} ${decodeURIComponent(r.url).split('?')[0]}`);
    expect(log[0]).toBe('200 GET Patient');
    expect(log.slice(1).sort()).toEqual([
      '200 GET DiagnosticReport',
      '200 GET DiagnosticReport',
      '200 GET DiagnosticReport',
      '200 GET ImagingStudy',
      '200 GET Observation',
      '200 GET Observation',
      '200 GET ServiceRequest',
    ]);
    expect(ctx.patientRef).toBe(P);
    expect(ctx.resources.map((r) => `${r.resourceType}/${r.id}`)).toEqual([
      'ServiceRequest/sl1',
      'DiagnosticReport/prelim',
      'DiagnosticReport/prelim-is',
      'DiagnosticReport/prior',
      'DiagnosticReport/prior-form',
      'Observation/o-new',
      'Observation/o-cov',
    ]);
    const rendered = renderClinicalText(ctx.resources, template, mapping);
    expect(rendered.text).toBe(
      'indication: dyspnoea | prior report 2026-03-01: Wet read: no pneumothorax. | prior report 2026-03-01: ED note: line in place. | ' +
        'prior report 2025-06-01: Clear lungs. | prior report 2024-06-01: Small right effusion. | spo2 91 % | covid Detected',
    );
    expect(rendered.unread).toEqual([{ resource: 'DiagnosticReport/prior-form', reason: 'presentedForm[0]: application/pdf is not text/plain' }]);
  });

  it('the default mapping asks what it always asked, and still never reads the final report of the study', async () => {
    fhir.requestLog.length = 0;
    const ctx = await gatherClinicalContext({ ...study, IssuerOfPatientID: undefined }, source, base, template, new Date('2026-11-28'));
    expect(ctx.patientRef).toBe('Patient/pl2');
    expect(fhir.requestLog.map((r) => `${r.status} ${decodeURIComponent(r.url)}`)).toEqual([
      `200 Patient?identifier=${SYSTEM}|MRN-L1`,
      '200 ServiceRequest?subject=Patient/pl2',
      '200 DiagnosticReport?subject=Patient/pl2&date=ge2016-03-03&_sort=-date&_count=20',
      '200 Observation?subject=Patient/pl2&code=http://loinc.org|59408-5,http://loinc.org|94500-6&date=ge2026-01-30&_sort=-date&_count=50',
    ]);
  });

  it('R4 has no DiagnosticReport search by ImagingStudy: `imaging-study` is refused (400), which is why imagingStudy goes through the study\'s orders unless imagingStudyParam names one', async () => {
    await expect(source.reportsOfImagingStudies('imaging-study', ['ImagingStudy/il1'], 5)).rejects.toMatchObject({ code: 'UPSTREAM_REJECTED', status: 400 });
  });
});
