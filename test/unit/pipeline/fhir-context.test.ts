import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadMappings } from '../../../src/config/mappings.ts';
import { BundleSource, FhirServerSource } from '../../../src/adapters/fhir/clinical-source.ts';
import { FhirClient } from '../../../src/adapters/fhir/client.ts';
import { gatherClinicalContext, windowStart } from '../../../src/pipeline/context/fhir-context.ts';
import type { Manifest } from '../../../src/adapters/model/manifest.ts';
import type { FhirResource, StudyMeta } from '../../../src/domain/types.ts';

const mappings = loadMappings('mappings').fhir;
const SYSTEM = mappings.patient.identifierSystem;
const template: Manifest['text'] = {
  tokenizer: 't',
  maxLength: 64,
  joiner: ' | ',
  empty: 'none',
  sections: [
    { kind: 'orderReason', resourceType: 'ServiceRequest', template: '{reason}', max: 1 },
    { kind: 'priorReports', resourceType: 'DiagnosticReport', template: '{conclusion}', max: 2, order: 'newest-first' },
    { kind: 'observations', resourceType: 'Observation', template: '{label} {value}', latestPerCode: true, codes: [{ system: 'http://loinc.org', code: '59408-5', label: 'spo2' }] },
  ],
};
const study: StudyMeta = { StudyInstanceUID: '1.2', PatientID: 'MRN1', AccessionNumber: 'ACC9', StudyDate: '20260301' };
const acsn = (value: string) => ({ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value });

describe('gatherClinicalContext', () => {
  const resources: FhirResource[] = [
    { resourceType: 'Patient', id: 'p1', identifier: [{ system: SYSTEM, value: 'MRN1' }] },
    { resourceType: 'ServiceRequest', id: 'other', subject: { reference: 'Patient/p1' }, identifier: [acsn('ACC1')] },
    { resourceType: 'ServiceRequest', id: 'mine', subject: { reference: 'Patient/p1' }, identifier: [acsn('ACC9')] },
    { resourceType: 'DiagnosticReport', id: 'old', subject: { reference: 'Patient/p1' }, effectiveDateTime: '2000-01-01', conclusion: 'too old' },
    { resourceType: 'DiagnosticReport', id: 'r1', subject: { reference: 'Patient/p1' }, effectiveDateTime: '2025-06-01', conclusion: 'ok' },
    { resourceType: 'Observation', id: 'o1', subject: { reference: 'Patient/p1' }, effectiveDateTime: '2026-02-28', code: { coding: [{ system: 'http://loinc.org', code: '59408-5' }] }, valueQuantity: { value: 90 } },
    { resourceType: 'Observation', id: 'o-later', subject: { reference: 'Patient/p1' }, effectiveDateTime: '2026-05-28', code: { coding: [{ system: 'http://loinc.org', code: '59408-5' }] }, valueQuantity: { value: 99 } },
    { resourceType: 'DiagnosticReport', id: 'someone-else', subject: { reference: 'Patient/p2' }, effectiveDateTime: '2025-06-01', conclusion: 'not theirs' },
  ];

  it('uses only this patient, this accession\'s order, and the look-back window counted from the study date', async () => {
    const ctx = await gatherClinicalContext(study, new BundleSource(resources), mappings, template, new Date('2026-11-28'));
    expect(ctx.patientRef).toBe('Patient/p1');
    expect(ctx.resources.map((r) => r.id)).toEqual(['mine', 'r1', 'o-later', 'o1']);
  });

  it('never guesses a patient: none, or two with the same identifier, is a recorded problem with no text', async () => {
    const none = await gatherClinicalContext({ ...study, PatientID: 'MRN404' }, new BundleSource(resources), mappings, template);
    expect(none).toEqual({ patientProblem: { code: 'PATIENT_NOT_FOUND', message: expect.stringContaining(SYSTEM) }, resources: [] });
    const twins = new BundleSource([...resources, { resourceType: 'Patient', id: 'p9', identifier: [{ system: SYSTEM, value: 'MRN1' }] }]);
    expect((await gatherClinicalContext(study, twins, mappings, template)).patientProblem?.code).toBe('PATIENT_AMBIGUOUS');
  });

  it('windowStart counts from the DICOM StudyDate, else from now', () => {
    expect(windowStart('20260301', 30, new Date('2000-01-01'))).toBe('2026-01-30');
    expect(windowStart(undefined, 1, new Date('2026-11-28T12:00:00Z'))).toBe('2026-11-27');
  });
});

describe('FhirServerSource: the exact FHIR searches', () => {
  const BASE = 'http://fhir.test/fhir/R4';
  const source = new FhirServerSource(new FhirClient({ baseUrl: BASE, token: 'tkn', timeoutMs: 2000 }));
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
  });
  const bundle = (...resources: object[]) => ({ resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource, search: { mode: 'match' } })) });

  it('Patient by identifier system|value, with the bearer token', async () => {
    nock('http://fhir.test', { reqheaders: { authorization: 'Bearer tkn' } })
      .get('/fhir/R4/Patient')
      .query({ identifier: `${SYSTEM}|MRN1` })
      .reply(200, bundle({ resourceType: 'Patient', id: 'p1' }), { 'content-type': 'application/fhir+json' });
    expect((await source.patientsByIdentifier(SYSTEM, 'MRN1')).map((p) => p.id)).toEqual(['p1']);
  });

  it('Observations by subject, LOINC codes, date window and newest first; follows next links', async () => {
    nock('http://fhir.test')
      .get('/fhir/R4/Observation')
      .query({ subject: 'Patient/p1', code: 'http://loinc.org|59408-5,http://loinc.org|8310-5', date: 'ge2026-01-30', _sort: '-date', _count: '50' })
      .reply(200, { ...bundle({ resourceType: 'Observation', id: 'o1' }), link: [{ relation: 'next', url: `${BASE}/Observation?page=2` }] }, { 'content-type': 'application/fhir+json' })
      .get('/fhir/R4/Observation')
      .query({ page: '2' })
      .reply(200, bundle({ resourceType: 'Observation', id: 'o2' }), { 'content-type': 'application/fhir+json' });
    const obs = await source.observations('Patient/p1', [{ system: 'http://loinc.org', code: '59408-5' }, { system: 'http://loinc.org', code: '8310-5' }], '2026-01-30', 50);
    expect(obs.map((o) => o.id)).toEqual(['o1', 'o2']);
  });

  it('a 503 from FHIR is a retryable error; a 400 is not', async () => {
    nock('http://fhir.test').get('/fhir/R4/Patient').query(true).reply(503, 'down');
    await expect(source.patientsByIdentifier(SYSTEM, 'x')).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503 });
    nock('http://fhir.test').get('/fhir/R4/Patient').query(true).reply(400, { resourceType: 'OperationOutcome' });
    await expect(source.patientsByIdentifier(SYSTEM, 'x')).rejects.toMatchObject({ code: 'UPSTREAM_REJECTED', status: 400 });
  });
});
