/**
 * doctor's PACS checks against nock: the exact requests (nothing stored, no study touched) and
 * what each answer becomes — the Orthanc 1.10 answers here are the ones measured on the real
 * server (test/integration/doctor.test.ts runs the same checks against it).
 */
import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { DicomWebClient } from '../../../src/adapters/dicomweb/client.ts';
import { OrthancClient } from '../../../src/adapters/orthanc/client.ts';
import { pacsChecks, USER_METADATA_FIX } from '../../../src/compose/doctor/pacs.ts';
import type { Check } from '../../../src/compose/doctor/report.ts';

const BASE = 'http://orthanc.test:8042';
const auth = { username: 'triage', password: 'secret' };
const basic = `Basic ${Buffer.from('triage:secret').toString('base64')}`;
const PROBE = '/studies/pacs-triage-doctor-probe/metadata';

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});

function run(dicomWebPath = '/dicom-web'): Promise<Check[]> {
  const config = loadConfig({ env: {}, overrides: { pacs: { baseUrl: BASE, auth, dicomWebPath } } });
  const dicomweb = new DicomWebClient({ baseUrl: `${BASE}${dicomWebPath}`, auth, timeoutMs: 1000 });
  const orthanc = new OrthancClient({ baseUrl: BASE, auth, timeoutMs: 1000 });
  return pacsChecks(config.pacs!, { dicomweb, orthanc }).finally(() => {
    dicomweb.close();
    orthanc.close();
  });
}

/** Orthanc 1.10's error body (HttpDescribeErrors on): what tells a declared name from an undeclared one. */
const orthancError = (status: 7 | 17, uri: string) => ({
  HttpError: 'Not Found',
  HttpStatus: 404,
  Message: status === 17 ? 'Unknown resource' : 'Accessing an inexistent item',
  Method: 'PUT',
  OrthancError: status === 17 ? 'Unknown resource' : 'Accessing an inexistent item',
  OrthancStatus: status,
  Uri: uri,
});

/** The requests of a full run, in order, each asserted exactly (method, path, query, headers, body). */
function orthanc(options: { system?: object; qido?: number; stow?: number; metadata?: (name: string) => [number, unknown] } = {}) {
  const scope = nock(BASE, { reqheaders: { authorization: basic } });
  scope.get('/system').reply(200, { Version: '1.10.1', CheckRevisions: false, ...options.system });
  scope.get('/plugins').reply(200, ['dicom-web']);
  scope.get('/dicom-web/studies').query({ limit: '1' }).matchHeader('accept', 'application/dicom+json').reply(options.qido ?? 200, []);
  if ((options.qido ?? 200) === 200) {
    scope
      .post('/dicom-web/studies', '--pacs-triage-doctor--\r\n')
      .matchHeader('content-type', 'multipart/related; type="application/dicom"; boundary=pacs-triage-doctor')
      .matchHeader('accept', 'application/dicom+json')
      .reply(options.stow ?? 200, { '00081198': { vr: 'SQ' }, '00081199': { vr: 'SQ' } });
  }
  const metadata = options.metadata ?? ((name: string) => [404, orthancError(17, `${PROBE}/${name}`)]);
  for (const name of ['PacsTriagePriority', 'PacsTriageResult']) {
    scope.put(`${PROBE}/${name}`, 'pacs-triage doctor').reply(...(metadata(name) as [number, Record<string, unknown>]));
  }
  return scope;
}

const byName = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.name, c]));

describe('doctor: PACS (Orthanc)', () => {
  it('a well set-up Orthanc: every check ok, asked with the configured auth, nothing stored', async () => {
    orthanc();
    const checks = await run();
    expect(checks.map((c) => [c.name, c.status])).toEqual([
      ['pacs REST API (Orthanc)', 'ok'],
      ['pacs DICOMweb QIDO-RS', 'ok'],
      ['pacs may store (STOW-RS)', 'ok'],
      ['Orthanc user metadata', 'ok'],
      ['Orthanc metadata revisions', 'ok'],
    ]);
    expect(byName(checks)['pacs REST API (Orthanc)']?.detail).toBe(`Orthanc 1.10.1 at ${BASE}/system; auth: basic (user triage)`);
    expect(byName(checks)['Orthanc user metadata']?.detail).toMatch(/^PacsTriagePriority and PacsTriageResult are declared and this user may write them \(asked by a PUT on a study id Orthanc cannot have/);
  });

  it('an Orthanc without our UserMetadata declaration: FAIL, naming the names and the exact declaration to add', async () => {
    orthanc({ metadata: (name) => [404, orthancError(7, `${PROBE}/${name}`)] });
    const check = byName(await run())['Orthanc user metadata'];
    expect(check).toEqual({
      name: 'Orthanc user metadata',
      status: 'fail',
      detail: 'Orthanc does not declare PacsTriagePriority, PacsTriageResult ("Inexistent item"): writing the triage priority would fail with 404 for every study',
      fix: 'add "UserMetadata": { "PacsTriagePriority": 4100, "PacsTriageResult": 4101 } to orthanc.json (merged into any "UserMetadata" already there; other free indices 1024–65535 do too), then restart Orthanc',
    });
    expect(USER_METADATA_FIX).toBe('"UserMetadata": { "PacsTriagePriority": 4100, "PacsTriageResult": 4101 }');
  });

  it('one name declared, the other not: FAIL naming only the missing one', async () => {
    orthanc({ metadata: (name) => [404, orthancError(name === 'PacsTriageResult' ? 7 : 17, `${PROBE}/${name}`)] });
    expect(byName(await run())['Orthanc user metadata']?.detail).toMatch(/^Orthanc does not declare PacsTriageResult \(/);
  });

  it('Orthanc without error descriptions (HttpDescribeErrors false: a bare 404): warn, it cannot tell', async () => {
    orthanc({ metadata: () => [404, ''] });
    const check = byName(await run())['Orthanc user metadata'];
    expect(check?.status).toBe('warn');
    expect(check?.detail).toMatch(/cannot tell whether PacsTriagePriority, PacsTriageResult are declared: Orthanc answered 404\/404 without its error description/);
    expect(check?.fix).toContain(USER_METADATA_FIX);
  });

  it('a user that may not write metadata (403 from an authorization plugin or proxy): FAIL, named', async () => {
    orthanc({ metadata: () => [403, ''] });
    expect(byName(await run())['Orthanc user metadata']).toMatchObject({
      status: 'fail',
      detail: 'PUT studies/…/metadata/PacsTriagePriority answered 403: the triage priority cannot be written to Orthanc',
      fix: expect.stringMatching(/^grant the user in pacs.auth PUT on \/studies\/\{id\}\/metadata\/\{name\}/),
    });
  });

  it('a user that may read but not store: STOW-RS 403 is a FAIL', async () => {
    orthanc({ stow: 403 });
    expect(byName(await run())['pacs may store (STOW-RS)']).toMatchObject({
      status: 'fail',
      detail: `POST ${BASE}/dicom-web/studies answered 403: this user may read but not store, so the results (DICOM SR) cannot be stored`,
      fix: 'grant the user in pacs.auth the right to store (STOW-RS) on the PACS',
    });
  });

  it('a PACS that answers 400 to an empty STOW-RS: a warning (credentials accepted, storing not proven)', async () => {
    orthanc({ stow: 400 });
    expect(byName(await run())['pacs may store (STOW-RS)']?.status).toBe('warn');
  });

  it('CheckRevisions on: FAIL, a rewrite of our metadata would get 409', async () => {
    orthanc({ system: { CheckRevisions: true } });
    expect(byName(await run())['Orthanc metadata revisions']).toMatchObject({ status: 'fail', fix: 'set "CheckRevisions": false in orthanc.json (pacs-triage writes its metadata without If-Match)' });
  });

  it('a wrong pacs.dicomWebPath: FAIL naming the path tried; no STOW is attempted there', async () => {
    const scope = nock(BASE, { reqheaders: { authorization: basic } });
    scope.get('/system').reply(200, { Version: '1.10.1', CheckRevisions: false });
    scope.get('/plugins').reply(200, ['dicom-web']);
    scope.get('/dicomweb/studies').query({ limit: '1' }).reply(404, orthancError(17, '/dicomweb/studies'));
    for (const name of ['PacsTriagePriority', 'PacsTriageResult']) scope.put(`${PROBE}/${name}`).reply(404, orthancError(17, name));
    const checks = byName(await run('/dicomweb'));
    expect(checks['pacs DICOMweb QIDO-RS']).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^NOT_FOUND: pacs GET studies answered 404/),
      fix: `set pacs.dicomWebPath to the PACS's DICOMweb root: "/dicomweb" was tried (Orthanc's is its DicomWeb.Root setting, "/dicom-web/" by default)`,
    });
    expect(checks['pacs may store (STOW-RS)']).toBeUndefined();
  });

  it('an Orthanc without the DICOMweb plugin: the fix says to install it', async () => {
    const scope = nock(BASE);
    scope.get('/system').reply(200, { Version: '1.10.1' });
    scope.get('/plugins').reply(200, []);
    scope.get('/dicom-web/studies').query({ limit: '1' }).reply(404, orthancError(17, '/dicom-web/studies'));
    for (const name of ['PacsTriagePriority', 'PacsTriageResult']) scope.put(`${PROBE}/${name}`).reply(404, orthancError(17, name));
    const checks = byName(await run());
    expect(checks['pacs DICOMweb QIDO-RS']?.fix).toMatch(/^Orthanc has no DICOMweb plugin loaded: install it \(Debian: orthanc-dicomweb\)/);
    expect(checks['Orthanc metadata revisions']?.detail).toBe('no revision checks in this Orthanc version');
  });

  it('refused credentials: the REST and DICOMweb checks FAIL with the fix naming pacs.auth; the Orthanc checks that need the REST API are not run', async () => {
    const scope = nock(BASE);
    scope.get('/system').reply(401, '');
    scope.get('/dicom-web/studies').query({ limit: '1' }).reply(401, '');
    const checks = await run();
    expect(checks.map((c) => [c.name, c.status, c.fix])).toEqual([
      ['pacs REST API (Orthanc)', 'fail', 'the server refused the credentials: check pacs.auth'],
      ['pacs DICOMweb QIDO-RS', 'fail', 'the server refused the credentials: check pacs.auth'],
    ]);
  });

  it('nothing listening: the fix says to check pacs.baseUrl and that the server runs', async () => {
    nock.enableNetConnect('127.0.0.1');
    try {
      const config = loadConfig({ env: {}, overrides: { pacs: { baseUrl: 'http://127.0.0.1:1', auth } } });
      const dicomweb = new DicomWebClient({ baseUrl: 'http://127.0.0.1:1/dicom-web', auth, timeoutMs: 1000 });
      const checks = await pacsChecks(config.pacs!, { dicomweb, orthanc: undefined });
      dicomweb.close();
      expect(checks).toMatchObject([{ name: 'pacs DICOMweb QIDO-RS', status: 'fail', fix: expect.stringMatching(/^nothing answered: check pacs.baseUrl/) }]);
    } finally {
      nock.disableNetConnect();
    }
  });
});
