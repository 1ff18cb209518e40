/**
 * The store, split by concern. Each port is small and async, so an engine that talks to a server
 * (PostgreSQL) implements it as readily as one in-process file (SQLite); each has a contract
 * suite (test/unit/state/contract/) that an engine must pass. Callers take the narrowest port
 * they need; the composition root hands every one the same engine.
 *
 * Times are epoch milliseconds from the engine's clock (injectable, for tests), never the
 * database's own: every engine then orders and expires the same way.
 */
import type { StudyRef } from '../domain/types.ts';
import type {
  JobClass,
  AuditEntry,
  AuditRecord,
  Feedback,
  ImageKind,
  Job,
  JobState,
  NewFeedback,
  NewRetraction,
  Retraction,
  RetractionState,
  StoredImage,
  StoredPictureSource,
  StoredResult,
  StudyRecord,
  WorklistEntry,
  WorklistFilter,
  WorklistQuery,
} from '../domain/records.ts';

/**
 * Which class a claim looks at first: `urgent-first` (live, then retries, then backfill) as a
 * rule; `backfill-first` now and then (worker.backfillShare), so a backlog still drains while
 * live studies keep arriving; `urgent-only` (live and retries, never backfill) when this process
 * already runs its worker.backfillConcurrency backfill jobs, so workers stay free for live studies.
 */
export type ClaimOrder = 'urgent-first' | 'backfill-first' | 'urgent-only';

export interface EnqueueOptions {
  /** The scheduling class of the studies enqueued (default live; backfill for `backfill`). */
  class?: JobClass;
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

/** A claim's lease when the caller names none. */
export const DEFAULT_LEASE: Lease = { owner: 'local', leaseMs: 60_000 };

export interface Lease {
  owner: string;
  leaseMs: number;
}

export interface JobFilter {
  state?: JobState;
  limit?: number;
  offset?: number;
}

export interface Cursor {
  name: string;
  value: string;
}

/** The durable job queue: one job per study, claimed under a lease (state machine: job-machine.ts). */
export interface JobQueue {
  /** Enqueues (or re-enqueues) studies and sets the cursor in one transaction: a crash can neither lose a study nor skip one. */
  enqueue(refs: readonly StudyRef[], cursor?: Cursor, options?: EnqueueOptions): Promise<void>;
  /** When the earliest queued job comes due (ms since epoch); undefined when none is queued. */
  nextDueAt(): Promise<number | undefined>;
  /**
   * When the earliest job whose settle barrier is not lifted yet comes due (in the past when it
   * waits for a pass): the polling ingest runs a pass then, which lifts it.
   */
  nextSettleAt(): Promise<number | undefined>;
  /**
   * Takes the next due job — queued with its next attempt time passed, or running with an
   * expired lease (its worker died) — and marks it running, leased to `lease.owner`. With
   * `studyInstanceUID`, only that study's job (`process <uid>`).
   */
  claim(now: number, lease?: Lease, studyInstanceUID?: string, order?: ClaimOrder): Promise<Job | undefined>;
  /** Extends a running job's lease; false when the job is no longer this owner's. */
  renewLease(studyInstanceUID: string, owner: string, until: number): Promise<boolean>;
  get(studyInstanceUID: string): Promise<Job | undefined>;
  /**
   * Records how a run ended. With `owner`, only while that owner still holds the lease (false
   * otherwise: another worker took the job over and its run decides).
   */
  finish(studyInstanceUID: string, state: 'done' | 'skipped', reason: string | undefined, timings?: Record<string, number>, owner?: string): Promise<boolean>;
  /** Records a failure: retry at `retryAt`, or give up when it is undefined. `owner` as for finish. */
  fail(studyInstanceUID: string, errorCode: string, message: string, retryAt: number | undefined, owner?: string): Promise<boolean>;
  /** Queues a known study again (attempts reset); a running one runs again when it finishes. */
  requeue(studyInstanceUID: string): Promise<Job | undefined>;
  /** Most recently updated first; a page of `limit` (default all) from `offset`. */
  jobs(filter?: JobFilter): Promise<Job[]>;
  /** How many jobs the filter matches (for paging). */
  countJobs(filter?: Pick<JobFilter, 'state'>): Promise<number>;
  countByState(): Promise<Record<JobState, number>>;
}

/** What polling ingest remembers: cursors and the seen-set. */
export interface IngestState {
  getCursor(name: string): Promise<string | undefined>;
  /**
   * Enqueues the studies not yet seen in `seenSet` or seen with another fingerprint, records them
   * all as seen (now), and sets the cursor — one transaction. Returns what was enqueued.
   */
  enqueueUnseen(seenSet: string, studies: readonly { ref: StudyRef; fingerprint: string }[], cursor?: Cursor): Promise<StudyRef[]>;
  /** Forgets seen-set entries last seen before `before`; returns how many. */
  pruneSeen(seenSet: string, before: number): Promise<number>;
}

/** Results, the images drawn from them, and the worklist that ranks them. */
export interface ResultStore {
  /** Inserts or replaces the result with this key; the study's latest result is the newest one. */
  saveResult(result: StoredResult): Promise<void>;
  latestResult(studyInstanceUID: string): Promise<StoredResult | undefined>;
  /** Oldest first. */
  resultsOf(studyInstanceUID: string): Promise<StoredResult[]>;
  /** The job, its latest result and its retraction; undefined for a study never enqueued. */
  study(studyInstanceUID: string): Promise<StudyRecord | undefined>;
  /** Replaces the study's image of that kind. */
  saveImage(studyInstanceUID: string, kind: ImageKind, png: Uint8Array, resultKey?: string): Promise<void>;
  getImage(studyInstanceUID: string, kind: ImageKind): Promise<StoredImage | undefined>;
  /**
   * Replaces what the study's pictures are drawn from, and deletes the pictures drawn from the
   * one before (in one transaction): the pictures are drawn again at their next view.
   */
  savePictureSource(studyInstanceUID: string, data: Uint8Array, hasHeat: boolean, resultKey: string): Promise<void>;
  getPictureSource(studyInstanceUID: string): Promise<StoredPictureSource | undefined>;
  /** Ranked: priority (stat first; no result last), then the highest probability, then waiting time (oldest first). */
  worklist(query?: WorklistQuery): Promise<WorklistEntry[]>;
  /** How many entries the filter matches (for paging). */
  countWorklist(filter?: WorklistFilter): Promise<number>;
}

export interface FeedbackStore {
  addFeedback(feedback: NewFeedback): Promise<Feedback>;
  /** Oldest first; every study's when no UID is given. */
  listFeedback(studyInstanceUID?: string): Promise<Feedback[]>;
}

/** Every write to an upstream, append-only: never updated or deleted, by any engine. */
export interface AuditLog {
  audit(entry: AuditEntry): Promise<void>;
  /** Oldest first. */
  auditLog(filter?: { studyInstanceUID?: string }): Promise<AuditRecord[]>;
}

/** Retractions: durable work like jobs (claimed under a lease, retried with backoff). */
export interface RetractionQueue {
  /**
   * Records a retraction of the study's latest result (and the earlier ones) as pending work, in
   * one transaction. Undefined when the study has no result. When a retraction already covers the
   * latest result it is returned unchanged (`created` false) — unless it failed, then it is queued again.
   */
  requestRetraction(request: NewRetraction): Promise<{ retraction: Retraction; created: boolean } | undefined>;
  getRetraction(studyInstanceUID: string): Promise<Retraction | undefined>;
  retractions(filter?: { state?: RetractionState }): Promise<Retraction[]>;
  claimRetraction(now: number, lease: Lease, studyInstanceUID?: string): Promise<Retraction | undefined>;
  renewRetractionLease(studyInstanceUID: string, owner: string, until: number): Promise<boolean>;
  /** Saves progress (written flags, notes) of a running retraction. */
  saveRetractionProgress(studyInstanceUID: string, progress: Pick<Retraction, 'written' | 'notes'>): Promise<void>;
  finishRetraction(studyInstanceUID: string): Promise<void>;
  /** Retry at `retryAt`, or give up (failed) when it is undefined; `countAttempt` false for a deferral. */
  failRetraction(studyInstanceUID: string, errorCode: string, message: string, retryAt: number | undefined, countAttempt?: boolean): Promise<void>;
  /**
   * Done studies updated at or after `since` whose latest result is not retracted, in study UID
   * order after `after`, at most `limit`: one page of the deleted-study sweep.
   */
  sweepCandidates(since: number, after: string, limit: number): Promise<string[]>;
}

/** What retention removes or clears. */
export interface Retention {
  /** Deletes stored images and picture sources older than `before`; returns how many. */
  purgeImages(before: number): Promise<number>;
  /**
   * Clears the free text kept (feedback notes, reasons of finished retractions) written before
   * `before`; the rows stay. Returns how many texts were cleared.
   */
  purgeText(before: number): Promise<{ feedbackNotes: number; retractionReasons: number }>;
  /**
   * Deletes jobs that ended (done, failed, skipped) and were last updated before `before`; their
   * results, feedback and audit entries stay. Returns how many.
   */
  pruneJobs(before: number): Promise<number>;
}

/** What a wake-up is about: a job or a retraction became due (or its due time moved). */
export type WakeKind = 'job' | 'retraction';

/**
 * The right to run something of which only one may run across replicas (one poller per ingest
 * source), held until released or until the holder's connection to the shared store ends.
 */
export interface Leadership {
  readonly name: string;
  /**
   * Settles (never rejects) when this replica no longer holds it: released, or its connection
   * broke — then another replica may hold it already, and the holder must stop at once.
   */
  readonly ended: Promise<void>;
  /** Whether this replica still holds it, as far as it knows (false once `ended` settled). */
  held(): boolean;
  release(): Promise<void>;
}

/** Everything an engine provides. */
export interface Store extends JobQueue, IngestState, ResultStore, FeedbackStore, AuditLog, RetractionQueue, Retention {
  /** Which engine, for logs and /readyz. */
  readonly engine: string;
  /**
   * Calls `listener` when any process sharing the store (replicas, this one too) made work due
   * or moved when it is due: enqueue (also a cursor that lifts a settle barrier), requeue, a
   * retry (fail with a retry time, even a later one: an idle worker's next due time changed), a
   * rerun going back to the queue, a retraction asked for or retried. Also once per kind after a
   * lost subscription came back (a wake-up may have been missed meanwhile). Returns the
   * unsubscribe function. Absent on an engine whose workers all live in one process (SQLite),
   * where the caller's own timers suffice; best effort everywhere: workers still poll, less often.
   */
  onWake?(listener: (kind: WakeKind) => void): () => void;
  /**
   * Tries to become the one replica that runs `name` (e.g. `ingest:orthanc-changes`); undefined
   * when another replica holds it (try again later). Held on a connection of its own, so a
   * replica that dies (or loses that connection) lets it go with it; the server notices a
   * vanished peer only when TCP says so, so two holders may overlap briefly after a network
   * split — what runs under it must stay idempotent (the seen-set and cursors make a poll so).
   * Absent on a single-machine engine: every caller may run everything.
   */
  tryLeadership?(name: string): Promise<Leadership | undefined>;
  close(): Promise<void>;
}
