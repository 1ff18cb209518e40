/**
 * WADO-RS retrieval against a real Orthanc: Explicit VR Little Endian first, the stored syntax
 * when Orthanc cannot transcode (1.10 answers 500 for JPEG 2000), and the remembered refusal
 * that lets further instances of the series skip the doomed request.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DicomWebClient, partSyntax } from '../../src/adapters/dicomweb/client.ts';
import type { HttpRequest } from '../../src/adapters/http/client.ts';
import { readDicom } from '../../src/dicom/index.ts';
import { startOrthanc, type OrthancServer } from '../../src/sandbox/orthanc.ts';
import { requireOrthanc } from '../harness/require-servers.ts';

const PYDICOM = path.resolve('test/fixtures/pydicom');
const RLE = path.join(PYDICOM, 'MR_small_RLE.dcm');
const J2K = path.join(PYDICOM, 'JPEG2000.dcm');

function syntaxOf(bytes: Uint8Array): string | undefined {
  return partSyntax({ headers: {}, body: Buffer.from(bytes) });
}

describe.skipIf(!requireOrthanc())('WADO-RS: Explicit VR Little Endian first, the stored syntax as the fallback', () => {
  let orthanc: OrthancServer;
  let store: DicomWebClient;

  beforeAll(async () => {
    orthanc = await startOrthanc({ dicomServer: false });
    store = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, auth: orthanc.auth, timeoutMs: 10_000 });
    await store.store(undefined, [readFileSync(RLE), readFileSync(J2K)]);
  }, 120_000);

  afterAll(async () => {
    store?.close();
    await orthanc?.cleanup();
  });

  /** A client whose every request's Accept header and answer status are recorded. */
  function recorded(): { client: DicomWebClient; seen: string[] } {
    const client = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, auth: orthanc.auth, timeoutMs: 10_000 });
    const seen: string[] = [];
    const send = client.http.request.bind(client.http);
    client.http.request = async (req: HttpRequest) => {
      const res = await send(req);
      seen.push(`${res.status} ${String(req.headers?.['accept']).replace(/.*transfer-syntax=/, '')}`);
      return res;
    };
    return { client, seen };
  }

  const uids = (file: string) => readDicom(readFileSync(file)).meta;

  it('RLE: Orthanc transcodes to Explicit VR LE in one request; the pixels are those of the file', async () => {
    const { client, seen } = recorded();
    const m = uids(RLE);
    const bytes = await client.retrieveInstance(m.StudyInstanceUID, m.SeriesInstanceUID, m.SOPInstanceUID);
    expect(seen).toEqual(['200 1.2.840.10008.1.2.1']);
    expect(syntaxOf(bytes)).toBe('1.2.840.10008.1.2.1');
    expect(readDicom(bytes).frame()).toEqual(readDicom(readFileSync(RLE)).frame());
    client.close();
  });

  it('JPEG 2000: Orthanc answers 500, the stored syntax is fetched and decoded here; the next retrieval skips the 500', async () => {
    const { client, seen } = recorded();
    const m = uids(J2K);
    const bytes = await client.retrieveInstance(m.StudyInstanceUID, m.SeriesInstanceUID, m.SOPInstanceUID);
    expect(seen).toEqual(['500 1.2.840.10008.1.2.1', '200 *']);
    expect(syntaxOf(bytes)).toBe('1.2.840.10008.1.2.4.91');
    expect(readDicom(bytes).frame()).toEqual(readDicom(readFileSync(J2K)).frame());

    await client.retrieveInstance(m.StudyInstanceUID, m.SeriesInstanceUID, m.SOPInstanceUID);
    expect(seen).toEqual(['500 1.2.840.10008.1.2.1', '200 *', '200 *']);
    client.close();
  });

  it('retrieveTransferSyntax stored: one request in the stored syntax, whatever it is', async () => {
    const { client, seen } = recorded();
    client.retrieveTransferSyntax = 'stored';
    const m = uids(J2K);
    await client.retrieveInstance(m.StudyInstanceUID, m.SeriesInstanceUID, m.SOPInstanceUID);
    expect(seen).toEqual(['200 *']);
    client.close();
  });
});
