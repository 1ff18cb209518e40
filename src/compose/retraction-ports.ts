import type { DicomWebClient } from '../adapters/dicomweb/client.ts';
import type { FhirClient } from '../adapters/fhir/client.ts';
import { metadataRefusal, PRIORITY_METADATA, RESULT_METADATA, type OrthancClient } from '../adapters/orthanc/client.ts';
import type { FhirResource } from '../domain/types.ts';
import { RESULT_SYSTEM } from '../pipeline/encode/fhir.ts';
import type { RetractionPorts } from '../pipeline/ports.ts';

/** The value our priority metadata takes on Orthanc once the result is retracted. */
export const RETRACTED_PRIORITY = 'retracted';

/** Retraction ports on the real servers: DICOMweb for the study and the rejection note, Orthanc metadata, FHIR. */
export function serverRetractionPorts(servers: { dicomweb: DicomWebClient; orthanc: OrthancClient | undefined; fhir: FhirClient | undefined }): RetractionPorts {
  const { dicomweb, orthanc, fhir } = servers;
  return {
    studyInstances: (uid) => dicomweb.studyInstances(uid),
    studyExists: async (uid) => (await dicomweb.searchStudies({ StudyInstanceUID: uid }, { limit: 1, offset: 0 })).length > 0,
    storeRejectionNote: (uid, part10) => dicomweb.store(uid, [part10]),
    ...(orthanc
      ? {
          markRetracted: async (uid, detail) => {
            const id = await orthanc.findStudy(uid);
            if (id === undefined) return; // deleted meanwhile: nothing left to mark
            try {
              // The priority itself says "retracted", so anything that sorts or routes on it stops at once.
              await orthanc.setStudyMetadata(id, PRIORITY_METADATA, RETRACTED_PRIORITY);
              await orthanc.setStudyMetadata(id, RESULT_METADATA, JSON.stringify({ retracted: detail.srs, rejectionNote: detail.rejectionNote ?? null, cause: detail.cause }));
            } catch (err) {
              throw metadataRefusal(err);
            }
          },
        }
      : {}),
    ...(fhir ? { fhir: fhirRiskAssessments(fhir) } : {}),
  };
}

/** Our RiskAssessments on the FHIR server (found by result key), for retractions and verifications. */
export function fhirRiskAssessments(fhir: FhirClient): NonNullable<RetractionPorts['fhir']> {
  return {
    findRiskAssessments: (resultKey: string) => fhir.search('RiskAssessment', { identifier: `${RESULT_SYSTEM}|${resultKey}` }),
    update: (resource: FhirResource) => fhir.update(resource),
    transaction: (bundle: FhirResource) => fhir.transaction(bundle),
  };
}
