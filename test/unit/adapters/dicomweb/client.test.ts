import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DicomWebClient, INSTANCE_FIELDS, partSyntax } from '../../../../src/adapters/dicomweb/client.ts';
import { buildMultipart, parseMultipart } from '../../../../src/adapters/dicomweb/multipart.ts';
import { type TriageError } from '../../../../src/domain/errors.ts';

const BASE = 'http://pacs.test:8042';
const client = new DicomWebClient({ baseUrl: `${BASE}/dicom-web`, auth: { username: 'triage', password: 's3cret' }, timeoutMs: 500 });
const basic = `Basic ${Buffer.from('triage:s3cret').toString('base64')}`;
const STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const EXPLICIT_LE = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1';

/** A minimal Part 10 header: preamble, DICM, and a File Meta group with only the Transfer Syntax UID. */
function part10(syntax: string): Buffer {
  const uid = syntax.length % 2 === 0 ? syntax : `${syntax}\0`;
  const ts = Buffer.alloc(8 + uid.length);
  ts.writeUInt16LE(0x0002, 0);
  ts.writeUInt16LE(0x0010, 2);
  ts.write('UI', 4, 'latin1');
  ts.writeUInt16LE(uid.length, 6);
  ts.write(uid, 8, 'latin1');
  const length = Buffer.alloc(12);
  length.writeUInt16LE(0x0002, 0);
  length.writeUInt16LE(0x0000, 2);
  length.write('UL', 4, 'latin1');
  length.writeUInt16LE(4, 6);
  length.writeUInt32LE(ts.length, 8);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), length, ts]);
}

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
          '00280008': { vr: 'IS', Value: [2] },
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
      NumberOfFrames: 2,
    });
  });

  it('the raw query string carries commas, not %2C (Orthanc ignores %2C)', async () => {
    let path = '';
    nock(BASE).get(/.*/).reply(function (uri) {
      path = uri;
      return [204, ''];
    });
    expect(await client.studyInstances('9.9')).toEqual([]);
    expect(path).toContain('includefield=00080008,00080016,00080018,');
    expect(path).not.toContain('%2C');
  });

  it('WADO-RS (retrieveTransferSyntax stored): asks for the stored transfer syntax only and returns the first part', async () => {
    const stored = new DicomWebClient({ baseUrl: `${BASE}/dicom-web`, timeoutMs: 500, retrieveTransferSyntax: 'stored' });
    const { body, contentType } = buildMultipart([Buffer.from('DICM-bytes')], 'application/dicom');
    nock(BASE, { reqheaders: { accept: STORED } })
      .get('/dicom-web/studies/1.2/series/1.2.3/instances/1.2.3.4')
      .reply(200, body, { 'content-type': contentType });
    expect((await stored.retrieveInstance('1.2', '1.2.3', '1.2.3.4')).toString()).toBe('DICM-bytes');
  });

  describe('WADO-RS explicit-le-first (the default)', () => {
    const wado = (study: string, series: string, sop: string): string => `/dicom-web/studies/${study}/series/${series}/instances/${sop}`;
    /** One WADO-RS part with its own content-type (transfer-syntax parameter when given). */
    const answer = (text: string, syntax?: string): [number, Buffer, Record<string, string>] => {
      const boundary = 'b0undary';
      const type = `application/dicom${syntax ? `; transfer-syntax=${syntax}` : ''}`;
      const body = Buffer.from(`--${boundary}\r\nContent-Type: ${type}\r\n\r\n${text}\r\n--${boundary}--\r\n`);
      return [200, body, { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}` }];
    };
    const fresh = (): DicomWebClient => new DicomWebClient({ baseUrl: `${BASE}/dicom-web`, timeoutMs: 500 });

    it('asks for Explicit VR Little Endian and takes the part when the PACS transcodes: one request', async () => {
      nock(BASE, { reqheaders: { accept: EXPLICIT_LE } })
        .get(wado('1.2', '1.2.3', '1.2.3.4'))
        .reply(...answer('le-bytes', '1.2.840.10008.1.2.1'));
      expect((await fresh().retrieveInstance('1.2', '1.2.3', '1.2.3.4')).toString()).toBe('le-bytes');
    });

    for (const status of [406, 415, 500, 501]) {
      it(`on ${status} asks again for the stored syntax; further instances of that series skip the first request`, async () => {
        const client = fresh();
        nock(BASE, { reqheaders: { accept: EXPLICIT_LE } })
          .get(wado('1.2', '1.2.3', '1.2.3.4'))
          .reply(status, 'cannot transcode');
        nock(BASE, { reqheaders: { accept: STORED } })
          .get(wado('1.2', '1.2.3', '1.2.3.4'))
          .reply(...answer('j2k-bytes', '1.2.840.10008.1.2.4.90'));
        expect((await client.retrieveInstance('1.2', '1.2.3', '1.2.3.4')).toString()).toBe('j2k-bytes');

        // Same series: straight to the stored syntax.
        nock(BASE, { reqheaders: { accept: STORED } })
          .get(wado('1.2', '1.2.3', '1.2.3.5'))
          .reply(...answer('j2k-2', '1.2.840.10008.1.2.4.90'));
        expect((await client.retrieveInstance('1.2', '1.2.3', '1.2.3.5')).toString()).toBe('j2k-2');

        // Another series (stored syntax unknown): Explicit VR LE first again.
        nock(BASE, { reqheaders: { accept: EXPLICIT_LE } })
          .get(wado('1.2', '1.2.9', '1.2.9.1'))
          .reply(...answer('le-other', '1.2.840.10008.1.2.1'));
        expect((await client.retrieveInstance('1.2', '1.2.9', '1.2.9.1')).toString()).toBe('le-other');
      });
    }

    it('a refusal for an instance stored in Explicit VR LE teaches nothing: the next instance asks for Explicit VR LE again', async () => {
      const client = fresh();
      nock(BASE, { reqheaders: { accept: EXPLICIT_LE } }).get(wado('1.2', '1.2.3', '1.2.3.4')).reply(500, 'busy');
      nock(BASE, { reqheaders: { accept: STORED } })
        .get(wado('1.2', '1.2.3', '1.2.3.4'))
        .reply(...answer('le-stored', '1.2.840.10008.1.2.1'));
      expect((await client.retrieveInstance('1.2', '1.2.3', '1.2.3.4')).toString()).toBe('le-stored');
      nock(BASE, { reqheaders: { accept: EXPLICIT_LE } })
        .get(wado('1.2', '1.2.3', '1.2.3.5'))
        .reply(...answer('le-2', '1.2.840.10008.1.2.1'));
      expect((await client.retrieveInstance('1.2', '1.2.3', '1.2.3.5')).toString()).toBe('le-2');
    });

    it('a 200 in another syntax than asked is the stored one: used as it is (no second request), and remembered', async () => {
      const client = fresh();
      nock(BASE, { reqheaders: { accept: EXPLICIT_LE } })
        .get(wado('1.2', '1.2.3', '1.2.3.4'))
        .reply(...answer('rle-bytes', '1.2.840.10008.1.2.5'));
      expect((await client.retrieveInstance('1.2', '1.2.3', '1.2.3.4')).toString()).toBe('rle-bytes');
      nock(BASE, { reqheaders: { accept: STORED } })
        .get(wado('1.2', '1.2.3', '1.2.3.5'))
        .reply(...answer('rle-2', '1.2.840.10008.1.2.5'));
      expect((await client.retrieveInstance('1.2', '1.2.3', '1.2.3.5')).toString()).toBe('rle-2');
    });

    it('a part without a transfer-syntax parameter is recognised by its File Meta Information', async () => {
      const meta = buildMultipart([part10('1.2.840.10008.1.2.4.70')], 'application/dicom');
      expect(partSyntax(parseMultipart(meta.body, meta.contentType.split('boundary=')[1] ?? '')[0]!)).toBe('1.2.840.10008.1.2.4.70');
    });

    it('other failures are not retried in another syntax: 404 is NOT_FOUND, 503 stays retryable', async () => {
      nock(BASE, { reqheaders: { accept: EXPLICIT_LE } }).get(wado('1.2', '1.2.3', '1.2.3.4')).reply(404, 'no such instance');
      await expect(fresh().retrieveInstance('1.2', '1.2.3', '1.2.3.4')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      nock(BASE, { reqheaders: { accept: EXPLICIT_LE } }).get(wado('1.2', '1.2.3', '1.2.3.4')).reply(503, 'later');
      await expect(fresh().retrieveInstance('1.2', '1.2.3', '1.2.3.4')).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
    });
  });

  it('STOW-RS: posts one multipart/related part per file to the study, and fails when the PACS lists a failed SOP', async () => {
    const seen: { type?: string; parts?: number } = {};
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
