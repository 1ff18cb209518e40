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
  createdAt: number;
  /** Where it was written: each flag set once the write succeeded. */
  written: { pacs: boolean; fhir: boolean; metadata: boolean };
  /** Why a write was skipped on purpose (shadow mode, no patient in FHIR…). */
  notes: string[];
  riskAssessmentRef?: string;
}

export interface WorklistEntry {
  studyInstanceUID: string;
  state: JobState;
  priority?: Priority;
  findings?: Finding[];
  reason?: string;
  updatedAt: number;
}

/**
 * The job store port. Ingest enqueues and advances its cursor in one transaction, so a crash
 * between the two can neither lose a study nor skip one.
 */
export interface JobStore {
  enqueue(refs: readonly StudyRef[], cursor?: { name: string; value: string }): void;
  getCursor(name: string): string | undefined;
  /** Takes the next due job (queued, next attempt time passed) and marks it running. */
  claim(now: number): Job | undefined;
  get(studyInstanceUID: string): Job | undefined;
  finish(studyInstanceUID: string, state: 'done' | 'skipped', reason: string | undefined, timings?: Record<string, number>): void;
  /** Records a failure: retry at `retryAt`, or give up when it is undefined. */
  fail(studyInstanceUID: string, errorCode: string, message: string, retryAt: number | undefined): void;
  saveResult(result: StoredResult): void;
  latestResult(studyInstanceUID: string): StoredResult | undefined;
  jobs(filter?: { state?: JobState }): Job[];
  worklist(): WorklistEntry[];
  close(): void;
}
