import type { Finding, Priority, StudyRef } from '../domain/types.ts';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'skipped';

export interface Job {
  studyInstanceUID: string;
  orthancId?: string;
  source: StudyRef['source'];
  state: JobState;
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

export interface StoredImage {
  studyInstanceUID: string;
  kind: ImageKind;
  png: Buffer;
  resultKey?: string;
  createdAt: number;
}

export interface EnqueueOptions {
  /**
   * Due this long from now instead of at once; enqueueing the study again before then pushes it
   * back (a study is taken once no instance arrived for this long: ingest.stableAgeS).
   */
  settleMs?: number;
  /**
   * With settleMs, for a polling ingest: the name of the cursor where it keeps how far it has
   * looked (epoch ms, the start of its last complete pass). The job is due only once that has
   * passed its due time too, so an instance that arrived just before the due time, which the poll
   * sees up to a poll interval late, still pushes the study back instead of missing its run.
   */
  barrier?: string;
}

/**
 * The job store port. Ingest enqueues and advances its cursor in one transaction, so a crash
 * between the two can neither lose a study nor skip one.
 */
export interface JobStore {
  enqueue(refs: readonly StudyRef[], cursor?: { name: string; value: string }, options?: EnqueueOptions): void;
  /** When the earliest queued job comes due (ms since epoch); undefined when none is queued. */
  nextDueAt(): number | undefined;
  /**
   * When the earliest job whose settle barrier is not lifted yet comes due (ms since epoch; in
   * the past when it waits for a pass): the polling ingest runs a pass then, which lifts it.
   */
  nextSettleAt(): number | undefined;
  getCursor(name: string): string | undefined;
  /**
   * Polling ingest's seen-set: enqueues the studies not yet seen in `seenSet` or seen with another
   * fingerprint, records them all as seen (now), and sets the cursor — one transaction. Returns
   * what was enqueued.
   */
  enqueueUnseen(seenSet: string, studies: readonly { ref: StudyRef; fingerprint: string }[], cursor?: { name: string; value: string }): StudyRef[];
  /** Forgets seen-set entries last seen before `before` (ms since epoch); returns how many. */
  pruneSeen(seenSet: string, before: number): number;
  /**
   * Takes the next due job — queued with its next attempt time passed, or running with an
   * expired lease (its worker died) — and marks it running, leased to `owner` for `leaseMs`.
   */
  /** With `studyInstanceUID`, only that study's job (for `process <uid>`). */
  claim(now: number, lease?: { owner: string; leaseMs: number }, studyInstanceUID?: string): Job | undefined;
  /** Extends a running job's lease; false when the job is no longer this owner's. */
  renewLease(studyInstanceUID: string, owner: string, until: number): boolean;
  get(studyInstanceUID: string): Job | undefined;
  finish(studyInstanceUID: string, state: 'done' | 'skipped', reason: string | undefined, timings?: Record<string, number>): void;
  /** Records a failure: retry at `retryAt`, or give up when it is undefined. */
  fail(studyInstanceUID: string, errorCode: string, message: string, retryAt: number | undefined): void;
  saveResult(result: StoredResult): void;
  latestResult(studyInstanceUID: string): StoredResult | undefined;
  jobs(filter?: { state?: JobState }): Job[];
  /** Ranked: priority (stat first; no result last), then the highest probability, then waiting time (oldest first). */
  worklist(query?: WorklistQuery): WorklistEntry[];
  /** How many entries the filter matches (for paging). */
  countWorklist(filter?: WorklistFilter): number;
  /** The job and its latest result; undefined for a study never enqueued. */
  study(studyInstanceUID: string): StudyRecord | undefined;
  /**
   * Queues a known study again (attempts reset); a running one runs again when it finishes.
   * Returns the job after the change, undefined for a study never enqueued.
   */
  requeue(studyInstanceUID: string): Job | undefined;
  addFeedback(feedback: NewFeedback): Feedback;
  /** Oldest first; every study's when no UID is given. */
  listFeedback(studyInstanceUID?: string): Feedback[];
  /** Replaces the study's image of that kind. */
  saveImage(studyInstanceUID: string, kind: ImageKind, png: Uint8Array, resultKey?: string): void;
  getImage(studyInstanceUID: string, kind: ImageKind): StoredImage | undefined;
  /** Appends to the audit log (never updated or deleted). */
  audit(entry: AuditEntry): void;
  /** Oldest first. */
  auditLog(filter?: { studyInstanceUID?: string }): AuditRecord[];
  /** Job counts by state (for metrics). */
  countByState(): Record<JobState, number>;
  /** Deletes stored images older than `before` (ms since epoch); returns how many. */
  purgeImages(before: number): number;
  /**
   * Clears the free text the store keeps (feedback notes, reasons of finished retractions) written
   * before `before`; the rows stay (verdicts, states). Returns how many texts were cleared.
   */
  purgeText(before: number): { feedbackNotes: number; retractionReasons: number };
  /** Every stored result of the study, oldest first. */
  resultsOf(studyInstanceUID: string): StoredResult[];
  /**
   * Records a retraction of the study's latest result (and the earlier ones) as pending work, in
   * one transaction. Undefined when the study has no result. When a retraction already covers the
   * latest result it is returned unchanged (`created` false) — unless it failed, then it is queued again.
   */
  requestRetraction(request: NewRetraction): { retraction: Retraction; created: boolean } | undefined;
  getRetraction(studyInstanceUID: string): Retraction | undefined;
  retractions(filter?: { state?: RetractionState }): Retraction[];
  /** Takes the next due retraction (as `claim` does for jobs). */
  claimRetraction(now: number, lease: { owner: string; leaseMs: number }, studyInstanceUID?: string): Retraction | undefined;
  /** Extends a running retraction's lease; false when it is no longer this owner's. */
  renewRetractionLease(studyInstanceUID: string, owner: string, until: number): boolean;
  /** Saves progress (written flags, notes) of a running retraction. */
  saveRetractionProgress(studyInstanceUID: string, progress: Pick<Retraction, 'written' | 'notes'>): void;
  finishRetraction(studyInstanceUID: string): void;
  /** Retry at `retryAt`, or give up (failed) when it is undefined; `countAttempt` false for a deferral. */
  failRetraction(studyInstanceUID: string, errorCode: string, message: string, retryAt: number | undefined, countAttempt?: boolean): void;
  /**
   * Done studies updated at or after `since` whose latest result is not retracted, in study UID
   * order after `after`, at most `limit`: one page of the deleted-study sweep.
   */
  sweepCandidates(since: number, after: string, limit: number): string[];
  close(): void;
}
