import { describe, expect, it } from 'vitest';
import { ageAt, ageInDays, studyFieldsOf } from '../../../src/domain/study-fields.ts';
import { viewerTemplateProblem, viewerUrl } from '../../../src/domain/viewer-url.ts';

describe('study fields', () => {
  it('keeps the study attributes trimmed, the time as HHMMSS, and the name and ID only with identity', () => {
    const a = {
      AccessionNumber: ' A1 ',
      StudyDescription: 'XR Chest PA ',
      StudyDate: '20260302',
      StudyTime: '0815',
      PatientAge: '067Y',
      PatientSex: 'f',
      PatientName: 'DOE^JANE',
      PatientID: 'PID-1',
    };
    expect(studyFieldsOf(a, false)).toEqual({ accessionNumber: 'A1', studyDescription: 'XR Chest PA', studyDate: '20260302', studyTime: '081500', patientAge: '067Y', patientSex: 'F' });
    expect(studyFieldsOf(a, true)).toMatchObject({ patientName: 'DOE^JANE', patientId: 'PID-1' });
    expect(studyFieldsOf({ StudyDate: '2026.03.02', StudyTime: 'noon', PatientSex: 'X', PatientAge: '67' }, true)).toEqual({});
  });

  it('counts the age from the birth and study dates when PatientAge is absent (years from 2, months, days)', () => {
    expect(studyFieldsOf({ PatientBirthDate: '19590303', StudyDate: '20260302' }, false).patientAge).toBe('066Y');
    expect(ageAt('19590302', '20260302')).toBe('067Y');
    expect(ageAt('20250102', '20260301')).toBe('013M');
    expect(ageAt('20260220', '20260302')).toBe('010D');
    expect(ageAt('20260303', '20260302')).toBeUndefined();
    expect(ageAt('20260230', '20260302')).toBeUndefined();
  });

  it('an AS age in days, for sorting and filtering', () => {
    expect(ageInDays('045Y')).toBe(16436);
    expect(ageInDays('006M')).toBe(182);
    expect(ageInDays('002W')).toBe(14);
    expect(ageInDays('45Y')).toBeUndefined();
  });
});

describe('viewer URL template', () => {
  it('accepts http(s) templates with {StudyInstanceUID}; fills the UID in', () => {
    const ohif = 'https://viewer.example.org/viewer?StudyInstanceUIDs={StudyInstanceUID}';
    expect(viewerTemplateProblem(ohif)).toBeUndefined();
    expect(viewerTemplateProblem('http://orthanc:8042/stone-webviewer/index.html?study={StudyInstanceUID}')).toBeUndefined();
    expect(viewerUrl(ohif, '1.2.3')).toBe('https://viewer.example.org/viewer?StudyInstanceUIDs=1.2.3');
  });

  it('refuses what would not be a link to a viewer', () => {
    expect(viewerTemplateProblem('https://viewer.example.org/')).toBe('must contain {StudyInstanceUID}');
    expect(viewerTemplateProblem('https://v/{StudyInstanceUID}?p={PatientID}')).toBe('has an unknown placeholder {PatientID} (only {StudyInstanceUID})');
    expect(viewerTemplateProblem('javascript:alert({StudyInstanceUID})')).toBe('must be an http or https URL (not javascript:)');
    expect(viewerTemplateProblem('/viewer/{StudyInstanceUID}')).toMatch(/^must be an absolute URL/);
    expect(viewerTemplateProblem('https://u:p@v/{StudyInstanceUID}')).toBe('must not carry a user name or password');
  });
});
