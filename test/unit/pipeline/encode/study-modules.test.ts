import { describe, expect, it } from 'vitest';
import { studyMetaOf } from '../../../../src/pipeline/encode/study-modules.ts';

describe('studyMetaOf (regression: ExplVR_BigEnd.dcm\'s StudyDate "1997.04.24" made the SR writer fail)', () => {
  it('leaves out dates and times that are not valid DICOM DA/TM, keeps the rest', () => {
    const meta = studyMetaOf({
      StudyInstanceUID: '1.2',
      SeriesInstanceUID: '1.2.3',
      SOPInstanceUID: '1.2.3.4',
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.1',
      StudyDate: '1997.04.24',
      PatientBirthDate: '19500101',
      StudyTime: '101010.123',
      AccessionNumber: 'A1',
    });
    expect(meta).toEqual({ StudyInstanceUID: '1.2', PatientBirthDate: '19500101', StudyTime: '101010.123', AccessionNumber: 'A1' });
  });
});
