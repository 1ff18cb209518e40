import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BundleSource, FhirServerSource } from '../../../../src/adapters/fhir/clinical-source.ts';
import { FhirClient } from '../../../../src/adapters/fhir/client.ts';
import { fhirMappingSchema, loadMappings, type FhirMapping } from '../../../../src/config/mappings.ts';
import { gatherClinicalContext, patientIdentifierSystem, windowStart } from '../../../../src/pipeline/context/fhir-context.ts';
import { renderClinicalText, type TextTemplate } from '../../../../src/pipeline/context/text-template.ts';
import type { FhirResource, StudyMeta } from '../../../../src/domain/types.ts';

const mappings = loadMappings('mappings').fhir;
const SYSTEM = mappings.patient.identifierSystem;
const template: TextTemplate = {
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

  it('after the Patient, the searches go out together when the budget cannot bind, one by one when it could', async () => {
    // A source whose every answer waits until the test lets go: counts how many are in flight.
    const run = async (caps: FhirMapping['caps']): Promise<{ peak: number; ids: string[] }> => {
      const inner = new BundleSource(resources);
      let inFlight = 0;
      let peak = 0;
      const slow = <A extends unknown[]>(f: (...a: A) => Promise<FhirResource[]>) => async (...a: A): Promise<FhirResource[]> => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return f(...a);
      };
      const source = {
        patientsByIdentifier: slow(inner.patientsByIdentifier.bind(inner)),
        serviceRequests: slow(inner.serviceRequests.bind(inner)),
        reports: slow(inner.reports.bind(inner)),
        observations: slow(inner.observations.bind(inner)),
        reportsBasedOn: slow(inner.reportsBasedOn.bind(inner)),
        imagingStudies: slow(inner.imagingStudies.bind(inner)),
        reportsOfImagingStudies: slow(inner.reportsOfImagingStudies.bind(inner)),
      };
      const ctx = await gatherClinicalContext(study, source, { ...mappings, caps }, template, new Date('2026-11-28'));
      return { peak, ids: ctx.resources.map((r) => r.id ?? '') };
    };
    const roomy = await run(mappings.caps);
    expect(roomy.peak).toBe(3); // orders, reports, observations
    const tight = await run({ ...mappings.caps, maxResources: 3 });
    expect(tight.peak).toBe(1);
    // The same resources, in the same order, either way (the tight budget cuts the tail).
    expect(roomy.ids).toEqual(['mine', 'r1', 'o-later', 'o1']);
    expect(tight.ids).toEqual(roomy.ids);
  });

  it('windowStart counts from the DICOM StudyDate, else from now', () => {
    expect(windowStart('20260301', 30, new Date('2000-01-01'))).toBe('2026-01-30');
    expect(windowStart(undefined, 1, new Date('2026-11-28T12:00:00Z'))).toBe('2026-11-27');
  });
});

const withMapping = (patch: (m: FhirMapping) => void): FhirMapping => {
  const m = structuredClone(mappings);
  patch(m);
  return m;
};
const ORDER_TYPE = mappings.order.accessionType;
const ref = (reference: string) => ({ reference });

describe('the mapping of FHIR lookups (mappings/fhir.yaml)', () => {
  it('defaults to what was always done: reports by patient and date, conclusions only, issuer-blind patient search', () => {
    expect(mappings.reports.by).toEqual(['patientDate']);
    expect(mappings.reports.text).toEqual(['conclusion']);
    expect(mappings.reports.thisStudyStatuses).toEqual(['preliminary']);
    expect(mappings.observations.searchPerCode).toBe(false);
    expect(mappings.patient.unknownIssuer).toBe('identifierSystem');
    expect(mappings.caps).toEqual({ maxResources: 200, maxChars: 20000 });
    const bare = fhirMappingSchema.parse({
      version: 1,
      patient: { identifierSystem: 's' },
      order: { accessionType: ORDER_TYPE },
      reports: { lookbackDays: 1, max: 1 },
      observations: { lookbackDays: 1, max: 1 },
    });
    expect(bare).toMatchObject({ patient: { issuers: {} }, reports: { by: ['patientDate'], text: ['conclusion'] }, caps: { maxResources: 200, maxChars: 20000 } });
  });

  it('refuses a final status for reports of the study itself, a lookup listed twice, and unknown keys', () => {
    const base = { version: 1, patient: { identifierSystem: 's' }, order: { accessionType: ORDER_TYPE }, observations: { lookbackDays: 1, max: 1 } };
    const issues = (reports: object) => fhirMappingSchema.safeParse({ ...base, reports: { lookbackDays: 1, max: 1, ...reports } }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ thisStudyStatuses: ['preliminary', 'final'] })).toEqual([expect.stringMatching(/^reports\.thisStudyStatuses: a final .* is its answer/)]);
    expect(issues({ by: ['basedOn', 'basedOn'] })).toEqual(['reports.by: each lookup at most once']);
    expect(issues({ bye: ['basedOn'] })?.[0]).toMatch(/bye/);
  });
});

describe('gatherClinicalContext: the lookups the mapping chooses', () => {
  const P = 'Patient/p1';
  const tmpl: TextTemplate = { ...template, sections: template.sections.filter((s) => s.kind === 'priorReports') };
  const report = (id: string, extra: Record<string, unknown>): FhirResource => ({ resourceType: 'DiagnosticReport', id, subject: ref(P), effectiveDateTime: '2025-01-01', conclusion: id, status: 'final', ...extra });
  const world: FhirResource[] = [
    { resourceType: 'Patient', id: 'p1', identifier: [{ system: SYSTEM, value: 'MRN1' }] },
    { resourceType: 'ServiceRequest', id: 'mine', subject: ref(P), identifier: [acsn('ACC9')] },
    { resourceType: 'ServiceRequest', id: 'scheduled', subject: ref(P) },
    { resourceType: 'ImagingStudy', id: 'is1', subject: ref(P), identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:1.2' }], basedOn: [ref('ServiceRequest/scheduled')] },
    report('prior', { effectiveDateTime: '2024-05-01' }),
    report('prelim-on-order', { status: 'preliminary', basedOn: [ref('ServiceRequest/mine')], effectiveDateTime: '2026-03-01' }),
    report('final-on-order', { basedOn: [ref('ServiceRequest/mine')], effectiveDateTime: '2026-03-02' }),
    report('prelim-on-imaging-study', { status: 'preliminary', basedOn: [ref('ServiceRequest/scheduled')], imagingStudy: [ref('ImagingStudy/is1')], effectiveDateTime: '2026-02-28' }),
    report('final-with-accession', { identifier: [acsn('ACC9')], effectiveDateTime: '2026-03-03' }),
    report('in-error', { status: 'entered-in-error', effectiveDateTime: '2025-02-01' }),
    report('other-patient-on-order', { status: 'preliminary', subject: ref('Patient/p2'), basedOn: [ref('ServiceRequest/mine')] }),
  ];
  const now = new Date('2026-11-28');

  it('basedOn, imagingStudy, patientDate: in that order, each report once, never a final reading of this study, never entered-in-error, never another patient\'s', async () => {
    const m = withMapping((x) => (x.reports.by = ['basedOn', 'imagingStudy', 'patientDate']));
    const ctx = await gatherClinicalContext(study, new BundleSource(world), m, tmpl, now);
    expect(ctx.resources.map((r) => r.id)).toEqual(['prelim-on-order', 'prelim-on-imaging-study', 'prior']);
  });

  it('the default (patientDate) reads the same reports as before, less a final reading that carries this study\'s accession number', async () => {
    const ctx = await gatherClinicalContext(study, new BundleSource(world), mappings, template, now);
    // The reference manifest also asks for the order reason, so the order is known and a report on it is recognised.
    expect(ctx.resources.map((r) => r.id)).toEqual(['mine', 'prelim-on-order', 'prelim-on-imaging-study', 'prior']);
  });

  it('imagingStudy with a server search parameter for it (imagingStudyParam) asks by the ImagingStudy, else by its orders', async () => {
    const m = withMapping((x) => {
      x.reports.by = ['imagingStudy'];
      x.reports.imagingStudyParam = 'study';
    });
    expect((await gatherClinicalContext(study, new BundleSource(world), m, tmpl, now)).resources.map((r) => r.id)).toEqual(['prelim-on-imaging-study']);
  });

  it('IssuerOfPatientID chooses the identifier system; unknown issuers fall back or, when mapped so, find no patient', async () => {
    const m = withMapping((x) => (x.patient.issuers = { HOSP: 'urn:oid:1.2.3' }));
    expect(patientIdentifierSystem({ ...study, IssuerOfPatientID: 'HOSP' }, m.patient)).toBe('urn:oid:1.2.3');
    expect(patientIdentifierSystem({ ...study, IssuerOfPatientID: 'ELSEWHERE' }, m.patient)).toBe(SYSTEM);
    expect(patientIdentifierSystem(study, m.patient)).toBe(SYSTEM);
    const strict = withMapping((x) => {
      x.patient.issuers = { HOSP: 'urn:oid:1.2.3' };
      x.patient.unknownIssuer = 'noPatient';
    });
    expect(patientIdentifierSystem({ ...study, IssuerOfPatientID: 'ELSEWHERE' }, strict.patient)).toBeUndefined();
    const hosp = new BundleSource([{ resourceType: 'Patient', id: 'h1', identifier: [{ system: 'urn:oid:1.2.3', value: 'MRN1' }] }, ...world]);
    expect((await gatherClinicalContext({ ...study, IssuerOfPatientID: 'HOSP' }, hosp, m, tmpl, now)).patientRef).toBe('Patient/h1');
    const none = await gatherClinicalContext({ ...study, IssuerOfPatientID: 'ELSEWHERE' }, hosp, strict, tmpl, now);
    expect(none.patientProblem?.code).toBe('PATIENT_NOT_FOUND');
  });

  it('caps.maxResources: fetching stops one past the cap; the renderer cuts to the cap and reports it, in counts only', async () => {
    const many: FhirResource[] = [world[0] as FhirResource, ...Array.from({ length: 9 }, (_, i) => report(`r${i}`, { effectiveDateTime: `2025-01-0${i + 1}` }))];
    const m = withMapping((x) => (x.caps.maxResources = 3));
    const ctx = await gatherClinicalContext(study, new BundleSource(many), m, tmpl, now);
    expect(ctx.resources.map((r) => r.id)).toEqual(['r8', 'r7', 'r6', 'r5']);
    const rendered = renderClinicalText(ctx.resources, tmpl, m);
    expect(rendered.capsHit).toEqual([{ cap: 'maxResources', limit: 3, count: 4 }]);
    expect(rendered.used.map((r) => r.id)).toEqual(['r8', 'r7']);
    expect(JSON.stringify(rendered.capsHit)).not.toMatch(/r\d|MRN/);
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

  it('DiagnosticReport by subject and date window, newest first (patientDate)', async () => {
    nock('http://fhir.test')
      .get('/fhir/R4/DiagnosticReport')
      .query({ subject: 'Patient/p1', date: 'ge2016-03-03', _sort: '-date', _count: '20' })
      .reply(200, bundle({ resourceType: 'DiagnosticReport', id: 'r1' }), { 'content-type': 'application/fhir+json' });
    expect((await source.reports('Patient/p1', '2016-03-03', 20)).map((r) => r.id)).toEqual(['r1']);
  });

  it('DiagnosticReport by based-on (the study\'s orders), ImagingStudy by its DICOM UID, DiagnosticReport by the server\'s ImagingStudy parameter', async () => {
    nock('http://fhir.test')
      .get('/fhir/R4/DiagnosticReport')
      .query({ 'based-on': 'ServiceRequest/a,ServiceRequest/b', _sort: '-date', _count: '5' })
      .reply(200, bundle({ resourceType: 'DiagnosticReport', id: 'r1' }), { 'content-type': 'application/fhir+json' })
      .get('/fhir/R4/ImagingStudy')
      .query({ identifier: 'urn:dicom:uid|urn:oid:1.2.840.1' })
      .reply(200, bundle({ resourceType: 'ImagingStudy', id: 'is1' }), { 'content-type': 'application/fhir+json' })
      .get('/fhir/R4/DiagnosticReport')
      .query({ study: 'ImagingStudy/is1', _sort: '-date', _count: '5' })
      .reply(200, bundle({ resourceType: 'DiagnosticReport', id: 'r2' }), { 'content-type': 'application/fhir+json' });
    expect((await source.reportsBasedOn(['ServiceRequest/a', 'ServiceRequest/b'], 5)).map((r) => r.id)).toEqual(['r1']);
    expect((await source.imagingStudies('1.2.840.1')).map((r) => r.id)).toEqual(['is1']);
    expect((await source.reportsOfImagingStudies('study', ['ImagingStudy/is1'], 5)).map((r) => r.id)).toEqual(['r2']);
  });

  it('a whole gather with every report lookup and per-code observations: exactly these searches, results in lookup order', async () => {
    const P = 'Patient/p1';
    const json = { 'content-type': 'application/fhir+json' };
    const m = withMapping((x) => {
      x.reports.by = ['basedOn', 'imagingStudy', 'patientDate'];
      x.observations.searchPerCode = true;
    });
    const seen: string[] = [];
    const scope = nock('http://fhir.test')
      .get('/fhir/R4/Patient').query({ identifier: `${SYSTEM}|MRN1` }).reply(200, bundle({ resourceType: 'Patient', id: 'p1' }), json)
      .get('/fhir/R4/ServiceRequest').query({ subject: P }).reply(200, bundle({ resourceType: 'ServiceRequest', id: 'o1', subject: { reference: P }, identifier: [acsn('ACC9')] }), json)
      .get('/fhir/R4/ImagingStudy').query({ identifier: 'urn:dicom:uid|urn:oid:1.2' }).reply(200, bundle({ resourceType: 'ImagingStudy', id: 'is1', subject: { reference: P }, basedOn: [{ reference: 'ServiceRequest/o2' }] }), json)
      .get('/fhir/R4/DiagnosticReport').query({ 'based-on': 'ServiceRequest/o1', _sort: '-date', _count: '20' })
      .reply(200, bundle({ resourceType: 'DiagnosticReport', id: 'prelim', subject: { reference: P }, status: 'preliminary', basedOn: [{ reference: 'ServiceRequest/o1' }] }), json)
      .get('/fhir/R4/DiagnosticReport').query({ 'based-on': 'ServiceRequest/o2', _sort: '-date', _count: '20' }).reply(200, bundle(), json)
      .get('/fhir/R4/DiagnosticReport').query({ subject: P, date: 'ge2016-03-03', _sort: '-date', _count: '20' })
      .reply(200, bundle({ resourceType: 'DiagnosticReport', id: 'prelim', subject: { reference: P }, status: 'preliminary' }, { resourceType: 'DiagnosticReport', id: 'old', subject: { reference: P } }), json)
      .get('/fhir/R4/Observation').query({ subject: P, code: 'http://loinc.org|59408-5', date: 'ge2026-01-30', _sort: '-date', _count: '1' })
      .reply(200, bundle({ resourceType: 'Observation', id: 'spo2' }), json);
    scope.on('request', (req: { method: string; path: string }) => seen.push(`${req.method} ${decodeURIComponent(req.path.replace('/fhir/R4/', ''))}`));
    const ctx = await gatherClinicalContext(study, source, m, template, new Date('2026-11-28'));
    expect(ctx.resources.map((r) => `${r.resourceType}/${r.id}`)).toEqual(['ServiceRequest/o1', 'DiagnosticReport/prelim', 'DiagnosticReport/old', 'Observation/spo2']);
    // The Patient first; the searches that do not wait on one another go out together (the
    // budget cannot bind here), so only the set is fixed, while results keep the order above.
    const paths = seen.map((s) => s.split('?')[0]);
    expect(paths[0]).toBe('GET Patient');
    expect(paths.slice(1).sort()).toEqual(['GET DiagnosticReport', 'GET DiagnosticReport', 'GET DiagnosticReport', 'GET ImagingStudy', 'GET Observation', 'GET ServiceRequest']);
    expect(scope.isDone()).toBe(true);
  });

  it('a 503 from FHIR is a retryable error; a 400 is not', async () => {
    nock('http://fhir.test').get('/fhir/R4/Patient').query(true).reply(503, 'down');
    await expect(source.patientsByIdentifier(SYSTEM, 'x')).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503 });
    nock('http://fhir.test').get('/fhir/R4/Patient').query(true).reply(400, { resourceType: 'OperationOutcome' });
    await expect(source.patientsByIdentifier(SYSTEM, 'x')).rejects.toMatchObject({ code: 'UPSTREAM_REJECTED', status: 400 });
  });
});
