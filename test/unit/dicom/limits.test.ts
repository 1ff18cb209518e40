import { describe, expect, it } from 'vitest';
import { readDicom, readDicomHeader } from '../../../src/dicom/index.ts';
import { TriageError } from '../../../src/domain/errors.ts';
import { deepNesting, deflateBomb, hugeDeclaredImage, hugeElementLength } from '../../harness/hostile-dicom.ts';

const STUDY = '1.2.826.0.1.3680043.10.999.77';

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    return err instanceof TriageError ? err.code : `not a TriageError: ${String(err)}`;
  }
  return 'no error';
}

describe('the one reader refuses crafted files before allocating for them', () => {
  it('20,000 nested sequences: DICOM_TOO_DEEP from the header read (the folder scan) and the full read, within a second', () => {
    const file = deepNesting(STUDY, 20_000);
    const start = performance.now();
    expect(codeOf(() => readDicomHeader(file))).toBe('DICOM_TOO_DEEP');
    expect(codeOf(() => readDicom(file))).toBe('DICOM_TOO_DEEP');
    expect(performance.now() - start).toBeLessThan(1_000);
  });

  it('a deflated data set inflating past the limit: DICOM_TOO_LARGE, no matter how small the file', () => {
    const file = deflateBomb(STUDY, 64 * 1024 * 1024);
    expect(file.byteLength).toBeLessThan(200_000);
    expect(codeOf(() => readDicomHeader(file, { limits: { maxInflatedBytes: 8 * 1024 * 1024 } }))).toBe('DICOM_TOO_LARGE');
  });

  it('declared 30000 × 30000 (native and RLE) and 100,000 frames: DICOM_TOO_LARGE before any pixel buffer', () => {
    expect(codeOf(() => readDicom(hugeDeclaredImage(STUDY, { rows: 30_000, columns: 30_000, syntax: 'native' }), { limits: { maxPixelsPerFrame: 8192 * 8192 } }))).toBe('DICOM_TOO_LARGE');
    expect(codeOf(() => readDicom(hugeDeclaredImage(STUDY, { rows: 30_000, columns: 30_000, syntax: 'rle' }), { limits: { maxPixelsPerFrame: 8192 * 8192 } }))).toBe('DICOM_TOO_LARGE');
    expect(codeOf(() => readDicom(hugeDeclaredImage(STUDY, { rows: 512, columns: 512, frames: 100_000, syntax: 'rle' })))).toBe('DICOM_TOO_LARGE');
  });

  it('an element declaring 0xFFFFFFF0 bytes: DICOM_UNREADABLE (truncated), read as a header or whole', () => {
    const file = hugeElementLength(STUDY);
    expect(codeOf(() => readDicomHeader(file))).toBe('DICOM_UNREADABLE');
    expect(codeOf(() => readDicom(file))).toBe('DICOM_UNREADABLE');
  });

  it('a file over limits.dicom.maxFileBytes: DICOM_TOO_LARGE', () => {
    expect(codeOf(() => readDicomHeader(deepNesting(STUDY, 1), { limits: { maxFileBytes: 100 } }))).toBe('DICOM_TOO_LARGE');
  });
});
