/**
 * doctor's FHIR checks: the search parameters the mappings make the look-ups send (and the
 * mapping key that sends each), the CapabilityStatement read against them, the sandbox server's
 * own statement, and the whole `doctor --json` run with the exact requests it makes (nock).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli.ts';
import { loadMappings, type FhirMapping } from '../../../src/config/mappings.ts';
import { capabilityChecks, searchNeeds, type CapabilityStatement } from '../../../src/compose/doctor/fhir.ts';
import { startFhirServer, type RunningFhirServer } from '../../../src/sandbox/fhir-server.ts';

const mapping = loadMappings('mappings').fhir;
const withReports = (reports: Partial<FhirMapping['reports']>): FhirMapping => ({ ...mapping, reports: { ...mapping.reports, ...reports } });
const ALL_SECTIONS = ['orderReason', 'priorReports', 'observations'] as const;

/** A CapabilityStatement as real servers write one: `declared` lists each type's search parameters. */
function statement(declared: Record<string, string[]>, options: { transaction?: boolean; conditional?: boolean; common?: string[]; versioning?: string } = {}): CapabilityStatement {
  return {
    fhirVersion: '4.0.1',
    rest: [
      {
        mode: 'server',
        interaction: options.transaction === false ? [{ code: 'batch' }] : [{ code: 'transaction' }, { code: 'batch' }],
        ...(options.common ? { searchParam: options.common.map((name) => ({ name })) } : {}),
        resource: Object.entries(declared).map(([type, params]) => ({
          type,
          interaction: [{ code: 'read' }, { code: 'create' }, { code: 'update' }, { code: 'search-type' }],
          ...(options.versioning === undefined ? {} : { versioning: options.versioning }),
          conditionalCreate: options.conditional ?? true,
          searchParam: params.map((name) => ({ name, type: 'token' })),
        })),
      },
    ],
  };
}
const COMPLETE = {
  Patient: ['identifier'],
  ServiceRequest: ['subject'],
  DiagnosticReport: ['subject', 'date', 'based-on'],
  Observation: ['subject', 'code', 'date'],
  ImagingStudy: ['identifier'],
  RiskAssessment: ['identifier'],
  Device: ['identifier'],
  Provenance: ['_tag'],
};

describe('searchNeeds: what the look-ups will send, and which mapping key sends it', () => {
  it('the shipped mappings with the reference model\'s sections', () => {
    expect(searchNeeds(mapping, ALL_SECTIONS).map((n) => `${n.type}.${n.param} ← ${n.why}`)).toEqual([
      "Patient.identifier ← patient.identifierSystem (the study's PatientID)",
      "ServiceRequest.subject ← the manifest's orderReason section (order.accessionType)",
      'DiagnosticReport.subject ← reports.by: patientDate',
      'DiagnosticReport.date ← reports.by: patientDate',
      "Observation.subject ← the manifest's observations section (observations.lookbackDays)",
      "Observation.code ← the manifest's observations section (observations.lookbackDays)",
      "Observation.date ← the manifest's observations section (observations.lookbackDays)",
    ]);
  });

  it('every report look-up; imagingStudyParam replaces the way through the orders', () => {
    const all = searchNeeds(withReports({ by: ['patientDate', 'basedOn', 'imagingStudy'] }), ['priorReports']);
    expect(all.map((n) => `${n.type}.${n.param}`)).toEqual([
      'Patient.identifier', 'ServiceRequest.subject', 'DiagnosticReport.subject', 'DiagnosticReport.date', 'DiagnosticReport.based-on', 'ImagingStudy.identifier', 'DiagnosticReport.based-on',
    ]);
    const param = searchNeeds(withReports({ by: ['imagingStudy'], imagingStudyParam: 'study' }), ['priorReports']);
    expect(param.map((n) => `${n.type}.${n.param} ← ${n.why}`)).toContain('DiagnosticReport.study ← reports.imagingStudyParam: study');
  });

  it('a model without report or observation sections asks for neither', () => {
    expect(searchNeeds(mapping, ['orderReason']).map((n) => `${n.type}.${n.param}`)).toEqual(['Patient.identifier', 'ServiceRequest.subject']);
  });
});

describe('capabilityChecks', () => {
  const needs = searchNeeds(withReports({ by: ['patientDate', 'basedOn', 'imagingStudy'] }), ALL_SECTIONS);

  it('a server that declares everything: all ok', () => {
    const checks = capabilityChecks(statement(COMPLETE), needs, false);
    expect(checks.map((c) => [c.name, c.status])).toEqual([
      ['FHIR transaction', 'ok'],
      ['FHIR conditional create', 'ok'],
      ['FHIR search Patient', 'ok'],
      ['FHIR search ServiceRequest', 'ok'],
      ['FHIR search DiagnosticReport', 'ok'],
      ['FHIR search ImagingStudy', 'ok'],
      ['FHIR search Observation', 'ok'],
    ]);
  });

  it('a missing search parameter is a FAIL naming the mapping key and the fix', () => {
    const checks = capabilityChecks(statement({ ...COMPLETE, DiagnosticReport: ['subject', 'based-on'] }), needs, false);
    expect(checks.find((c) => c.name === 'FHIR search DiagnosticReport')).toEqual({
      name: 'FHIR search DiagnosticReport',
      status: 'fail',
      detail: 'date is not declared (needed by reports.by: patientDate)',
      fix: 'enable the DiagnosticReport search parameter date on the FHIR server, or take patientDate out of reports.by in mappings/fhir.yaml',
    });
  });

  it('a type the server does not serve, and no transaction: FAILs', () => {
    const { ImagingStudy: _gone, ...rest } = COMPLETE;
    const checks = capabilityChecks(statement(rest, { transaction: false }), needs, false);
    expect(checks.find((c) => c.name === 'FHIR transaction')).toMatchObject({ status: 'fail', fix: 'use (or enable) a FHIR server that supports transaction Bundles' });
    expect(checks.find((c) => c.name === 'FHIR search ImagingStudy')).toMatchObject({ status: 'fail', detail: 'the CapabilityStatement has no ImagingStudy; needed by reports.by: imagingStudy' });
  });

  it('no conditional create: a FAIL (reruns would duplicate); an identifier its If-None-Exist needs missing: a FAIL', () => {
    expect(capabilityChecks(statement(COMPLETE, { conditional: false }), needs, false).find((c) => c.name === 'FHIR conditional create')).toMatchObject({
      status: 'fail',
      detail: 'not declared (conditionalCreate) for RiskAssessment, Device, Provenance: a study processed again would write duplicates instead of finding its earlier result',
    });
    expect(capabilityChecks(statement({ ...COMPLETE, Device: [] }), needs, false).find((c) => c.name === 'FHIR conditional create')).toMatchObject({
      status: 'fail',
      fix: 'enable the search parameter Device.identifier on the FHIR server',
    });
  });

  it('_tag: found among the common parameters, or a warning when listed nowhere (servers support it unlisted)', () => {
    const common = capabilityChecks(statement({ ...COMPLETE, Provenance: [] }, { common: ['_id', '_tag'] }), needs, false);
    expect(common.find((c) => c.name === 'FHIR conditional create')?.status).toBe('ok');
    const unlisted = capabilityChecks(statement({ ...COMPLETE, Provenance: [] }), needs, false);
    expect(unlisted.find((c) => c.name === 'FHIR conditional create')?.status).toBe('warn');
  });

  it('fhir.writeOrderPriority: checked only when on; without update or versioned updates, a warning (an optional write)', () => {
    expect(capabilityChecks(statement(COMPLETE, { versioning: 'versioned-update' }), needs, true).find((c) => c.name === 'FHIR order priority write')?.status).toBe('ok');
    const unversioned = capabilityChecks(statement(COMPLETE), needs, true).find((c) => c.name === 'FHIR order priority write');
    expect(unversioned).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^ServiceRequest declares versioning not at all, not versioned-update/) });
    expect(capabilityChecks(statement(COMPLETE), needs, false).some((c) => c.name === 'FHIR order priority write')).toBe(false);
  });
});

describe('the sandbox FHIR server\'s CapabilityStatement', () => {
  let fhir: RunningFhirServer;
  beforeAll(async () => {
    nock.enableNetConnect('127.0.0.1');
    fhir = await startFhirServer();
  });
  afterAll(async () => {
    await fhir.close();
    nock.cleanAll();
  });

  it('passes every check, for every look-up and the order priority write', async () => {
    const cs = (await (await fetch(`${fhir.url}/metadata`)).json()) as CapabilityStatement;
    const everything = searchNeeds(withReports({ by: ['patientDate', 'basedOn', 'imagingStudy'] }), ALL_SECTIONS);
    expect(capabilityChecks(cs, everything, true).filter((c) => c.status !== 'ok')).toEqual([]);
  });
});

describe('pacs-triage doctor --json (nock: every request asserted)', () => {
  const PACS = 'http://orthanc.test:8042';
  const FHIR = 'http://fhir.test/fhir/R4';
  const dir = mkdtempSync(path.join(tmpdir(), 'pacs-triage-doctor-'));
  const configFile = path.join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ pacs: { baseUrl: PACS, auth: { token: 'pacs-token' } }, fhir: { baseUrl: FHIR, auth: { token: 'fhir-token' } } }));

  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
  });

  function upstreams(cs: CapabilityStatement, userMetadata: 'declared' | 'undeclared'): void {
    const pacs = nock(PACS, { reqheaders: { authorization: 'Bearer pacs-token' } });
    pacs.get('/system').reply(200, { Version: '1.10.1', CheckRevisions: false });
    pacs.get('/plugins').reply(200, ['dicom-web']);
    pacs.get('/dicom-web/studies').query({ limit: '1' }).reply(204);
    pacs.post('/dicom-web/studies', '--pacs-triage-doctor--\r\n').reply(200, {});
    const orthancStatus = userMetadata === 'declared' ? 17 : 7;
    pacs.put('/studies/pacs-triage-doctor-probe/metadata/PacsTriagePriority', 'pacs-triage doctor').reply(404, { OrthancStatus: orthancStatus });
    pacs.put('/studies/pacs-triage-doctor-probe/metadata/PacsTriageResult', 'pacs-triage doctor').reply(404, { OrthancStatus: orthancStatus });
    nock('http://fhir.test', { reqheaders: { authorization: 'Bearer fhir-token', accept: 'application/fhir+json' } })
      .get('/fhir/R4/metadata')
      .reply(200, cs, { 'content-type': 'application/fhir+json' });
  }

  async function doctor(...args: string[]): Promise<{ code: number; stdout: string }> {
    let stdout = '';
    const code = await main(['doctor', '--config', configFile, ...args], { stdout: (s) => (stdout += `${s}\n`), stderr: () => undefined });
    return { code, stdout };
  }

  it('all ok: exit 0, the paths it read (absolute), every check in the JSON shape', async () => {
    upstreams(statement(COMPLETE), 'declared');
    const run = await doctor('--json');
    const report = JSON.parse(run.stdout) as { ok: boolean; paths: Record<string, string>; checks: { name: string; status: string; detail: string; fix?: string }[] };
    expect(report.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(run.code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.paths).toEqual({ config: configFile, model: path.resolve('models/cxr-triage'), mappings: path.resolve('mappings') });
    expect(report.checks.map((c) => c.name)).toEqual([
      'model', 'mappings', 'findings coded', 'priority rules', 'selection rules',
      'pacs REST API (Orthanc)', 'pacs DICOMweb QIDO-RS', 'pacs may store (STOW-RS)', 'Orthanc user metadata', 'Orthanc metadata revisions',
      'FHIR server', 'FHIR transaction', 'FHIR conditional create', 'FHIR search Patient', 'FHIR search ServiceRequest', 'FHIR search DiagnosticReport', 'FHIR search Observation',
    ]);
    expect(report.checks.find((c) => c.name === 'selection rules')?.detail).toBe(
      'model pacs-triage-cxr-ref uses models.pacs-triage-cxr-ref: adult frontal chest radiograph, adult frontal chest radiograph named in a description',
    );
  });

  it('undeclared user metadata and a missing search parameter: exit 1; the text output prints each fix under its check', async () => {
    upstreams(statement({ ...COMPLETE, Observation: ['subject', 'code'] }), 'undeclared');
    const run = await doctor();
    expect(run.code).toBe(1);
    const lines = run.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual([`config    ${configFile}`, `model     ${path.resolve('models/cxr-triage')}`, `mappings  ${path.resolve('mappings')}`]);
    const meta = lines.findIndex((l) => l.startsWith('FAIL Orthanc user metadata'));
    expect(lines[meta + 1]?.trim()).toBe('fix: add "UserMetadata": { "PacsTriagePriority": 4100, "PacsTriageResult": 4101 } to orthanc.json (merged into any "UserMetadata" already there; other free indices 1024–65535 do too), then restart Orthanc');
    expect(lines.some((l) => l.startsWith('FAIL FHIR search Observation') && l.includes('date is not declared'))).toBe(true);
    expect(lines.filter((l) => l.startsWith('FAIL'))).toHaveLength(2);
  });
});
