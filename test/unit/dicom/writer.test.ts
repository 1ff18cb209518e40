/**
 * The direct writer (src/dicom/writer.ts) must give dcmjs's bytes exactly:
 * every SR and rejection note we have ever written was dcmjs's, and a result re-encoded after a
 * crash must be the same object byte for byte.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Unsupported, writePart10Direct } from '../../../src/dicom/writer.ts';
import { metaFor, readPart10, writePart10, writePart10WithDcmjs, type NaturalDataset } from '../../../src/dicom/part10.ts';
import { encodeRejectionNote } from '../../../src/pipeline/encode/retraction.ts';
import { encodeSr } from '../../../src/pipeline/encode/sr.ts';
import { STUDY_UID, UID_ROOT, inference, srInput, study } from '../../harness/encode-fixtures.ts';

const sameAsDcmjs = (dataset: NaturalDataset): void => {
  const meta = metaFor(String(dataset['SOPClassUID']), String(dataset['SOPInstanceUID']));
  const direct = Buffer.from(writePart10Direct(meta, dataset));
  const dcmjs = Buffer.from(writePart10WithDcmjs(meta, dataset));
  expect(direct.length).toBe(dcmjs.length);
  expect(direct.equals(dcmjs)).toBe(true);
};

describe('direct DICOM writer', () => {
  it('writes our SRs byte for byte as dcmjs does: findings with and without regions, none positive, a predecessor, non-ASCII names', () => {
    const cases = [
      srInput(),
      srInput({ inference: { ...inference, findings: inference.findings.map((f) => ({ ...f, positive: false, probability: 0.01 })) } }),
      srInput({ predecessor: { studyInstanceUID: STUDY_UID, seriesInstanceUID: `${UID_ROOT}.7.1`, sopInstanceUID: `${UID_ROOT}.7.2` } }),
      srInput({ study: { ...study, PatientName: { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' } as never, StudyDescription: 'Thorax p.a. – Übersicht' } }),
    ];
    for (const input of cases) sameAsDcmjs(encodeSr(input).dataset);
  });

  it('writes the IOCM rejection note byte for byte as dcmjs does', () => {
    const sr = encodeSr(srInput());
    const note = encodeRejectionNote({
      uidRoot: UID_ROOT,
      study,
      rejected: [{ seriesInstanceUID: sr.seriesInstanceUID, sopInstanceUID: sr.sopInstanceUID }],
      requestedAt: '2024-05-02T08:09:10.500Z',
      software: { name: 'pacs-triage', version: '0.1.0' },
    });
    sameAsDcmjs(note.dataset);
  });

  it('every value kind it takes: numbers in DS/IS, US/UL/SS/SL/FL/FD lists, odd lengths padded (UI with NUL), empty values, nested sequences, PN lists', () => {
    sameAsDcmjs({
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.7',
      SOPInstanceUID: '1.2.3.45', // odd length: NUL padded
      SpecificCharacterSet: 'ISO_IR 192',
      PatientName: ['Doe^John', '', { Alphabetic: 'Roe^Jane' }],
      PatientID: 'X1Y', // odd: space padded
      ImageType: ['ORIGINAL', 'PRIMARY'],
      PixelSpacing: [0.139, 0.1390000001],
      SliceThickness: 2.5,
      InstanceNumber: 7,
      Rows: 512,
      Columns: [1024],
      TagAngleSecondAxis: -5,
      ReferencePixelX0: [-70000, 3],
      CenterOfCircularOutline: [0.1, -2.5e300],
      ReferencedFrameNumber: ['1', '2', '3'],
      RescaleIntercept: '-1024',
      StudyDescription: '',
      SeriesDescription: [],
      ContentLabel: 'ÄÖÜ',
      GraphicData: [1.5, 2.25, 3, 4],
      SimpleFrameList: [1, 2, 70000],
      FrameTimeVector: [0.5, 1e-7, 123456.789],
      ContentSequence: [
        { RelationshipType: 'CONTAINS', ValueType: 'TEXT', TextValue: 'odd', ContentSequence: [{ ValueType: 'NUM', MeasuredValueSequence: [{ NumericValue: 12.5 }] }] },
        {},
      ],
    });
  });

  it('hands anything else to dcmjs: pixel data with a _vrMap, an unknown keyword, a value dcmjs would truncate, null, a US-or-SS element', () => {
    const image = readPart10(readFileSync('test/fixtures/demo/dicom/demo06.dcm'));
    const meta = metaFor(String(image['SOPClassUID']), String(image['SOPInstanceUID']));
    expect(() => writePart10Direct(meta, image)).toThrow(Unsupported);
    expect(Buffer.from(writePart10(image)).equals(Buffer.from(writePart10WithDcmjs(meta, image)))).toBe(true);
    const base = { SOPClassUID: '1.2.3', SOPInstanceUID: '1.2.3.4' };
    const baseMeta = metaFor(base.SOPClassUID, base.SOPInstanceUID);
    for (const odd of [{ ...base, NotAKeyword: 'x' }, { ...base, PatientSex: 'MORE THAN SIXTEEN CHARS' }, { ...base, PatientID: null }, { ...base, SmallestImagePixelValue: 3 }]) {
      expect(() => writePart10Direct(baseMeta, odd)).toThrow(Unsupported);
      expect(Buffer.from(writePart10(odd)).equals(Buffer.from(writePart10WithDcmjs(baseMeta, odd)))).toBe(true);
    }
  });
});
