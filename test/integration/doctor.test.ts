/**
 * `pacs-triage doctor` against a real Orthanc 1.10 (with the DICOMweb plugin) and the sandbox FHIR
 * server. The regression it pins: an Orthanc set up from its own defaults (no UserMetadata
 * declaration) got "ok" on every line from doctor, then every study failed with "NOT_FOUND: pacs
 * PUT studies/…/metadata/PacsTriagePriority answered 404 … Accessing an inexistent item". Now doctor
 * exits 1 naming the declaration to add, and stores and changes nothing while it checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli.ts';
import { OrthancClient, PRIORITY_METADATA } from '../../src/adapters/orthanc/client.ts';
import { USER_METADATA_FIX } from '../../src/compose/doctor/pacs.ts';
import type { DoctorReport } from '../../src/compose/doctor/report.ts';
import { makeSyntheticCt } from '../../src/sandbox/synthetic-dicom.ts';
import { startOrthanc, type OrthancServer } from '../../src/sandbox/orthanc.ts';
import { startRig, type Rig } from '../harness/rig.ts';
import { requireOrthanc } from '../harness/require-servers.ts';

async function doctor(configFile: string): Promise<{ code: number; report: DoctorReport }> {
  let stdout = '';
  const code = await main(['doctor', '--config', configFile, '--json'], { stdout: (s) => (stdout += s), stderr: () => undefined });
  return { code, report: JSON.parse(stdout) as DoctorReport };
}

const failing = (report: DoctorReport) => report.checks.filter((c) => c.status === 'fail');

describe.skipIf(!requireOrthanc())('doctor against a real Orthanc and the sandbox FHIR server', () => {
  let rig: Rig;
  /** An Orthanc from its own defaults plus the DICOMweb plugin: no UserMetadata declaration. */
  let bare: OrthancServer;

  beforeAll(async () => {
    rig = await startRig('doctor');
    bare = await startOrthanc({ dicomServer: false, extraConfig: { UserMetadata: {} } });
  }, 120_000);

  afterAll(async () => {
    await bare?.cleanup();
    await rig?.close();
  });

  it('Orthanc with our UserMetadata declaration (as docker/orthanc ships it): every check ok, exit 0', async () => {
    const { code, report } = await doctor(rig.config('declared.json'));
    expect(failing(report)).toEqual([]);
    expect(report.checks.filter((c) => c.status === 'warn')).toEqual([]);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.checks.find((c) => c.name === 'Orthanc user metadata')?.status).toBe('ok');
    expect(report.checks.find((c) => c.name === 'FHIR search DiagnosticReport')?.status).toBe('ok');
    // Nothing was stored: the STOW-RS was empty and the metadata probe named a study that cannot exist.
    expect(await rig.orthanc.statistics()).toMatchObject({ CountStudies: 0, CountInstances: 0 });
  });

  it('Orthanc without it: exit 1, the one failure names the exact declaration to add — and a real write fails as doctor says', async () => {
    const { code, report } = await doctor(rig.config('bare.json', { pacs: { baseUrl: bare.baseUrl, auth: bare.auth } }));
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    expect(failing(report)).toEqual([
      {
        name: 'Orthanc user metadata',
        status: 'fail',
        detail: 'Orthanc does not declare PacsTriagePriority, PacsTriageResult ("Inexistent item"): writing the triage priority would fail with 404 for every study',
        fix: `add ${USER_METADATA_FIX} to orthanc.json (merged into any "UserMetadata" already there; other free indices 1024–65535 do too), then restart Orthanc`,
      },
    ]);
    expect(await bare.statistics()).toMatchObject({ CountStudies: 0, CountInstances: 0 });

    // What the service would meet on the first study: the failure doctor now predicts.
    const stored = await bare.uploadInstance(makeSyntheticCt({ patientId: 'PACS-TRIAGE-DOCTOR' }).buffer);
    const rest = new OrthancClient({ baseUrl: bare.baseUrl, auth: bare.auth, timeoutMs: 10_000 });
    try {
      await expect(rest.setStudyMetadata(stored.ParentStudy, PRIORITY_METADATA, 'stat')).rejects.toMatchObject({ code: 'NOT_FOUND', status: 404 });
    } finally {
      rest.close();
      await bare.request(`/studies/${stored.ParentStudy}`, { method: 'DELETE' }).then((r) => r.arrayBuffer());
    }
  });

  it('a wrong pacs.dicomWebPath: the DICOMweb check fails naming the path tried', async () => {
    const { code, report } = await doctor(rig.config('wrong-path.json', { pacs: { dicomWebPath: '/dicomweb' } }));
    expect(code).toBe(1);
    expect(failing(report).map((c) => [c.name, c.fix])).toEqual([
      ['pacs DICOMweb QIDO-RS', `set pacs.dicomWebPath to the PACS's DICOMweb root: "/dicomweb" was tried (Orthanc's is its DicomWeb.Root setting, "/dicom-web/" by default)`],
    ]);
  });

  it('wrong credentials: the REST and DICOMweb checks fail naming pacs.auth', async () => {
    const { code, report } = await doctor(rig.config('wrong-auth.json', { pacs: { auth: { username: rig.orthanc.auth.username, password: 'wrong' } } }));
    expect(code).toBe(1);
    expect(failing(report).map((c) => [c.name, c.fix])).toEqual([
      ['pacs REST API (Orthanc)', 'the server refused the credentials: check pacs.auth'],
      ['pacs DICOMweb QIDO-RS', 'the server refused the credentials: check pacs.auth'],
    ]);
  });
});
