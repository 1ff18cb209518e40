/** Shared fixture input for the encoder tests: one CXR study, one source image, four findings. */
import type { FindingsMappings } from '../../src/domain/codes.ts';
import { loadFindingsMappings } from '../../src/config/findings.ts';
import type { InferenceResult, InstanceMeta, StudyMeta } from '../../src/domain/types.ts';
import { resultKey } from '../../src/domain/uids.ts';
import type { SrEncodeInput } from '../../src/pipeline/encode/sr.ts';

export const UID_ROOT = '1.2.826.0.1.3680043.10.9999';
export const STUDY_UID = '1.2.826.0.1.3680043.10.9999.1.1';

export const study: StudyMeta = {
  StudyInstanceUID: STUDY_UID,
  PatientID: 'PT-0001',
  IssuerOfPatientID: 'HOSP',
  PatientName: 'Müller^Jürgen',
  PatientBirthDate: '19600102',
  PatientSex: 'M',
  AccessionNumber: 'ACC-42',
  StudyDate: '20240501',
  StudyTime: '101112',
  StudyDescription: 'XR CHEST PA',
  StudyID: '42',
  ReferringPhysicianName: 'Doe^John',
};

export const sourceInstance: InstanceMeta = {
  StudyInstanceUID: STUDY_UID,
  SeriesInstanceUID: '1.2.826.0.1.3680043.10.9999.1.2',
  SOPInstanceUID: '1.2.826.0.1.3680043.10.9999.1.3',
  SOPClassUID: '1.2.840.10008.5.1.4.1.1.1.1', // Digital X-Ray Image Storage - For Presentation
  Modality: 'DX',
  BodyPartExamined: 'CHEST',
  ViewPosition: 'PA',
  Rows: 2048,
  Columns: 1536,
};

export const inference: InferenceResult = {
  modelId: 'pacs-triage-cxr-ref',
  modelVersion: '1.0.0',
  deviceUid: '2.25.329800735698586629295641978511506172918',
  executionProvider: 'cpu',
  sourceInstance,
  text: 'indication: dyspnoea',
  findings: [
    {
      code: 'pneumothorax',
      display: 'Pneumothorax',
      probability: 0.912345,
      threshold: 0.5,
      positive: true,
      region: { sopInstanceUID: sourceInstance.SOPInstanceUID, x0: 100.5, y0: 200.25, x1: 640, y1: 900.75 },
    },
    { code: 'pleural_effusion', display: 'Pleural effusion', probability: 0.31, threshold: 0.4, positive: false },
    { code: 'consolidation', display: 'Consolidation', probability: 0.02, threshold: 0.5, positive: false },
    { code: 'lung_nodule', display: 'Lung nodule', probability: 0.999, threshold: 0.6, positive: true },
  ],
};

export const model = { name: 'pacs-triage reference CXR triage model', manufacturer: 'pacs-triage project' };
export const PRODUCED_AT = '2024-05-01T10:20:30.456Z';

export const fhirResources = [
  { ref: 'DiagnosticReport/dr-1', versionId: '3' },
  { ref: 'Observation/spo2-1', versionId: '1' },
];

let mappingsCache: FindingsMappings | undefined;
export function mappings(): FindingsMappings {
  mappingsCache ??= loadFindingsMappings();
  return mappingsCache;
}

export function keyFor(inf: Pick<InferenceResult, 'modelId' | 'modelVersion'> = inference): string {
  return resultKey({
    studyInstanceUID: STUDY_UID,
    sourceSopInstanceUIDs: [sourceInstance.SOPInstanceUID],
    fhirResources,
    modelId: inf.modelId,
    modelVersion: inf.modelVersion,
    mappingsVersion: mappings().version,
  });
}

export function srInput(overrides: Partial<SrEncodeInput> = {}): SrEncodeInput {
  return {
    uidRoot: UID_ROOT,
    resultKey: keyFor(),
    study,
    inference,
    model,
    mappings: mappings(),
    producedAt: PRODUCED_AT,
    software: { name: 'pacs-triage', version: '0.1.0' },
    ...overrides,
  };
}
