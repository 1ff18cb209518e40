/**
 * Request validation for the API: zod schemas for bodies and query strings, and the error that
 * carries every problem found (one per field), so a client can fix them all at once.
 */
import { z } from 'zod';
import { TriageError } from '../domain/errors.ts';
import type { Priority } from '../domain/types.ts';
import type { JobState } from '../domain/records.ts';

export const PRIORITIES: readonly Priority[] = ['stat', 'asap', 'urgent', 'routine'];
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'done', 'failed', 'skipped'];
export const MAX_NOTE = 1000;
export const MAX_PAGE = 200;
export const DEFAULT_PAGE = 50;

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

/** A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1). */
const UID = /^[0-9]+(\.[0-9]+)*$/;

export function checkStudyUid(uid: string): string {
  if (uid.length > 64 || !UID.test(uid)) {
    throw new RequestInvalid('invalid study', [{ path: 'uid', message: 'must be a DICOM UID (digits and dots, at most 64 characters)' }]);
  }
  return uid;
}

export const feedbackSchema = z.strictObject({
  findingCode: z
    .string({ error: (i) => (i.input === undefined ? 'is required (the code of a finding of this study, e.g. pneumothorax)' : 'must be a string') })
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters'),
  verdict: z.enum(['accept', 'reject'], { error: 'must be "accept" or "reject"' }),
  note: z.string({ error: 'must be a string' }).max(MAX_NOTE, `must be at most ${MAX_NOTE} characters`).optional(),
  by: z
    .string({ error: 'must be a string' })
    .trim()
    .min(1, 'must not be empty')
    .max(100, 'must be at most 100 characters')
    .optional(),
});

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

/** A comma-separated list (or a repeated parameter) of values from `allowed`. */
function listOf<T extends string>(allowed: readonly T[], name: string) {
  return z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s.length > 0))
    .pipe(z.array(z.enum(allowed as [T, ...T[]], { error: (i) => `"${String(i.input)}" is not a ${name} (one of ${allowed.join(', ')})` })));
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** An ISO 8601 date (YYYY-MM-DD, UTC midnight) or date-time with an offset → ms since epoch. */
const instant = z.string().transform((s, ctx) => {
  const ms = DAY.test(s) ? Date.parse(`${s}T00:00:00Z`) : /^\d{4}-\d{2}-\d{2}T.+(Z|[+-]\d{2}:\d{2})$/.test(s) ? Date.parse(s) : Number.NaN;
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: `"${s.slice(0, 40)}" is not an ISO 8601 date (YYYY-MM-DD) or date-time with a time zone` });
    return z.NEVER;
  }
  return ms;
});

const count = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

export const worklistQuerySchema = z.strictObject({
  priority: listOf(PRIORITIES, 'priority').optional(),
  status: listOf(JOB_STATES, 'status').optional(),
  modality: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()).filter((s) => s.length > 0))
    .pipe(z.array(z.string().regex(/^[A-Z0-9]{1,16}$/, 'must be a DICOM modality code such as CR or DX')))
    .optional(),
  date: z.string().regex(DAY, 'must be a day, YYYY-MM-DD (UTC)').optional(),
  since: instant.optional(),
  until: instant.optional(),
  limit: count(1, MAX_PAGE).optional(),
  offset: count(0, 1_000_000).optional(),
});

export interface WorklistParams {
  priority?: Priority[];
  state?: JobState[];
  modality?: string[];
  since?: number;
  until?: number;
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
    limit: q.limit ?? DEFAULT_PAGE,
    offset: q.offset ?? 0,
  };
}

export const jobsQuerySchema = z.strictObject({ state: z.enum(JOB_STATES as [JobState, ...JobState[]], { error: `must be one of ${JOB_STATES.join(', ')}` }).optional() });
