/**
 * Every route of the HTTP API, once: method, path, who may call it, and the schemas of what it
 * takes and answers. app.ts registers exactly these (so nothing is served that is not
 * documented), and openapi.ts documents exactly these.
 */
import type { z } from 'zod';
import { webhookBodySchema } from '../pipeline/ingest/webhook.ts';
import {
  errorSchema,
  feedbackListSchema,
  feedbackRecordSchema,
  feedbackSchema,
  healthSchema,
  jobsPageSchema,
  jobsQuerySchema,
  readySchema,
  requeuedSchema,
  retractionSchema,
  retractSchema,
  studySchema,
  webhookIgnoredSchema,
  webhookQueuedSchema,
  worklistPageSchema,
  worklistQuerySchema,
} from './schemas.ts';

/**
 * - `public`: anyone who can reach the port (liveness, the page, this document);
 * - `token`: `Authorization: Bearer <api.token>`;
 * - `metrics`: api.token, or api.metricsToken for a scraper that should read nothing else;
 * - `webhook`: the shared secret in X-Pacs-Triage-Secret (ingest.webhook.secret).
 * `/readyz` is public but says only ready or not; with a token it also says why.
 */
export type Access = 'public' | 'token' | 'metrics' | 'webhook';

export interface Answer {
  description: string;
  schema?: z.ZodType;
  /** A content type other than JSON (the schema is then a string). */
  contentType?: string;
}

export interface Route {
  id: string;
  method: 'get' | 'post';
  /** OpenAPI form: /api/studies/{uid}. */
  path: string;
  access: Access;
  summary: string;
  /** The `uid` path parameter, when the path has one. */
  query?: z.ZodObject;
  body?: z.ZodType;
  responses: Record<number, Answer>;
}

const E = (description: string): Answer => ({ description, schema: errorSchema });
const TOKEN_ERRORS = { 401: E('no valid bearer token'), 421: E('the Host header is not one of api.allowedHosts') };
const STUDY_ERRORS = { ...TOKEN_ERRORS, 400: E('invalid path or query; `error.problems` lists each problem'), 404: E('no such study') };
const STATIC = (file: string, type: string): Omit<Route, 'id'> => ({
  method: 'get',
  path: file,
  access: 'public',
  summary: `The worklist page: ${file === '/' ? 'its HTML' : file.slice(1)} (it asks for the token and keeps it in sessionStorage)`,
  responses: { 200: { description: file, contentType: type } },
});

export const ROUTES: readonly Route[] = [
  {
    id: 'health',
    method: 'get',
    path: '/healthz',
    access: 'public',
    summary: 'Liveness, shadow mode, and the model and execution provider in use',
    responses: { 200: { description: 'the service is up', schema: healthSchema } },
  },
  {
    id: 'ready',
    method: 'get',
    path: '/readyz',
    access: 'public',
    summary: 'Readiness: the PACS and the FHIR server answer, the model is loaded. Without a token only `status`; with api.token (or api.metricsToken) also `checks`',
    responses: { 200: { description: 'ready', schema: readySchema }, 503: { description: 'not ready', schema: readySchema } },
  },
  {
    id: 'metrics',
    method: 'get',
    path: '/metrics',
    access: 'metrics',
    summary: 'Prometheus metrics (job counts by state, stage timings, upstream errors, circuit states, batch sizes)',
    responses: { 200: { description: 'Prometheus text exposition', contentType: 'text/plain; version=0.0.4' }, ...TOKEN_ERRORS },
  },
  { id: 'openapi', method: 'get', path: '/openapi.json', access: 'public', summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1 document' } } },
  { id: 'page', ...STATIC('/', 'text/html') },
  { id: 'pageScript', ...STATIC('/app.js', 'text/javascript') },
  { id: 'pageView', ...STATIC('/view.js', 'text/javascript') },
  { id: 'pageFilters', ...STATIC('/filters.js', 'text/javascript') },
  { id: 'pageStyle', ...STATIC('/app.css', 'text/css') },
  {
    id: 'worklist',
    method: 'get',
    path: '/api/worklist',
    access: 'token',
    summary: 'The worklist: ranked by priority (stat, asap, urgent, routine; studies without a result last), then the highest finding probability, then waiting time (oldest first)',
    query: worklistQuerySchema,
    responses: { 200: { description: 'one page of the worklist', schema: worklistPageSchema }, ...STUDY_ERRORS },
  },
  {
    id: 'jobs',
    method: 'get',
    path: '/api/jobs',
    access: 'token',
    summary: 'Jobs, most recently updated first, with the reason of each failure or skip; paged like the worklist',
    query: jobsQuerySchema,
    responses: { 200: { description: 'one page of jobs', schema: jobsPageSchema }, ...STUDY_ERRORS },
  },
  {
    id: 'study',
    method: 'get',
    path: '/api/studies/{uid}',
    access: 'token',
    summary: 'One study: job state and reason, stage timings, findings with probabilities and thresholds, model version, SR and RiskAssessment references, feedback',
    responses: { 200: { description: 'the study', schema: studySchema }, ...STUDY_ERRORS },
  },
  ...(['thumbnail', 'saliency'] as const).map(
    (kind): Route => ({
      id: kind,
      method: 'get',
      path: `/api/studies/{uid}/${kind}.png`,
      access: 'token',
      summary:
        kind === 'thumbnail'
          ? 'The model-input image as a grey PNG'
          : 'The model-input image with the saliency maps of the positive findings overlaid as a heat map (RGB PNG); attention weights, not a validated localisation',
      responses: { 200: { description: 'PNG (Cache-Control: no-store)', contentType: 'image/png' }, ...STUDY_ERRORS, 404: E(`no such study, or no ${kind} stored for it`) },
    }),
  ),
  {
    id: 'reprocess',
    method: 'post',
    path: '/api/studies/{uid}/reprocess',
    access: 'token',
    summary: 'Queue the study again (attempts reset). A running study runs again when its run ends. Unchanged inputs give the same result (idempotency): nothing new is written.',
    responses: { 202: { description: 'queued', schema: requeuedSchema }, ...STUDY_ERRORS },
  },
  {
    id: 'retract',
    method: 'post',
    path: '/api/studies/{uid}/retract',
    access: 'token',
    summary:
      "Mark the study's result wrong: its RiskAssessments become entered-in-error (with a Provenance giving the reason), an IOCM rejection note (KOS \"Rejected for Quality Reasons\") naming our SRs is stored in the study, the Orthanc priority becomes `retracted`, and the worklist shows the study as retracted. Durable: retried while an upstream is away. Asking again writes nothing new.",
    body: retractSchema,
    responses: {
      202: { description: 'retraction queued (run by the next pass of the service)', schema: retractionSchema },
      200: { description: 'the latest result is already retracted: nothing new', schema: retractionSchema },
      ...STUDY_ERRORS,
      404: E('no such study, or it has no result'),
      409: E('the study is being processed now; ask again when the run ends'),
      413: E('body larger than the limit'),
    },
  },
  {
    id: 'retry',
    method: 'post',
    path: '/api/studies/{uid}/retry',
    access: 'token',
    summary: 'Retry a failed (or waiting) job now, attempts reset; a stored result is written without running the model again',
    responses: { 202: { description: 'queued', schema: requeuedSchema }, ...STUDY_ERRORS, 409: E('the job is done or running (use reprocess)') },
  },
  {
    id: 'listFeedback',
    method: 'get',
    path: '/api/studies/{uid}/feedback',
    access: 'token',
    summary: 'Feedback given on this study, oldest first',
    responses: { 200: { description: 'the feedback', schema: feedbackListSchema }, ...STUDY_ERRORS },
  },
  {
    id: 'addFeedback',
    method: 'post',
    path: '/api/studies/{uid}/feedback',
    access: 'token',
    summary:
      "Accept or reject one finding of the study's latest result (stored with that result's key, for later evaluation). The first accept of a result also records its verification, in the same transaction: the next pass makes the RiskAssessment final with a Provenance naming the reader (`by`), retried while the FHIR server is away; GET /api/studies/{uid} shows where it stands",
    body: feedbackSchema,
    responses: {
      201: { description: 'stored', schema: feedbackRecordSchema },
      ...STUDY_ERRORS,
      400: E('invalid body: `error.problems` lists every problem, each with its field'),
      404: E('no such study, or it has no result yet'),
      413: E('body larger than the limit'),
    },
  },
  {
    id: 'orthancWebhook',
    method: 'post',
    path: '/webhooks/orthanc',
    access: 'webhook',
    summary:
      'Ingest mode `webhook` (served only when it is configured): Orthanc (docker/orthanc/on-stable-study.lua) posts a study that became stable, and it is queued; or, with WebhookEvent "instance" and ingest.stableAgeS set, every stored instance, and the study is queued to start ingest.stableAgeS after its last instance (our own SR series is acknowledged and ignored). The shared secret (ingest.webhook.secret) is compared in constant time; no bearer token.',
    body: webhookBodySchema,
    responses: {
      200: { description: 'a NewInstance of our own SR or rejection-note series: nothing to do', schema: webhookIgnoredSchema },
      202: { description: 'queued (a study already queued or running is not queued twice; a NewInstance pushes its start back)', schema: webhookQueuedSchema },
      400: E('invalid body: `error.problems` lists every problem, each with its field'),
      401: E('no X-Pacs-Triage-Secret header'),
      403: E('wrong secret'),
      409: E('a NewInstance post while ingest.stableAgeS is not set'),
      413: E('body larger than ingest.webhook.bodyLimit'),
      421: E('the Host header is not one of api.allowedHosts'),
    },
  },
];

export function route(id: string): Route {
  const found = ROUTES.find((r) => r.id === id);
  if (!found) throw new Error(`no route ${id}`);
  return found;
}

/** /api/studies/{uid} → /api/studies/:uid (express). */
export function expressPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}
