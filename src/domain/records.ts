/**
 * The records pacs-triage keeps: jobs, results, the worklist's view of them, retractions,
 * feedback, images and the audit log. Engine-independent (state/ports.ts says how they are kept).
 */
import type { Finding, Priority, StudyRef } from './types.ts';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'skipped';

/**
 * Who waits on a queued job: `live` (a study that just arrived: triage is for it), `retry` (a
 * study that failed for a transient reason), `backfill` (backfill, reprocess, retry on request).
 * Live goes ahead of retries, retries ahead of backfill; backfill still gets a share of claims.
 */
export type JobClass = 'live' | 'retry' | 'backfill';
export const JOB_CLASSES: readonly JobClass[] = ['live', 'retry', 'backfill'];

export interface Job {
  studyInstanceUID: string;
  orthancId?: string;
  source: StudyRef['source'];
  state: JobState;
  /** Its scheduling class (see JobClass). */
  class: JobClass;
  attempts: number;
  nextAttemptAt: number;
  /** Why it was skipped, or the last error (code: message). */
  reason?: string;
  errorCode?: string;
  enqueuedAt: number;
  updatedAt: number;
  /** Timings of the last run, per stage, in ms. */
  timings?: Record<string, number>;
  /** While running: who holds it and until when (ms since epoch); an expired lease is reclaimed. */
  leaseOwner?: string;
  leaseUntil?: number;
}

/** One write to an upstream, kept append-only (no patient data: UIDs, references, versions). */
export interface AuditEntry {
  /** 'pacs' or 'fhir'. */
  target: string;
  /** 'store-sr', 'set-metadata', 'fhir-transaction', 'fhir-retract'… */
  action: string;
  studyInstanceUID: string;
  /** What was written: the SR SOP Instance UID, the RiskAssessment reference… */
  resource: string;
  resultKey: string;
  modelVersion: string;
  outcome: 'ok' | 'error';
  detail?: string;
}

export interface AuditRecord extends AuditEntry {
  id: number;
  at: number;
}

export interface StoredResult {
  resultKey: string;
  studyInstanceUID: string;
  sourceSopInstanceUIDs: string[];
  srSopInstanceUID: string;
  srSeriesInstanceUID: string;
  priority: Priority;
  findings: Finding[];
  modelId: string;
  modelVersion: string;
  executionProvider: string;
  /** Modality of the source image (DICOM Modality), for the worklist filter. */
  modality?: string;
  createdAt: number;
  /** Where it was written: each flag set once the write succeeded. */
  written: { pacs: boolean; fhir: boolean; metadata: boolean; order?: boolean };
  /**
   * Our own write of the priority to the order (ServiceRequest.priority, when configured): the
   * version it had and the version our write made, so that our write does not change the result key.
   */
  orderPriority?: { ref: string; fromVersion?: string; toVersion?: string };
  /** Why a write was skipped on purpose (shadow mode, no patient in FHIR…). */
  notes: string[];
  riskAssessmentRef?: string;
  /** The SR this one supersedes (Predecessor Documents), kept so a re-encode is byte-identical. */
  predecessor?: { seriesInstanceUID: string; sopInstanceUID: string };
  /**
   * The SR's Instance Number: unique among the study's results, which share the SR series; kept
   * so a re-encode is byte-identical. Absent in results stored before it was kept (their SR says 1).
   */
  instanceNumber?: number;
  /**
   * Which series-selection rule chose the source image, and the attributes it matched on (e.g.
   * ["Modality", "SeriesDescription"] for an image without BodyPartExamined). Absent in results
   * stored before it was recorded. Not part of the result key: the mappings version already is.
   */
  selectedBy?: { rule: string; attributes: string[] };
}

export interface WorklistEntry {
  studyInstanceUID: string;
  state: JobState;
  /** From the latest result, while the job is done. */
  priority?: Priority;
  findings?: Finding[];
  /** Modality of the image the latest result came from (uppercase), when the pipeline recorded it. */
  modality?: string;
  reason?: string;
  errorCode?: string;
  /** The images stored for the study. */
  images: ImageKind[];
  /** When the study was first enqueued (ms since epoch): the worklist's waiting time. */
  receivedAt: number;
  updatedAt: number;
  /**
   * Set when the latest result was retracted (marked wrong, or the study deleted in the PACS): the
   * entry then has no priority or findings and ranks with the studies that have no result.
   */
  retracted?: { cause: RetractionCause; state: RetractionState; requestedAt: number };
}

/** Filters and paging of the worklist. Lists match any of their values; absent = no filter. */
export interface WorklistFilter {
  priority?: readonly Priority[];
  state?: readonly JobState[];
  /** Matched against the latest result's modality; studies without a result never match. */
  modality?: readonly string[];
  /** Received at or after (ms since epoch). */
  since?: number;
  /** Received before (ms since epoch). */
  until?: number;
}

export interface WorklistQuery extends WorklistFilter {
  /** Default 50. */
  limit?: number;
  offset?: number;
}

/** One study's job and its latest result (whatever the job's state now). */
export interface StudyRecord {
  job: Job;
  result?: StoredResult;
  /** The study's retraction, when one was asked for (whether or not it still covers the latest result). */
  retraction?: Retraction;
}

/** Why a result is retracted. */
export type RetractionCause = 'marked-wrong' | 'study-deleted';
/** pending → running → done; failed only on a terminal error (asking again queues it again). */
export type RetractionState = 'pending' | 'running' | 'done' | 'failed';

/**
 * A retraction: durable work, like a job, so that an outage of the FHIR server or the PACS
 * delays it and never loses it. One per study; asking again after a new result replaces it.
 */
export interface Retraction {
  studyInstanceUID: string;
  /** The result marked wrong: the study's latest result when the retraction was asked for. */
  resultKey: string;
  /** Every result of the study it retracts (the marked one and the earlier ones it superseded). */
  resultKeys: string[];
  cause: RetractionCause;
  /** Free text (may name a patient): kept in the store and the FHIR Provenance only; purged by retention. */
  reason?: string;
  /** Who asked (self-declared, as for feedback). */
  requestedBy?: string;
  state: RetractionState;
  attempts: number;
  nextAttemptAt: number;
  errorCode?: string;
  lastError?: string;
  /** Each set once that write succeeded, so a retry does only what is missing. */
  written: { fhir: boolean; pacs: boolean; metadata: boolean };
  /** Why a write was skipped on purpose (no FHIR server, study no longer in the PACS…). */
  notes: string[];
  requestedAt: number;
  updatedAt: number;
  doneAt?: number;
  leaseOwner?: string;
  leaseUntil?: number;
}

export interface NewRetraction {
  studyInstanceUID: string;
  cause: RetractionCause;
  reason?: string;
  requestedBy?: string;
}

export type FeedbackVerdict = 'accept' | 'reject';

export interface NewFeedback {
  studyInstanceUID: string;
  findingCode: string;
  verdict: FeedbackVerdict;
  note?: string;
  /** Who gave it (self-declared: the API token is shared). */
  by: string;
  /** The result the verdict is about (model version, probabilities), for later evaluation. */
  resultKey?: string;
}

export interface Feedback extends NewFeedback {
  id: string;
  createdAt: number;
}

export type ImageKind = 'thumbnail' | 'saliency';

/** What a study's pictures are drawn from (pipeline/render/picture-source.ts), kept instead of them. */
export interface StoredPictureSource {
  studyInstanceUID: string;
  data: Buffer;
  /** Whether there is a saliency picture to draw. */
  hasHeat: boolean;
  resultKey?: string;
  createdAt: number;
}

export interface StoredImage {
  studyInstanceUID: string;
  kind: ImageKind;
  png: Buffer;
  resultKey?: string;
  createdAt: number;
}

