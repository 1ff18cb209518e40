import type { StudyMeta } from '../../domain/types.ts';

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
