/**
 * The native fast path (native-attributes.ts) against dcmjs: every sample file read both ways
 * must give the same instance attributes, pixel description and frame 0, or the same error.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TriageError } from '../../../src/domain/errors.ts';
import { checkDatasetStructure, datasetOffset } from '../../../src/dicom/structure.ts';
import { readDicom } from '../../../src/dicom/read.ts';
import { nativeAttributes, type VisitedElement } from '../../../src/dicom/native-attributes.ts';
import { imageFile, TS, type Element } from '../../harness/dicom-builder.ts';
import { FIXTURES } from '../../harness/pydicom-samples.ts';

const DEMO = path.resolve('test/fixtures/demo/dicom');
const samples = [
  ...readdirSync(FIXTURES).filter((f) => f.endsWith('.dcm')).map((f) => ({ name: `pydicom/${f}`, bytes: new Uint8Array(readFileSync(path.join(FIXTURES, f))) })),
  ...readdirSync(DEMO).filter((f) => f.endsWith('.dcm')).map((f) => ({ name: `demo/${f}`, bytes: new Uint8Array(readFileSync(path.join(DEMO, f))) })),
];

type Outcome = { ok: true; meta: unknown; ts: string; pixel: unknown; frame: number[] } | { ok: false; code: string; message: string };

function outcome(bytes: Uint8Array, viaDcmjs: boolean): Outcome {
  try {
    const image = readDicom(bytes, { viaDcmjs });
    return { ok: true, meta: image.meta, ts: image.transferSyntaxUID, pixel: image.pixel, frame: Array.from(image.frame(0)) };
  } catch (err) {
    if (!(err instanceof TriageError)) throw err;
    return { ok: false, code: err.code, message: err.message };
  }
}

/** Whether the fast path answers for these bytes (a native little-endian Explicit VR file). */
function fastPathAnswers(bytes: Uint8Array, explicit = true): boolean {
  const elements: VisitedElement[] = [];
  const data = bytes.subarray(datasetOffset(bytes));
  checkDatasetStructure(data, explicit, true, (tag, vr, offset, length) => void elements.push({ tag, vr, offset, length }));
  return nativeAttributes(data, elements) !== undefined;
}

describe('native attributes fast path', () => {
  it.each(samples.map((s) => [s.name, s.bytes] as const))('%s reads the same as through dcmjs', (_name, bytes) => {
    expect(outcome(bytes, false)).toEqual(outcome(bytes, true));
  });

  it('answers for the plain files (so the comparison above compares something)', () => {
    const answered = samples.filter((s) => {
      try {
        return fastPathAnswers(s.bytes);
      } catch {
        return false;
      }
    });
    expect(answered.map((s) => s.name)).toEqual(expect.arrayContaining(['demo/demo01.dcm', 'pydicom/CT_small.dcm', 'pydicom/MR_small.dcm']));
  });

  const base = { rows: 2, columns: 3, samples: [0, 10, 20, 30, 40, 50] };
  const cases: [string, Element[], boolean][] = [
    ['multi-valued strings, padding, person-name groups', [
      { tag: 0x00080008, vr: 'CS', value: ['ORIGINAL', 'PRIMARY ', ' AXIAL'] },
      { tag: 0x00080090, vr: 'PN', value: 'Doe^Jane=ideographic=phonetic' },
      { tag: 0x00200013, vr: 'IS', value: ' 7 ' },
      { tag: 0x00281050, vr: 'DS', value: ['40', '400'] },
      { tag: 0x00281051, vr: 'DS', value: ['80', '1500'] },
    ], true],
    ['an empty value', [{ tag: 0x00080050, vr: 'SH', value: '' }], true],
    ['a Latin-1 name (left to dcmjs)', [
      { tag: 0x00080005, vr: 'CS', value: 'ISO_IR 100' },
      { tag: 0x00100010, vr: 'PN', value: 'M\u00fcller^J\u00fcrgen' },
    ], false],
    ['Rows with an unexpected VR (left to dcmjs)', [{ tag: 0x00200013, vr: 'UN', value: new TextEncoder().encode('7 ') }], false],
    ['an empty US value (dcmjs reads 0; left to it)', [{ tag: 0x00280101, vr: 'US', value: new Uint8Array(0) }], false],
    ['a multi-valued character set (left to dcmjs)', [{ tag: 0x00080005, vr: 'CS', value: ['', 'ISO 2022 IR 87'] }], false],
    ['an ASCII-compatible character set', [{ tag: 0x00080005, vr: 'CS', value: 'ISO_IR 192' }], true],
    ['a DS with a decimal comma (left to dcmjs)', [{ tag: 0x00281053, vr: 'DS', value: '0,5' }], false],
    ['a UID with a foreign character (left to dcmjs)', [{ tag: 0x0020000e, vr: 'UI', value: '1.2.3a' }], false],
    ['a multi-valued person name (left to dcmjs)', [{ tag: 0x00100010, vr: 'PN', value: ['', 'Doe'] }], false],
  ];
  it.each(cases)('%s', (_name, extra, fast) => {
    const file = imageFile({ ...base, extra });
    expect(fastPathAnswers(file)).toBe(fast);
    expect(outcome(file, false)).toEqual(outcome(file, true));
  });

  it('reads Implicit VR Little Endian with the VRs of its own table', () => {
    const file = imageFile({ ...base, transferSyntax: TS.implicitLE, rescale: [2, -1024], window: [40, 400] });
    expect(fastPathAnswers(file, false)).toBe(true);
    expect(outcome(file, false)).toEqual(outcome(file, true));
  });

  it('leaves palette colour to dcmjs', () => {
    const file = imageFile({ ...base, photometric: 'PALETTE COLOR', bitsAllocated: 8 });
    expect(fastPathAnswers(file)).toBe(false);
  });
});
