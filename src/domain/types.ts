/**
 * The data that travels through the pipeline. Each stage takes one of these and returns the
 * next; what a later stage needs travels in the job, never fetched back from an earlier stage.
 */

/** A study the ingest saw. */
export interface StudyRef {
  studyInstanceUID: string;
  /** Orthanc's own id when the source is Orthanc. */
  orthancId?: string;
  source: 'orthanc-changes' | 'dicomweb-qido' | 'webhook' | 'folder' | 'cli';
}

/**
 * DICOM attributes we use, keyword-named (the adapter turns DICOM JSON hex tags into keywords).
 * Values are the first value of the attribute; absent attributes are undefined.
 */
export interface InstanceMeta {
  StudyInstanceUID: string;
  SeriesInstanceUID: string;
  SOPInstanceUID: string;
  SOPClassUID: string;
  Modality?: string;
  BodyPartExamined?: string;
  SeriesDescription?: string;
  /** The acquisition protocol's name (0018,1030): where many archives name the body part when BodyPartExamined is empty. */
  ProtocolName?: string;
  /** The Requested Procedure Description (0032,1060), copied from the order: "XR Chest PA", "Thorax p.a.". */
  RequestedProcedureDescription?: string;
  ViewPosition?: string;
  ImageType?: string[];
  SeriesNumber?: number;
  InstanceNumber?: number;
  PatientID?: string;
  IssuerOfPatientID?: string;
  PatientName?: string;
  PatientBirthDate?: string;
  PatientSex?: string;
  PatientAge?: string;
  AccessionNumber?: string;
  StudyDate?: string;
  StudyTime?: string;
  StudyDescription?: string;
  StudyID?: string;
  ReferringPhysicianName?: string;
  /** Absent for single-frame images; the model reads frame 1 of a multi-frame one. */
  NumberOfFrames?: number;
  Rows?: number;
  Columns?: number;
  Manufacturer?: string;
}

/** The study-level attributes the SR copies (Patient and General Study modules). */
export const STUDY_KEYWORDS = [
  'PatientID', 'IssuerOfPatientID', 'PatientName', 'PatientBirthDate', 'PatientSex', 'AccessionNumber', 'StudyDate', 'StudyTime',
  'StudyDescription', 'StudyID', 'ReferringPhysicianName',
] as const;

export type StudyMeta = Pick<InstanceMeta, 'StudyInstanceUID' | (typeof STUDY_KEYWORDS)[number]>;

/** A FHIR resource as JSON. Kept loose on purpose: the FHIR adapter validates what it reads. */
export interface FhirResource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string };
  [key: string]: unknown;
}

/** What the FHIR context stage found for a study. */
export interface ClinicalContext {
  /** `Patient/<id>` when exactly one patient matched. */
  patientRef?: string;
  /** Why there is no patient (not found, ambiguous, server unreachable in shadow…). */
  patientProblem?: { code: 'PATIENT_NOT_FOUND' | 'PATIENT_AMBIGUOUS'; message: string };
  /** The resources that fed the text, in the order the manifest rendered them. */
  resources: FhirResource[];
}

export interface Finding {
  /** The model's finding code (manifest findings[].code). */
  code: string;
  display: string;
  probability: number;
  threshold: number;
  positive: boolean;
  /** Where the saliency map points on the source image, in source pixel coordinates (column, row). */
  region?: { sopInstanceUID: string; x0: number; y0: number; x1: number; y1: number };
}

export type Priority = 'stat' | 'asap' | 'urgent' | 'routine';

/** One model run on one study. */
export interface InferenceResult {
  modelId: string;
  modelVersion: string;
  deviceUid: string;
  executionProvider: string;
  /** The instance the image input came from. */
  sourceInstance: InstanceMeta;
  findings: Finding[];
  /** The text the model read (kept in the store only; never logged). */
  text: string;
}
