/**
 * Request validation for the API: zod schemas for bodies and query strings, and the error that
 * carries every problem found (one per field), so a client can fix them all at once.
 */
import type { z } from 'zod';
import { TriageError } from '../domain/errors.ts';
import type { JobState, WorklistQuery } from '../domain/records.ts';
import { DEFAULT_PAGE, feedbackSchema, jobsQuerySchema, UID_PATTERN, worklistQuerySchema } from './schemas.ts';

export { DEFAULT_PAGE, JOB_STATES, MAX_NOTE, MAX_PAGE, PRIORITIES } from './schemas.ts';

export interface Problem {
  /** The field (body) or query parameter the problem is about; '' for the whole body. */
  path: string;
  message: string;
}

/** A 400 (USAGE) that lists every problem of a request. */
export class RequestInvalid extends TriageError {
  readonly problems: Problem[];

  constructor(what: string, problems: Problem[]) {
    super('USAGE', `${what}: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`, { where: 'api' });
    this.problems = problems;
  }
}

/** One problem per zod issue; an unknown key is a problem of its own field. */
export function problemsOf(issues: readonly z.core.$ZodIssue[]): Problem[] {
  return issues.flatMap((issue): Problem[] =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: [...issue.path.map(String), key].join('.'), message: 'is not a known field' }))
      : [{ path: issue.path.map(String).join('.'), message: issue.message }],
  );
}

export function checkStudyUid(uid: string): string {
  if (uid.length > 64 || !UID_PATTERN.test(uid)) {
    throw new RequestInvalid('invalid study', [{ path: 'uid', message: 'must be a DICOM UID (digits and dots, at most 64 characters)' }]);
  }
  return uid;
}

export type FeedbackBody = z.infer<typeof feedbackSchema>;

/** Validates a feedback body; `findingCodes` are the codes of the study's latest result. */
export function parseFeedback(body: unknown, findingCodes: readonly string[]): FeedbackBody {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new RequestInvalid('invalid feedback', [{ path: '', message: 'the body must be a JSON object (Content-Type: application/json)' }]);
  }
  const parsed = feedbackSchema.safeParse(body);
  const problems = parsed.success ? [] : problemsOf(parsed.error.issues);
  const code = (body as { findingCode?: unknown }).findingCode;
  if (typeof code === 'string' && code.length > 0 && !findingCodes.includes(code) && !problems.some((p) => p.path === 'findingCode')) {
    problems.push({ path: 'findingCode', message: `"${code.slice(0, 64)}" is not a finding of this study (one of ${findingCodes.join(', ')})` });
  }
  if (!parsed.success || problems.length > 0) throw new RequestInvalid('invalid feedback', problems);
  return parsed.data;
}

export interface WorklistParams extends WorklistQuery {
  limit: number;
  offset: number;
}

/** The worklist query string → store query. `date` is one UTC day, intersected with since/until. */
export function parseWorklistQuery(query: unknown): WorklistParams {
  const parsed = worklistQuerySchema.safeParse(query ?? {});
  if (!parsed.success) throw new RequestInvalid('invalid worklist query', problemsOf(parsed.error.issues));
  const q = parsed.data;
  let since = q.since;
  let until = q.until;
  if (q.date !== undefined) {
    const start = Date.parse(`${q.date}T00:00:00Z`);
    if (!Number.isFinite(start)) throw new RequestInvalid('invalid worklist query', [{ path: 'date', message: `"${q.date}" is not a calendar day` }]);
    since = Math.max(since ?? start, start);
    until = Math.min(until ?? start + 86_400_000, start + 86_400_000);
  }
  return {
    ...(q.priority && q.priority.length > 0 ? { priority: q.priority } : {}),
    ...(q.status && q.status.length > 0 ? { state: q.status } : {}),
    ...(q.modality && q.modality.length > 0 ? { modality: q.modality } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
    ...(q.accession !== undefined ? { accession: q.accession } : {}),
    ...(q.description !== undefined ? { description: q.description } : {}),
    ...(q.studyDateFrom !== undefined ? { studyDateFrom: q.studyDateFrom } : {}),
    ...(q.studyDateTo !== undefined ? { studyDateTo: q.studyDateTo } : {}),
    ...(q.sex && q.sex.length > 0 ? { sex: q.sex } : {}),
    ...(q.ageFrom !== undefined ? { ageFrom: q.ageFrom } : {}),
    ...(q.ageTo !== undefined ? { ageTo: q.ageTo } : {}),
    ...(q.sort !== undefined ? { sort: q.sort } : {}),
    limit: q.limit ?? DEFAULT_PAGE,
    offset: q.offset ?? 0,
  };
}

export interface JobsParams {
  state?: JobState;
  limit: number;
  offset: number;
}

export function parseJobsQuery(query: unknown): JobsParams {
  const parsed = jobsQuerySchema.safeParse(query ?? {});
  if (!parsed.success) throw new RequestInvalid('invalid jobs query', problemsOf(parsed.error.issues));
  return { ...(parsed.data.state ? { state: parsed.data.state } : {}), limit: parsed.data.limit ?? DEFAULT_PAGE, offset: parsed.data.offset ?? 0 };
}
