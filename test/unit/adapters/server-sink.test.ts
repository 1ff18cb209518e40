/**
 * The ServerSink's optional writes on the wire (nock: the exact requests). Orthanc 1.10 answers
 * 404 "Accessing an inexistent item" to a PUT of a metadata name its UserMetadata does not
 * declare — the same status as for a study it does not have — so the sink asks Orthanc for the
 * study, and a 404 on a study it has just named becomes CONFIG_INVALID (pacs.userMetadata).
 */
import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DicomWebClient } from '../../../src/adapters/dicomweb/client.ts';
import { FhirClient } from '../../../src/adapters/fhir/client.ts';
import { OrthancClient, orthancStudyId, UNDECLARED_METADATA } from '../../../src/adapters/orthanc/client.ts';
import { ServerSink } from '../../../src/adapters/server-io.ts';
import { TriageError } from '../../../src/domain/errors.ts';
import type { StoredResult } from '../../../src/domain/records.ts';
import type { InstanceMeta } from '../../../src/domain/types.ts';

const PACS = 'http://orthanc.test:8042';
const FHIR = 'http://fhir.test/fhir';
const UID = '1.2.826.0.1.3680043.10.999.1';
const ID = orthancStudyId('MRN-1', UID);
const INEXISTENT = { HttpError: 'Not Found', HttpStatus: 404, Message: 'Accessing an inexistent item', OrthancError: 'Unknown resource', OrthancStatus: 17 };

const study = { StudyInstanceUID: UID, SeriesInstanceUID: `${UID}.1`, SOPInstanceUID: `${UID}.1.1`, SOPClassUID: '1.2.840.10008.5.1.4.1.1.1', PatientID: 'MRN-1' } as InstanceMeta;
const result = { srSopInstanceUID: `${UID}.9.1`, modelId: 'cxr-triage', modelVersion: '1.0.0', priority: 'urgent' } as StoredResult;

function sink(): ServerSink {
  const dicomweb = new DicomWebClient({ baseUrl: `${PACS}/dicom-web`, timeoutMs: 500 });
  const orthanc = new OrthancClient({ baseUrl: PACS, auth: { username: 'u', password: 'p' }, timeoutMs: 500 });
  const fhir = new FhirClient({ baseUrl: FHIR, timeoutMs: 500 });
  return new ServerSink(dicomweb, orthanc, fhir);
}

async function errorOf(p: Promise<unknown>): Promise<TriageError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TriageError) return err;
    throw err;
  }
  throw new Error('expected a TriageError');
}

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});

describe('ServerSink.setPriority on an Orthanc without our UserMetadata', () => {
  it('PUTs both names on the computed id, looks the study up, PUTs again; the second 404 is CONFIG_INVALID at pacs.userMetadata', async () => {
    const auth = { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` };
    nock(PACS, { reqheaders: auth })
      .put(`/studies/${ID}/metadata/PacsTriagePriority`, 'urgent')
      .twice()
      .reply(404, INEXISTENT)
      .put(`/studies/${ID}/metadata/PacsTriageResult`, JSON.stringify({ sr: result.srSopInstanceUID, model: 'cxr-triage@1.0.0', priority: 'urgent' }))
      .twice()
      .reply(404, INEXISTENT)
      .post('/tools/lookup', UID)
      .reply(200, [{ ID, Type: 'Study', Path: `/studies/${ID}` }]);
    const e = await errorOf(sink().setPriority(study, result));
    expect(e).toMatchObject({ code: 'CONFIG_INVALID', where: UNDECLARED_METADATA, status: 404 });
    expect(e.message).toBe('Orthanc refused the study metadata PacsTriagePriority and PacsTriageResult (404): its UserMetadata does not declare them');
    expect(e.retryable).toBe(false);
  });

  it('a study Orthanc no longer has stays NOT_FOUND (not a configuration problem)', async () => {
    nock(PACS)
      .put(`/studies/${ID}/metadata/PacsTriagePriority`)
      .reply(404, INEXISTENT)
      .put(`/studies/${ID}/metadata/PacsTriageResult`)
      .reply(404, INEXISTENT)
      .post('/tools/lookup', UID)
      .reply(200, []);
    expect(await errorOf(sink().setPriority(study, result))).toMatchObject({ code: 'NOT_FOUND', message: `study ${UID} is no longer in the PACS` });
  });

  it('a 403 is UPSTREAM_AUTH as it comes; a 503 stays retryable', async () => {
    nock(PACS).put(`/studies/${ID}/metadata/PacsTriagePriority`).reply(403, 'no').put(`/studies/${ID}/metadata/PacsTriageResult`).reply(403, 'no');
    expect(await errorOf(sink().setPriority(study, result))).toMatchObject({ code: 'UPSTREAM_AUTH', status: 403 });
    nock(PACS).put(`/studies/${ID}/metadata/PacsTriagePriority`).reply(503, '').put(`/studies/${ID}/metadata/PacsTriageResult`).reply(503, '');
    const e = await errorOf(sink().setPriority(study, result));
    expect([e.code, e.retryable]).toEqual(['UPSTREAM_UNAVAILABLE', true]);
  });
});

describe('ServerSink.writeOrderPriority refused', () => {
  const order = { resourceType: 'ServiceRequest', id: 'sr-1', meta: { versionId: '3' }, priority: 'routine' };
  it('PUT with If-Match; a 405 is UPSTREAM_REJECTED with its status, a 403 UPSTREAM_AUTH', async () => {
    nock(FHIR, { reqheaders: { 'if-match': 'W/"3"', 'content-type': 'application/fhir+json' } })
      .put('/ServiceRequest/sr-1', { ...order, priority: 'stat' })
      .reply(405, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported' }] })
      .put('/ServiceRequest/sr-1', { ...order, priority: 'stat' })
      .reply(403, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'forbidden' }] });
    expect(await errorOf(sink().writeOrderPriority(order, 'stat'))).toMatchObject({ code: 'UPSTREAM_REJECTED', status: 405 });
    expect(await errorOf(sink().writeOrderPriority(order, 'stat'))).toMatchObject({ code: 'UPSTREAM_AUTH', status: 403 });
  });
});
