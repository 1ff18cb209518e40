import { STUDY_KEYWORDS, type InstanceMeta, type StudyMeta } from '../../domain/types.ts';

/**
 * The Patient and General Study modules (PS3.3 C.7.1.1, C.7.2.1) copied from the source study:
 * every object we add to a study (the SR, the rejection note) must name the same patient and
 * study. Type 2 attributes are present even when empty; type 3 ones only with a value.
 */
export function patientAndStudy(study: StudyMeta): Record<string, unknown> {
  return {
    PatientName: study.PatientName ?? '',
    PatientID: study.PatientID ?? '',
    ...(study.IssuerOfPatientID ? { IssuerOfPatientID: study.IssuerOfPatientID } : {}),
    PatientBirthDate: study.PatientBirthDate ?? '',
    PatientSex: study.PatientSex ?? '',
    StudyInstanceUID: study.StudyInstanceUID,
    StudyDate: study.StudyDate ?? '',
    StudyTime: study.StudyTime ?? '',
    ReferringPhysicianName: study.ReferringPhysicianName ?? '',
    StudyID: study.StudyID ?? '',
    AccessionNumber: study.AccessionNumber ?? '',
    ...(study.StudyDescription ? { StudyDescription: study.StudyDescription } : {}),
  };
}

/** DICOM DA and TM as PS3.5 defines them; older files carry e.g. "1997.04.24" (ACR-NEMA). */
const VALID: Partial<Record<(typeof STUDY_KEYWORDS)[number], RegExp>> = {
  StudyDate: /^\d{8}$/,
  PatientBirthDate: /^\d{8}$/,
  StudyTime: /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/,
};

/**
 * The study-level attributes the SR copies. A date or time that is not valid DICOM is left out
 * rather than copied: the SR we write must itself be valid, whatever the source carried.
 */
export function studyMetaOf(instance: InstanceMeta): StudyMeta {
  const meta: StudyMeta = { StudyInstanceUID: instance.StudyInstanceUID };
  for (const key of STUDY_KEYWORDS) {
    const value = instance[key];
    if (value === undefined) continue;
    const rule = VALID[key];
    if (rule && !rule.test(String(value).trim())) continue;
    meta[key] = value;
  }
  return meta;
}
