/**
 * The DICOM worker pool: the same answers as the inline reader, named errors across the thread
 * boundary, and an event loop that keeps ticking while a large image is decoded.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { DicomWorkerPool } from '../../../src/compose/workers/dicom-pool.ts';
import { readDicom, readDicomHeader } from '../../../src/dicom/read.ts';
import { NeedMoreBytes } from '../../../src/dicom/read.ts';
import { imageToTensor } from '../../../src/pipeline/preprocess/image-tensor.ts';
import { TriageError } from '../../../src/domain/errors.ts';
import { MANIFEST_IMAGE_SPEC, imageFile } from '../../harness/dicom-builder.ts';
import { deepNesting } from '../../harness/hostile-dicom.ts';

const pool = new DicomWorkerPool(2);
afterAll(() => pool.close());
const DEMO = 'test/fixtures/demo/dicom/demo02.dcm';

describe('DicomWorkerPool', () => {
  it('gives the same header and tensor as the inline reader', async () => {
    const bytes = readFileSync(DEMO);
    expect(await pool.header(new Uint8Array(bytes), {}, false, 'test')).toEqual(readDicomHeader(bytes));
    const inline = imageToTensor(readDicom(bytes), MANIFEST_IMAGE_SPEC);
    const threaded = await pool.tensor(new Uint8Array(readFileSync(DEMO)), MANIFEST_IMAGE_SPEC, {});
    expect(threaded.source).toEqual(inline.source);
    expect(Array.from(threaded.tensor)).toEqual(Array.from(inline.tensor));
  }, 30_000);

  it('carries named errors and "need more bytes" across the thread boundary', async () => {
    const err = await pool.header(deepNesting('1.2.826.0.1.3680043.10.999.5', 20_000), {}, false, 'ingest.folder').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TriageError);
    expect(err).toMatchObject({ code: 'DICOM_TOO_DEEP', where: 'ingest.folder' });
    const prefix = new Uint8Array(readFileSync(DEMO)).subarray(0, 200);
    await expect(pool.header(prefix, {}, true, 'ingest.folder')).rejects.toBeInstanceOf(NeedMoreBytes);
  }, 30_000);

  it('keeps the event loop free while a 6000 × 6000 image is decoded', async () => {
    const size = 6000;
    const samples = new Uint16Array(size * size).map((_, i) => i % 4096);
    const file = imageFile({ rows: size, columns: size, bitsAllocated: 16, bitsStored: 12, samples });
    await pool.header(new Uint8Array(readFileSync(DEMO)), {}, false, 'warm-up');
    let worst = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 10);
    const start = performance.now();
    const result = await pool.tensor(file, MANIFEST_IMAGE_SPEC, {});
    const took = performance.now() - start;
    clearInterval(timer);
    expect(result.source).toEqual({ rows: size, columns: size });
    expect(took).toBeGreaterThan(100); // real work was done...
    expect(worst).toBeLessThan(100); // ...and the loop still ticked every few ms
  }, 60_000);
});

describe('DicomWorkerPool and Node Buffers', () => {
  it('regression: a Buffer that is a view into a larger one (a multipart part) is sent as its own bytes', async () => {
    const file = readFileSync(DEMO);
    const larger = Buffer.concat([Buffer.from('--boundary\r\nContent-Type: application/dicom\r\n\r\n'), file, Buffer.from('\r\n--boundary--')]);
    const part = larger.subarray(47, 47 + file.length);
    expect(part.byteOffset).toBeGreaterThan(0);
    expect((await pool.tensor(part, MANIFEST_IMAGE_SPEC, {})).source).toEqual(imageToTensor(readDicom(file), MANIFEST_IMAGE_SPEC).source);
  }, 30_000);
});
