import type { DicomWebClient } from './dicomweb/client.ts';
import type { FhirClient } from './fhir/client.ts';
import { orthancInstanceId, orthancStudyId, PRIORITY_METADATA, RESULT_METADATA, metadataRefusal, type OrthancClient } from './orthanc/client.ts';
import type { FhirResource, InstanceMeta } from '../domain/types.ts';
import type { StoredResult } from '../domain/records.ts';
import { TriageError } from '../domain/errors.ts';

/** The pipeline's StudySource on any DICOMweb PACS. */
export class PacsStudySource {
  constructor(private readonly dicomweb: DicomWebClient) {}

  instances(studyInstanceUID: string): Promise<InstanceMeta[]> {
    return this.dicomweb.studyInstances(studyInstanceUID);
  }

  retrieve(instance: InstanceMeta): Promise<Uint8Array> {
    return this.dicomweb.retrieveInstance(instance.StudyInstanceUID, instance.SeriesInstanceUID, instance.SOPInstanceUID);
  }
}

/** The pipeline's ResultSink on the servers: the PACS (STOW-RS, and Orthanc metadata when it is an Orthanc) and the FHIR server. */
export class ServerSink {
  constructor(
    private readonly dicomweb: DicomWebClient,
    private readonly orthanc: OrthancClient | undefined,
    private readonly fhir: FhirClient | undefined,
    /** Told Orthanc's id of each SR stored (so that its NewInstance needs no lookup: ingest.stableAgeS). */
    private readonly onSrStored?: (orthancInstanceId: string) => void,
  ) {}

  async storeSr(studyInstanceUID: string, part10: Uint8Array, sr?: { patientId: string; seriesInstanceUID: string; sopInstanceUID: string }): Promise<void> {
    await this.dicomweb.store(studyInstanceUID, [part10]);
    if (this.orthanc && sr && this.onSrStored) this.onSrStored(orthancInstanceId(sr.patientId, studyInstanceUID, sr.seriesInstanceUID, sr.sopInstanceUID));
  }

  async writeFhir(_studyInstanceUID: string, bundle: FhirResource): Promise<string | undefined> {
    if (!this.fhir) throw new TriageError('CONFIG_INVALID', 'a FHIR result was produced but no FHIR server is configured');
    const answer = (await this.fhir.transaction(bundle)) as { entry?: { response?: { location?: string } }[] };
    const bundleEntries = (bundle['entry'] as { resource?: FhirResource }[] | undefined) ?? [];
    const index = bundleEntries.findIndex((e) => e.resource?.resourceType === 'RiskAssessment');
    const location = answer.entry?.[index]?.response?.location;
    // "RiskAssessment/<id>/_history/<v>" → "RiskAssessment/<id>"
    return location?.split('/').slice(0, 2).join('/');
  }

  async writeOrderPriority(order: FhirResource, priority: StoredResult['priority']): Promise<string | undefined> {
    if (!this.fhir) throw new TriageError('CONFIG_INVALID', 'fhir.writeOrderPriority is set but no FHIR server is configured');
    const updated = await this.fhir.update({ ...order, priority });
    return updated.meta?.versionId;
  }

  async setPriority(study: InstanceMeta, result: StoredResult): Promise<void> {
    if (!this.orthanc) return; // a generic DICOMweb PACS has no place for it; the API and worklist still show it
    const orthanc = this.orthanc;
    const put = (id: string): Promise<unknown> =>
      // Two attributes, independent: side by side.
      Promise.all([
        orthanc.setStudyMetadata(id, PRIORITY_METADATA, result.priority),
        orthanc.setStudyMetadata(id, RESULT_METADATA, JSON.stringify({ sr: result.srSopInstanceUID, model: `${result.modelId}@${result.modelVersion}`, priority: result.priority })),
      ]);
    // Orthanc's id of a study is a hash of its PatientID and StudyInstanceUID: computed here, it
    // saves a /tools/lookup per study; a 404 (another PatientID than we read, or the study gone)
    // falls back to the lookup.
    if (study.PatientID !== undefined) {
      try {
        await put(orthancStudyId(study.PatientID, study.StudyInstanceUID));
        return;
      } catch (err) {
        if (!(err instanceof TriageError && err.status === 404)) throw err;
      }
    }
    const id = await orthanc.findStudy(study.StudyInstanceUID);
    if (id === undefined) throw new TriageError('NOT_FOUND', `study ${study.StudyInstanceUID} is no longer in the PACS`);
    // The study is there (Orthanc just named it): a 404 now is about the metadata's name.
    await put(id).catch((err: unknown) => {
      throw metadataRefusal(err);
    });
  }
}
