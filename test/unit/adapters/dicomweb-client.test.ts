import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DicomWebClient, INSTANCE_FIELDS } from '../../../src/adapters/dicomweb/client.ts';
import { buildMultipart, parseMultipart } from '../../../src/adapters/dicomweb/multipart.ts';
import { TriageError } from '../../../src/domain/errors.ts';

const BASE = 'http://pacs.test:8042';
const client = new DicomWebClient({ baseUrl: `${BASE}/dicom-web`, auth: { username: 'triage', password: 's3cret' }, timeoutMs: 500 });
const basic = `Basic ${Buffer.from('triage:s3cret').toString('base64')}`;

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
  nock.cleanAll();
});

describe('DicomWebClient', () => {
  it('QIDO: asks for the study instances with a literal-comma includefield and basic auth, and names the attributes', async () => {
    nock(BASE, { reqheaders: { authorization: basic, accept: 'application/dicom+json' } })
      .get('/dicom-web/studies/1.2.3/instances')
      .query((q) => q['includefield'] === INSTANCE_FIELDS.join(','))
      .reply(200, [
        {
          '0020000D': { vr: 'UI', Value: ['1.2.3'] },
          '0020000E': { vr: 'UI', Value: ['1.2.3.4'] },
          '00080018': { vr: 'UI', Value: ['1.2.3.4.5'] },
          '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.1'] },
          '00080060': { vr: 'CS', Value: ['CR'] },
          '00100010': { vr: 'PN', Value: [{ Alphabetic: 'SYNTH^ONE' }] },
          '00280010': { vr: 'US', Value: [256] },
        },
      ]);
    const [meta] = await client.studyInstances('1.2.3');
    expect(meta).toEqual({
      StudyInstanceUID: '1.2.3',
      SeriesInstanceUID: '1.2.3.4',
      SOPInstanceUID: '1.2.3.4.5',
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.1',
      Modality: 'CR',
      PatientName: 'SYNTH^ONE',
      Rows: 256,
    });
  });

  it('the raw query string carries commas, not %2C (Orthanc ignores %2C)', async () => {
    let path = '';
    nock(BASE).get(/.*/).reply(function (uri) {
      path = uri;
      return [204, ''];
    });
    expect(await client.studyInstances('9.9')).toEqual([]);
    expect(path).toContain('includefield=00080016,00080018,');
    expect(path).not.toContain('%2C');
  });

  it('WADO-RS: asks for the stored transfer syntax and returns the first part', async () => {
    const { body, contentType } = buildMultipart([Buffer.from('DICM-bytes')], 'application/dicom');
    nock(BASE, { reqheaders: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } })
      .get('/dicom-web/studies/1.2/series/1.2.3/instances/1.2.3.4')
      .reply(200, body, { 'content-type': contentType });
    expect((await client.retrieveInstance('1.2', '1.2.3', '1.2.3.4')).toString()).toBe('DICM-bytes');
  });

  it('STOW-RS: posts one multipart/related part per file to the study, and fails when the PACS lists a failed SOP', async () => {
    let seen: { type?: string; parts?: number } = {};
    nock(BASE)
      .post('/dicom-web/studies/1.2', (raw: string) => {
        seen.parts = (raw.match(/Content-Type: application\/dicom\r\n/g) ?? []).length;
        return true;
      })
      .reply(function () {
        seen.type = String(this.req.headers['content-type']);
        return [200, {}];
      });
    await client.store('1.2', [Buffer.from('a'), Buffer.from('b')]);
    expect(seen.parts).toBe(2);
    expect(seen.type).toMatch(/^multipart\/related; type="application\/dicom"; boundary=pacs-triage-[0-9a-f]+$/);

    nock(BASE).post('/dicom-web/studies/1.2').reply(200, { '00081198': { vr: 'SQ', Value: [{}] } });
    await expect(client.store('1.2', [Buffer.from('a')])).rejects.toMatchObject({ code: 'UPSTREAM_REJECTED' });
  });

  it('maps failures to retryable or terminal errors: 503 and timeouts retry, 401 and 400 do not', async () => {
    nock(BASE).get(/instances/).reply(503, 'busy', { 'retry-after': '7' });
    const e503 = (await client.studyInstances('1').catch((e: unknown) => e)) as TriageError;
    expect([e503.code, e503.retryable, e503.retryAfterS, e503.status]).toEqual(['UPSTREAM_UNAVAILABLE', true, 7, 503]);

    nock(BASE).get(/instances/).reply(401, 'no');
    const e401 = (await client.studyInstances('1').catch((e: unknown) => e)) as TriageError;
    expect([e401.code, e401.retryable]).toEqual(['UPSTREAM_AUTH', false]);

    nock(BASE).get(/instances/).delay(1_000).reply(200, []);
    const slow = (await client.studyInstances('1').catch((e: unknown) => e)) as TriageError;
    expect([slow.code, slow.retryable]).toEqual(['UPSTREAM_TIMEOUT', true]);
  });
});

describe('multipart', () => {
  it('round-trips binary parts that contain CRLF', () => {
    const parts = [Buffer.from([0, 13, 10, 45, 45, 1]), Buffer.from('second')];
    const { body, contentType } = buildMultipart(parts, 'application/dicom');
    const boundary = /boundary=(.+)$/.exec(contentType)?.[1] as string;
    expect(parseMultipart(body, boundary).map((p) => [...p.body])).toEqual(parts.map((p) => [...p]));
  });

  it('refuses a truncated answer', () => {
    expect(() => parseMultipart(Buffer.from('--b\r\nContent-Type: x\r\n\r\nabc'), 'b')).toThrow(/truncated/);
  });
});
