/**
 * What identifies a study to a radiologist on the worklist — accession number, description, date
 * and time, modality, the patient's age and sex — and, only where a site turns it on, the
 * patient's name and ID. Pure: values come from the metadata the pipeline already fetched.
 */

/** The worklist's study fields, as kept with a result (strings as DICOM has them, trimmed). */
export interface StudyFields {
  accessionNumber?: string;
  studyDescription?: string;
  /** DICOM DA (YYYYMMDD) and TM (HHMMSS, fraction dropped): the site's local time, without a zone. */
  studyDate?: string;
  studyTime?: string;
  /** DICOM AS: 045Y, 006M, 003W, 010D — PatientAge, or counted from the birth date to the study date. */
  patientAge?: string;
  /** M, F or O. */
  patientSex?: string;
  /** Only when api.showPatientIdentity is on: kept nowhere otherwise. */
  patientName?: string;
  patientId?: string;
}

/** The source attributes the fields come from (a subset of InstanceMeta). */
export interface StudyAttributes {
  AccessionNumber?: string;
  StudyDescription?: string;
  StudyDate?: string;
  StudyTime?: string;
  PatientAge?: string;
  PatientBirthDate?: string;
  PatientSex?: string;
  PatientName?: string;
  PatientID?: string;
}

const AGE = /^(\d{3})([DWMY])$/;
const DAYS_PER = { D: 1, W: 7, M: 30.4375, Y: 365.25 } as const;

/** An AS age in whole days (what the worklist sorts and filters on); undefined when it is not valid AS. */
export function ageInDays(age: string | undefined): number | undefined {
  const m = age === undefined ? null : AGE.exec(age.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * DAYS_PER[m[2] as keyof typeof DAYS_PER]);
}

function dateOf(da: string | undefined): Date | undefined {
  if (da === undefined || !/^\d{8}$/.test(da)) return undefined;
  const d = new Date(Date.UTC(Number(da.slice(0, 4)), Number(da.slice(4, 6)) - 1, Number(da.slice(6, 8))));
  return Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10).replace(/-/g, '') !== da ? undefined : d;
}

/** The age at the study as AS (years from 2, months under 2, days under a month), from two DA dates. */
export function ageAt(birthDate: string | undefined, studyDate: string | undefined): string | undefined {
  const birth = dateOf(birthDate);
  const at = dateOf(studyDate);
  if (!birth || !at || at < birth) return undefined;
  let months = (at.getUTCFullYear() - birth.getUTCFullYear()) * 12 + at.getUTCMonth() - birth.getUTCMonth();
  if (at.getUTCDate() < birth.getUTCDate()) months--;
  const pad = (n: number): string => String(Math.min(n, 999)).padStart(3, '0');
  if (months >= 24) return `${pad(Math.floor(months / 12))}Y`;
  if (months >= 1) return `${pad(months)}M`;
  return `${pad(Math.round((at.getTime() - birth.getTime()) / 86_400_000))}D`;
}

const text = (v: string | undefined, max: number): string | undefined => {
  // DICOM pads with spaces; a value longer than its VR allows is cut, not refused (the worklist only shows it).
  const t = v?.replace(/\0/g, '').trim();
  return t ? t.slice(0, max) : undefined;
};

/**
 * The fields kept with a result. The patient's name and ID only with `identity` (api.showPatientIdentity):
 * off, they are not kept at all, so neither the store nor a backup holds them.
 */
export function studyFieldsOf(a: StudyAttributes, identity: boolean): StudyFields {
  const studyDate = dateOf(a.StudyDate?.trim()) ? a.StudyDate!.trim() : undefined;
  const time = /^\d{2}(\d{2}(\d{2})?)?/.exec(a.StudyTime?.trim() ?? '')?.[0];
  const declared = text(a.PatientAge, 4);
  const patientAge = declared && AGE.test(declared) ? declared : ageAt(a.PatientBirthDate?.trim(), studyDate);
  const sex = text(a.PatientSex, 1)?.toUpperCase();
  const fields: StudyFields = {
    accessionNumber: text(a.AccessionNumber, 16),
    studyDescription: text(a.StudyDescription, 64),
    studyDate,
    studyTime: time ? time.padEnd(6, '0') : undefined,
    patientAge,
    patientSex: sex === 'M' || sex === 'F' || sex === 'O' ? sex : undefined,
    ...(identity ? { patientName: text(a.PatientName, 324), patientId: text(a.PatientID, 64) } : {}),
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as StudyFields;
}

/** The keys that name the patient: dropped from every answer while api.showPatientIdentity is off. */
export const IDENTITY_KEYS = ['patientName', 'patientId'] as const;

/** The fields without the patient's name and ID. */
export function withoutIdentity<T extends StudyFields>(fields: T): Omit<T, (typeof IDENTITY_KEYS)[number]> {
  const { patientName: _name, patientId: _id, ...rest } = fields;
  return rest;
}
