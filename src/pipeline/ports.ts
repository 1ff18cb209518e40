/**
 * The pipeline's ports: what its stages need from the outside, declared here and implemented
 * by adapters (structurally: adapters never import the pipeline). The composition root
 * (src/compose/) decides which adapter fills which port.
 */
import type { Logger } from 'pino';
import type { Mappings } from '../config/mappings.ts';
import type { Manifest } from '../config/manifest.ts';
import type { FhirResource, InstanceMeta, Priority } from '../domain/types.ts';
import type { Retraction, StoredResult } from '../domain/records.ts';
import type { AuditLog, JobQueue, ResultStore } from '../state/ports.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { DicomLimits } from '../dicom/limits.ts';
import type { ImageSpec, TensorResult } from './preprocess/image-tensor.ts';
import type { ModelInput, ModelOutput } from '../adapters/model/run.ts';
import type { TextEncoding } from '../adapters/model/tokenizer.ts';
import type { WriteWarnings } from './writeback/optional-writes.ts';

/** Where a study's instances come from: the PACS (QIDO + WADO-RS), a watched folder, or files given to `analyze`. */
export interface StudySource {
  instances(studyInstanceUID: string): Promise<InstanceMeta[]>;
  retrieve(instance: InstanceMeta): Promise<Uint8Array>;
}

/** The UIDs of an SR just stored, and the PatientID it carries. */
export interface StoredSr {
  patientId: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
}

/** Where results go: the PACS and the FHIR server, or a folder. */
export interface ResultSink {
  /** `sr` names the SR (for a PACS that can tell its own id of the instance from them). */
  storeSr(studyInstanceUID: string, part10: Uint8Array, sr?: StoredSr): Promise<void>;
  /** Writes the transaction Bundle; returns the RiskAssessment's reference when the server says. */
  writeFhir(studyInstanceUID: string, bundle: FhirResource): Promise<string | undefined>;
  setPriority(study: InstanceMeta, result: StoredResult): Promise<void>;
  /** Writes the priority to the order; returns the order's new versionId. Absent: the sink cannot. */
  writeOrderPriority?(order: FhirResource, priority: Priority): Promise<string | undefined>;
}

/**
 * Where clinical resources come from: a FHIR server or, offline, a Bundle file. Both answer the
 * same questions, so the context stage is the same code for `serve` and `analyze`.
 */
export interface ClinicalSource {
  patientsByIdentifier(system: string, value: string): Promise<FhirResource[]>;
  /** The patient's orders, at most `max`. */
  serviceRequests(patientRef: string, max: number): Promise<FhirResource[]>;
  /** The patient's reports dated on or after `since`, newest first. */
  reports(patientRef: string, since: string, max: number): Promise<FhirResource[]>;
  /** Reports whose basedOn is one of `orderRefs` (`ServiceRequest/<id>`). */
  reportsBasedOn(orderRefs: readonly string[], max: number): Promise<FhirResource[]>;
  /** ImagingStudies with the identifier `urn:dicom:uid|urn:oid:<studyInstanceUID>`. */
  imagingStudies(studyInstanceUID: string): Promise<FhirResource[]>;
  /** Reports whose imagingStudy is one of `imagingStudyRefs`, by the server's search parameter `searchParam`. */
  reportsOfImagingStudies(searchParam: string, imagingStudyRefs: readonly string[], max: number): Promise<FhirResource[]>;
  observations(patientRef: string, codes: readonly { system: string; code: string }[], since: string, max: number): Promise<FhirResource[]>;
}

/** The model as the pipeline uses it: its contract, its text encoding, and inference (batched behind the port). */
export interface ModelPort {
  readonly manifest: Manifest;
  /** The execution provider it runs on (cpu, cuda…). */
  readonly provider: string;
  /** The clinical text as the model's text input; undefined for a model that reads no text. */
  encodeText(text: string): TextEncoding | undefined;
  infer(input: ModelInput): Promise<ModelOutput>;
}

/** What a retraction needs from the outside (adapters/retraction-io.ts implements it on the servers). */
export interface RetractionPorts {
  /** The study's instances in the PACS; none when it is gone. */
  studyInstances(studyInstanceUID: string): Promise<InstanceMeta[]>;
  /** Whether the study is still in the PACS (the sweep: one cheap QIDO-RS query). */
  studyExists(studyInstanceUID: string): Promise<boolean>;
  storeRejectionNote(studyInstanceUID: string, part10: Uint8Array): Promise<void>;
  /** Marks the study retracted where the PACS keeps our priority (Orthanc metadata). Absent: it keeps none. */
  markRetracted?(studyInstanceUID: string, detail: { rejectionNote?: string; srs: string[]; cause: Retraction['cause'] }): Promise<void>;
  /** Absent when no FHIR server is configured. */
  fhir?: {
    findRiskAssessments(resultKey: string): Promise<FhirResource[]>;
    /** Update with If-Match on the version read. */
    update(resource: FhirResource): Promise<FhirResource>;
    transaction(bundle: FhirResource): Promise<FhirResource>;
  };
}

/** The store as the pipeline uses it. */
export type PipelineStore = JobQueue & ResultStore & AuditLog;

export interface PipelineDeps {
  /** The model a run of processStudy uses (with several models: the one being run). */
  model: ModelPort;
  /**
   * Every model of the service (config `models`), in order; absent: just `model`. Each reads the
   * series its selection rules (keyed by manifest id) choose and writes its own SR and RiskAssessment.
   */
  models?: readonly ModelPort[];
  mappings: Mappings;
  uidRoot: string;
  /** Run everything, write nothing back (results stay in the store and the API). */
  shadow: boolean;
  source: StudySource;
  /** Undefined when no FHIR server (or Bundle) is configured: the model then reads no clinical text. */
  clinical: ClinicalSource | undefined;
  sink: ResultSink;
  store: PipelineStore;
  log: Logger;
  /** Also write the priority to the study's ServiceRequest (fhir.writeOrderPriority). */
  writeOrderPriority?: boolean;
  now?: () => Date;
  software: { name: string; version: string };
  /** api.showPatientIdentity: keep the patient's name and ID with the result for the worklist (default: not kept). */
  keepPatientIdentity?: boolean;
  /** Optional writes refused for a configuration reason, logged once per cause (absent: not logged). */
  warnings?: WriteWarnings;
  /** Stage timings, write counts (optional: `analyze` has none). */
  metrics?: Metrics;
  /** limits.dicom: what a retrieved instance may declare or inflate to. */
  dicomLimits?: DicomLimits;
  /** Decodes an instance into the model's tensor off the event loop (a worker pool); absent: inline. */
  decode?: (bytes: Uint8Array, spec: ImageSpec, limits: Partial<DicomLimits>) => Promise<TensorResult>;
}
