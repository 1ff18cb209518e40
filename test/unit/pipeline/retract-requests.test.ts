/**
 * The exact requests of a retraction on the real adapters (nock): QIDO of the study, STOW-RS of
 * the rejection note, Orthanc's metadata, the FHIR search by result key, the If-Match update to
 * entered-in-error, and the Provenance as a conditional create in a transaction.
 */
import nock from 'nock';
import pino from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DicomWebClient, INSTANCE_FIELDS } from '../../../src/adapters/dicomweb/client.ts';
import { parseMultipart } from '../../../src/adapters/dicomweb/multipart.ts';
import { FhirClient } from '../../../src/adapters/fhir/client.ts';
import { OrthancClient } from '../../../src/adapters/orthanc/client.ts';
import { serverRetractionPorts } from '../../../src/compose/retraction-ports.ts';
import { readPart10 } from '../../../src/dicom/part10.ts';
import { rejectionNoteUids } from '../../../src/pipeline/encode/retraction.ts';
import { drainRetractions, requestMarkedWrong } from '../../../src/pipeline/retract.ts';
import { openSqliteStore } from '../../../src/state/sqlite/index.ts';

const PACS = 'http://pacs.test:8042';
const FHIR = 'http://fhir.test';
const ROOT = '1.2.826.0.1.3680043.10.999';
const UID = `${ROOT}.1`;
const SR = `${ROOT}.1.9.1`;
const SR_SERIES = `${ROOT}.1.9`;
const KEY = 'a'.repeat(64);
const basic = `Basic ${Buffer.from('triage:pw').toString('base64')}`;
const lease = { owner: 'w', leaseMs: 5_000 };

const dicomJson = (m: Record<string, [string, string]>): Record<string, { vr: string; Value: unknown[] }> =>
  Object.fromEntries(Object.entries(m).map(([tag, [vr, v]]) => [tag, { vr, Value: [vr === 'PN' ? { Alphabetic: v } : v] }]));

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});

describe('a retraction, request by request', () => {
  it('QIDO, STOW-RS of the KOS, Orthanc metadata, FHIR search, If-Match PUT, Provenance transaction — in that order, nothing else', async () => {
    const store = openSqliteStore(':memory:', { clock: () => Date.parse('2026-01-02T03:04:05.000Z') });
    await store.enqueue([{ studyInstanceUID: UID, source: 'cli' }]);
    await store.claim(Number.MAX_SAFE_INTEGER, lease, UID);
    await store.saveResult({
      resultKey: KEY,
      studyInstanceUID: UID,
      sourceSopInstanceUIDs: [`${UID}.1.1`],
      srSopInstanceUID: SR,
      srSeriesInstanceUID: SR_SERIES,
      priority: 'stat',
      findings: [],
      modelId: 'm',
      modelVersion: '1',
      executionProvider: 'cpu',
      createdAt: 1,
      written: { pacs: true, fhir: true, metadata: true },
      notes: [],
    });
    await store.finish(UID, 'done', undefined);
    await requestMarkedWrong(store, UID, 'missed the pneumothorax');
    const auth = { username: 'triage', password: 'pw' };
    const dicomweb = new DicomWebClient({ baseUrl: `${PACS}/dicom-web`, auth, timeoutMs: 1_000 });
    const orthanc = new OrthancClient({ baseUrl: PACS, auth, timeoutMs: 1_000 });
    const fhir = new FhirClient({ baseUrl: `${FHIR}/fhir`, timeoutMs: 1_000 });
    const note = rejectionNoteUids(ROOT, UID, [{ seriesInstanceUID: SR_SERIES, sopInstanceUID: SR }]);
    const order: string[] = [];
    const image = dicomJson({ '0020000D': ['UI', UID], '0020000E': ['UI', `${UID}.1`], '00080018': ['UI', `${UID}.1.1`], '00080016': ['UI', '1.2.840.10008.5.1.4.1.1.1'], '00080060': ['CS', 'CR'], '00100020': ['LO', 'P1'], '00100010': ['PN', 'A^B'] });
    const sr = dicomJson({ '0020000D': ['UI', UID], '0020000E': ['UI', SR_SERIES], '00080018': ['UI', SR], '00080016': ['UI', '1.2.840.10008.5.1.4.1.1.88.34'], '00080060': ['CS', 'SR'] });
    let stowed: Buffer | undefined;
    let stowType = '';
    let putBody: Record<string, unknown> | undefined;
    let txBody: { entry: { request: unknown; resource: Record<string, unknown> }[] } | undefined;

    nock(PACS, { reqheaders: { authorization: basic } })
      .get(`/dicom-web/studies/${UID}/instances`)
      .query({ includefield: INSTANCE_FIELDS.join(',') })
      .reply(200, () => (order.push('qido'), [image, sr]), { 'content-type': 'application/dicom+json' })
      .post(`/dicom-web/studies/${UID}`)
      .reply(200, function (_uri, body) {
        order.push('stow');
        stowType = String(this.req.headers['content-type']);
        stowed = Buffer.from(body as string, 'hex');
        return {};
      })
      .post('/tools/lookup', UID)
      .reply(200, () => (order.push('lookup'), [{ ID: 'orth-1', Type: 'Study' }]))
      .put('/studies/orth-1/metadata/PacsTriagePriority', 'retracted')
      .reply(200, () => (order.push('priority'), ''))
      .put('/studies/orth-1/metadata/PacsTriageResult', JSON.stringify({ retracted: [SR], rejectionNote: note.sopInstanceUID, cause: 'marked-wrong' }))
      .reply(200, () => (order.push('result'), ''));
    nock(FHIR)
      .get('/fhir/RiskAssessment')
      .query({ identifier: `urn:pacs-triage:result|${KEY}` })
      .reply(200, () => (order.push('search'), { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'RiskAssessment', id: 'ra1', meta: { versionId: '1' }, status: 'final' }, search: { mode: 'match' } }] }), { 'content-type': 'application/fhir+json' });
    nock(FHIR, { reqheaders: { 'if-match': 'W/"1"' } })
      .put('/fhir/RiskAssessment/ra1')
      .reply(200, (_uri, body) => {
        order.push('put');
        putBody = (typeof body === 'string' ? JSON.parse(body) : body) as Record<string, unknown>;
        return { ...putBody, meta: { versionId: '2' } };
      }, { 'content-type': 'application/fhir+json' });
    nock(FHIR)
      .post('/fhir', (body) => (order.push('tx'), (txBody = (typeof body === 'string' ? JSON.parse(body) : body) as typeof txBody), true))
      .reply(200, { resourceType: 'Bundle', type: 'transaction-response', entry: [{ response: { status: '201 Created' } }] }, { 'content-type': 'application/fhir+json' });

    const deps = { store, ports: serverRetractionPorts({ dicomweb, orthanc, fhir }), uidRoot: ROOT, shadow: false, software: { name: 'pacs-triage', version: '0.1.0' }, log: pino({ level: 'silent' }) };
    const outcomes = await drainRetractions(deps, { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10 }, lease);
    expect(outcomes).toEqual([{ status: 'done' }]);
    expect(order).toEqual(['qido', 'stow', 'lookup', 'priority', 'result', 'search', 'put', 'tx']);

    expect(stowType).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
    const parts = parseMultipart(stowed!, stowType.split('boundary=')[1]!.replace(/"/g, ''));
    expect(parts).toHaveLength(1);
    const kos = readPart10(new Uint8Array(parts[0]!.body));
    expect([kos['SOPInstanceUID'], kos['SeriesInstanceUID'], kos['Modality'], kos['PatientID']]).toEqual([note.sopInstanceUID, note.seriesInstanceUID, 'KO', 'P1']);
    expect([kos['ContentDate'], kos['ContentTime']]).toEqual(['20260102', '030405']);

    expect(putBody).toEqual({ resourceType: 'RiskAssessment', id: 'ra1', meta: { versionId: '1' }, status: 'entered-in-error', text: { status: 'generated', div: expect.stringContaining('ENTERED IN ERROR') } });
    expect(txBody!.entry).toHaveLength(1);
    expect(txBody!.entry[0]!.request).toEqual({ method: 'POST', url: 'Provenance', ifNoneExist: `_tag=urn:pacs-triage:retraction|${KEY}` });
    expect(txBody!.entry[0]!.resource).toMatchObject({
      target: [{ reference: 'RiskAssessment/ra1/_history/2' }],
      recorded: '2026-01-02T03:04:05.000Z',
      reason: [{ text: 'The AI result was marked wrong. missed the pneumothorax' }],
    });
    dicomweb.close();
    orthanc.close();
  });

  it('the sweep asks QIDO-RS for the one study, limit 1: an empty answer means deleted', async () => {
    const dicomweb = new DicomWebClient({ baseUrl: `${PACS}/dicom-web`, timeoutMs: 1_000 });
    const ports = serverRetractionPorts({ dicomweb, orthanc: undefined, fhir: undefined });
    nock(PACS).get('/dicom-web/studies').query({ StudyInstanceUID: UID, limit: '1', offset: '0' }).reply(200, [dicomJson({ '0020000D': ['UI', UID] })]);
    nock(PACS).get('/dicom-web/studies').query({ StudyInstanceUID: UID, limit: '1', offset: '0' }).reply(204);
    expect(await ports.studyExists(UID)).toBe(true);
    expect(await ports.studyExists(UID)).toBe(false);
    expect(ports.markRetracted).toBeUndefined(); // a generic DICOMweb PACS keeps no priority
    expect(ports.fhir).toBeUndefined();
    dicomweb.close();
  });
});
