/**
 * The API's schemas, one source for two uses: requests are validated with them, and the OpenAPI
 * document (openapi.ts) is generated from them. Response schemas are documentation only (the
 * handlers build the bodies); each carries its component name in `meta.id`.
 */
import { z } from 'zod';
import type { JobState } from '../domain/records.ts';
import type { Priority } from '../domain/types.ts';
import { MAX_RETRACTION_REASON } from '../pipeline/retract.ts';

export const PRIORITIES: readonly Priority[] = ['stat', 'asap', 'urgent', 'routine'];
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'done', 'failed', 'skipped'];
export const MAX_NOTE = 1000;
export const MAX_PAGE = 200;
export const DEFAULT_PAGE = 50;

/** A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1). */
export const UID_PATTERN = /^[0-9]+(\.[0-9]+)*$/;
export const uidParamSchema = z.string().max(64).regex(UID_PATTERN).meta({ description: 'Study Instance UID' });

/** A comma-separated list (or a repeated parameter) of values from `allowed`. */
function listOf<T extends string>(allowed: readonly T[], name: string, description: string) {
  return z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s.length > 0))
    .pipe(z.array(z.enum(allowed as [T, ...T[]], { error: (i) => `"${String(i.input)}" is not a ${name} (one of ${allowed.join(', ')})` })))
    .meta({ description });
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
export { DAY };

/** An ISO 8601 date (YYYY-MM-DD, UTC midnight) or date-time with an offset → ms since epoch. */
const instant = z.string().transform((s, ctx) => {
  const ms = DAY.test(s) ? Date.parse(`${s}T00:00:00Z`) : /^\d{4}-\d{2}-\d{2}T.+(Z|[+-]\d{2}:\d{2})$/.test(s) ? Date.parse(s) : Number.NaN;
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: `"${s.slice(0, 40)}" is not an ISO 8601 date (YYYY-MM-DD) or date-time with a time zone` });
    return z.NEVER;
  }
  return ms;
});

const count = (min: number, max: number, description: string) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
    .meta({ description });

const paging = {
  limit: count(1, MAX_PAGE, `page size (default ${DEFAULT_PAGE}, at most ${MAX_PAGE})`).optional(),
  offset: count(0, 1_000_000, 'entries to skip (default 0)').optional(),
};

export const worklistQuerySchema = z.strictObject({
  priority: listOf(PRIORITIES, 'priority', 'comma-separated priorities (only done studies have one)').optional(),
  status: listOf(JOB_STATES, 'status', `comma-separated job states: ${JOB_STATES.join(', ')}`).optional(),
  modality: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()).filter((s) => s.length > 0))
    .pipe(z.array(z.string().regex(/^[A-Z0-9]{1,16}$/, 'must be a DICOM modality code such as CR or DX')))
    .meta({ description: 'comma-separated DICOM modalities of the analysed image (case-insensitive)' })
    .optional(),
  date: z.string().regex(DAY, 'must be a day, YYYY-MM-DD (UTC)').meta({ description: 'received on this day (UTC)' }).optional(),
  since: instant.meta({ description: 'received at or after (YYYY-MM-DD = UTC midnight, or a date-time with a zone)' }).optional(),
  until: instant.meta({ description: 'received before' }).optional(),
  ...paging,
});

export const jobsQuerySchema = z.strictObject({
  state: z.enum(JOB_STATES as [JobState, ...JobState[]], { error: `must be one of ${JOB_STATES.join(', ')}` }).optional(),
  ...paging,
});

export const feedbackSchema = z
  .strictObject({
    findingCode: z
      .string({ error: (i) => (i.input === undefined ? 'is required (the code of a finding of this study, e.g. pneumothorax)' : 'must be a string') })
      .min(1, 'must not be empty')
      .max(64, 'must be at most 64 characters')
      .meta({ description: "a finding code of the study's latest result" }),
    verdict: z.enum(['accept', 'reject'], { error: 'must be "accept" or "reject"' }),
    note: z.string({ error: 'must be a string' }).max(MAX_NOTE, `must be at most ${MAX_NOTE} characters`).optional(),
    by: z
      .string({ error: 'must be a string' })
      .trim()
      .min(1, 'must not be empty')
      .max(100, 'must be at most 100 characters')
      .meta({ description: 'who gives it (self-declared); "anonymous" when absent' })
      .optional(),
  })
  .meta({ id: 'NewFeedback' });

export const retractSchema = z
  .strictObject({
    reason: z
      .string({ error: 'must be a string' })
      .trim()
      .min(1, 'is required: say why the result is wrong')
      .max(MAX_RETRACTION_REASON, `must be at most ${MAX_RETRACTION_REASON} characters`)
      .meta({ description: 'why the result is wrong (kept in the store and the FHIR Provenance, never in logs or the PACS)' }),
    by: z.string({ error: 'must be a string' }).trim().min(1).max(100, 'must be at most 100 characters').meta({ description: 'who asks (self-declared)' }).optional(),
  })
  .meta({ id: 'RetractRequest' });

// Responses (documentation).

const ms = z.number().int().meta({ description: 'milliseconds since the Unix epoch' });
const priority = z.enum(PRIORITIES as [Priority, ...Priority[]]).meta({ id: 'Priority' });
const jobState = z.enum(JOB_STATES as [JobState, ...JobState[]]).meta({ id: 'JobState' });
const retractionCause = z.enum(['marked-wrong', 'study-deleted']).meta({ id: 'RetractionCause' });
const retractionState = z.enum(['pending', 'running', 'done', 'failed']).meta({ id: 'RetractionState' });
const written = z.object({ pacs: z.boolean(), fhir: z.boolean(), metadata: z.boolean(), order: z.boolean().optional() });

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'TriageError code (USAGE, NOT_FOUND, UNAUTHORIZED, INTERNAL, …)' }),
      message: z.string(),
      problems: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  })
  .meta({ id: 'Error' });

export const healthSchema = z
  .object({ status: z.literal('ok'), shadow: z.boolean().meta({ description: 'true: results are not written back' }), provider: z.string(), model: z.string() })
  .meta({ id: 'Health' });

export const readySchema = z
  .object({
    status: z.enum(['ready', 'not ready']),
    checks: z
      .record(z.string(), z.object({ ok: z.boolean(), detail: z.string().optional() }))
      .meta({ description: 'per dependency (pacs, fhir, model, store); only with a valid token, and never an upstream body' })
      .optional(),
  })
  .meta({ id: 'Ready' });

const finding = z
  .object({
    code: z.string(),
    display: z.string(),
    probability: z.number().min(0).max(1),
    threshold: z.number().min(0).max(1),
    positive: z.boolean(),
    region: z
      .object({ sopInstanceUID: z.string(), x0: z.number(), y0: z.number(), x1: z.number(), y1: z.number() })
      .meta({ description: 'where the saliency map points, in source pixel coordinates' })
      .optional(),
  })
  .meta({ id: 'Finding' });

const worklistEntry = z
  .object({
    studyInstanceUID: z.string(),
    state: jobState,
    priority: priority.optional(),
    findings: z.array(finding).optional(),
    modality: z.string().optional(),
    reason: z.string().optional(),
    errorCode: z.string().optional(),
    images: z.array(z.enum(['thumbnail', 'saliency'])),
    receivedAt: ms,
    updatedAt: ms,
    retracted: z
      .object({ cause: retractionCause, state: retractionState, requestedAt: ms })
      .meta({ description: 'the latest result was retracted: no priority or findings, ranked with the studies without a result' })
      .optional(),
  })
  .meta({ id: 'WorklistEntry' });

export const worklistPageSchema = z
  .object({ shadow: z.boolean(), total: z.number().int().meta({ description: 'entries matching the filters, all pages' }), limit: z.number().int(), offset: z.number().int(), items: z.array(worklistEntry) })
  .meta({ id: 'WorklistPage' });

const job = z
  .object({
    studyInstanceUID: z.string(),
    source: z.string(),
    state: jobState,
    class: z.enum(['live', 'retry', 'backfill']).meta({ description: 'scheduling class: live arrivals go ahead of retries, retries ahead of backfill (backfill, reprocess, retry on request)' }),
    attempts: z.number().int(),
    nextAttemptAt: ms,
    reason: z.string().meta({ description: 'why it was skipped, or the last error' }).optional(),
    errorCode: z.string().optional(),
    enqueuedAt: ms,
    updatedAt: ms,
    timings: z.record(z.string(), z.number()).meta({ description: 'ms per stage of the last run' }).optional(),
  })
  .meta({ id: 'Job' });

export const jobsPageSchema = z
  .object({ total: z.number().int().meta({ description: 'jobs matching the filter, all pages' }), limit: z.number().int(), offset: z.number().int(), items: z.array(job) })
  .meta({ id: 'JobsPage' });

export const feedbackRecordSchema = z
  .object({
    id: z.string(),
    studyInstanceUID: z.string(),
    findingCode: z.string(),
    verdict: z.enum(['accept', 'reject']),
    note: z.string().optional(),
    by: z.string(),
    resultKey: z.string().optional(),
    createdAt: ms,
  })
  .meta({ id: 'Feedback' });

export const feedbackListSchema = z.object({ items: z.array(feedbackRecordSchema) }).meta({ id: 'FeedbackList' });

export const studySchema = z
  .object({
    studyInstanceUID: z.string(),
    shadow: z.boolean(),
    job,
    result: z
      .object({
        resultKey: z.string(),
        priority,
        findings: z.array(finding),
        modality: z.string().optional(),
        model: z.object({ id: z.string(), version: z.string(), executionProvider: z.string() }),
        sr: z
          .object({ seriesInstanceUID: z.string(), sopInstanceUID: z.string(), wadoRsPath: z.string() })
          .meta({ description: 'the DICOM SR in the source study; wadoRsPath is relative to the DICOMweb root' }),
        riskAssessment: z.string().nullable().meta({ description: 'the FHIR RiskAssessment reference, when written' }),
        sourceSopInstanceUIDs: z.array(z.string()),
        selectedBy: z
          .object({ rule: z.string(), attributes: z.array(z.string()) })
          .optional()
          .meta({ description: 'the series-selection rule that chose the source image and the attributes it matched on (mappings/series-selection.yaml)' }),
        written,
        notes: z.array(z.string()),
        createdAt: ms,
      })
      .nullable(),
    images: z.object({ thumbnail: z.string().nullable(), saliency: z.string().nullable() }).meta({ description: 'URLs of the stored images, null when none' }),
    feedback: z.array(feedbackRecordSchema),
    retraction: z
      .object({
        cause: retractionCause,
        state: retractionState,
        resultKey: z.string().meta({ description: 'the result marked wrong' }),
        coversLatestResult: z.boolean().meta({ description: 'false once a newer result (new inputs) replaced the retracted one' }),
        requestedAt: ms,
        doneAt: ms.optional(),
        errorCode: z.string().optional(),
        lastError: z.string().optional(),
        written: z.object({ pacs: z.boolean(), fhir: z.boolean(), metadata: z.boolean() }),
        notes: z.array(z.string()),
      })
      .nullable(),
  })
  .meta({ id: 'Study' });

export const requeuedSchema = z.object({ studyInstanceUID: z.string(), state: jobState, message: z.string() }).meta({ id: 'Requeued' });

export const retractionSchema = z.object({ studyInstanceUID: z.string(), state: retractionState, resultKey: z.string(), message: z.string() }).meta({ id: 'Retraction' });

export const webhookQueuedSchema = z.object({ studyInstanceUID: z.string(), state: jobState }).meta({ id: 'WebhookQueued' });
export const webhookIgnoredSchema = z.object({ studyInstanceUID: z.string(), ignored: z.string() }).meta({ id: 'WebhookIgnored' });
