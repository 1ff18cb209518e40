/**
 * The OpenAPI 3.1 description of the HTTP API, served at /openapi.json. Kept beside the routes
 * (test/unit/api checks that every route of the app is described here and nothing else is).
 */
import { DEFAULT_PAGE, JOB_STATES, MAX_NOTE, MAX_PAGE, PRIORITIES } from './validation.ts';

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description: string): object => ({ description, content: { 'application/json': { schema } } });
const error = (description: string): object => json(ref('Error'), description);
const uidParam = { name: 'uid', in: 'path', required: true, description: 'Study Instance UID', schema: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)*$', maxLength: 64 } };
const ms = { type: 'integer', description: 'milliseconds since the Unix epoch' };
const common = { '400': error('invalid path or query; `error.problems` lists each problem'), '401': error('no valid bearer token') };

const png = (kind: string): object => ({
  get: {
    operationId: `get${kind[0]?.toUpperCase()}${kind.slice(1)}`,
    summary:
      kind === 'thumbnail'
        ? 'The model-input image as a grey PNG'
        : 'The model-input image with the saliency maps of the positive findings overlaid as a heat map (RGB PNG); attention weights, not a validated localisation',
    parameters: [uidParam],
    responses: {
      '200': { description: 'PNG (Cache-Control: no-store)', content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } },
      ...common,
      '404': error(`no such study, or no ${kind} stored for it`),
    },
  },
});

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'pacs-triage API',
    version: '1',
    description:
      'Triage worklist, study results, rendered images, reprocessing and radiologist feedback. Every /api route needs `Authorization: Bearer <api.token>`. ' +
      'Responses carry no patient names or identifiers other than the Study Instance UID. The reference model is not for clinical use.',
    license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
  },
  security: [{ bearer: [] }],
  paths: {
    '/healthz': {
      get: {
        operationId: 'health',
        security: [],
        summary: 'Liveness, shadow mode, and the model and execution provider in use (no token needed)',
        responses: { '200': json(ref('Health'), 'the service is up') },
      },
    },
    '/readyz': {
      get: {
        operationId: 'ready',
        security: [],
        summary: 'Readiness: the PACS and the FHIR server answer, the model is loaded (no token needed)',
        responses: { '200': { description: 'ready; `checks` says per dependency' }, '503': { description: 'not ready; `checks` says which dependency failed and why' } },
      },
    },
    '/openapi.json': {
      get: { operationId: 'openapi', security: [], summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1 document' } } },
    },
    '/api/worklist': {
      get: {
        operationId: 'worklist',
        summary: 'The worklist: ranked by priority (stat, asap, urgent, routine; studies without a result last), then the highest finding probability, then waiting time (oldest first)',
        parameters: [
          { name: 'priority', in: 'query', description: 'comma-separated priorities (only done studies have one)', schema: { type: 'string' }, example: 'stat,asap' },
          { name: 'status', in: 'query', description: `comma-separated job states: ${JOB_STATES.join(', ')}`, schema: { type: 'string' }, example: 'done' },
          { name: 'modality', in: 'query', description: 'comma-separated DICOM modalities of the analysed image (case-insensitive)', schema: { type: 'string' }, example: 'CR,DX' },
          { name: 'date', in: 'query', description: 'received on this day (UTC)', schema: { type: 'string', format: 'date' } },
          { name: 'since', in: 'query', description: 'received at or after (YYYY-MM-DD = UTC midnight, or a date-time with a zone)', schema: { type: 'string' } },
          { name: 'until', in: 'query', description: 'received before', schema: { type: 'string' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE } },
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
        ],
        responses: { '200': json(ref('WorklistPage'), 'one page of the worklist'), ...common },
      },
    },
    '/api/jobs': {
      get: {
        operationId: 'jobs',
        summary: 'Jobs, most recently updated first, with the reason of each failure or skip',
        parameters: [{ name: 'state', in: 'query', schema: { type: 'string', enum: JOB_STATES } }],
        responses: { '200': json({ type: 'object', required: ['items'], properties: { items: { type: 'array', items: ref('Job') } } }, 'the jobs'), ...common },
      },
    },
    '/api/studies/{uid}': {
      get: {
        operationId: 'study',
        summary: 'One study: job state and reason, stage timings, findings with probabilities and thresholds, model version, SR and RiskAssessment references, feedback',
        parameters: [uidParam],
        responses: { '200': json(ref('Study'), 'the study'), ...common, '404': error('no such study') },
      },
    },
    '/api/studies/{uid}/thumbnail.png': png('thumbnail'),
    '/api/studies/{uid}/saliency.png': png('saliency'),
    '/api/studies/{uid}/reprocess': {
      post: {
        operationId: 'reprocess',
        summary:
          'Queue the study again (attempts reset). A running study runs again when its run ends. Unchanged inputs give the same result (idempotency): nothing new is written.',
        parameters: [uidParam],
        responses: { '202': json(ref('Requeued'), 'queued'), ...common, '404': error('no such study') },
      },
    },
    '/api/studies/{uid}/retract': {
      post: {
        operationId: 'retract',
        summary:
          "Mark the study's result wrong: its RiskAssessments become entered-in-error (with a Provenance giving the reason), an IOCM rejection note (KOS \"Rejected for Quality Reasons\") naming our SRs is stored in the study, the Orthanc priority becomes `retracted`, and the worklist shows the study as retracted. Durable: retried while an upstream is away. Asking again writes nothing new.",
        parameters: [uidParam],
        requestBody: { required: true, content: { 'application/json': { schema: ref('RetractRequest') } } },
        responses: {
          '202': json(ref('Retraction'), 'retraction queued (run by the next pass of the service)'),
          '200': json(ref('Retraction'), 'the latest result is already retracted: nothing new'),
          ...common,
          '404': error('no such study, or it has no result'),
          '409': error('the study is being processed now; ask again when the run ends'),
          '413': error('body larger than the limit'),
        },
      },
    },
    '/api/studies/{uid}/retry': {
      post: {
        operationId: 'retry',
        summary: 'Retry a failed (or waiting) job now, attempts reset; a stored result is written without running the model again',
        parameters: [uidParam],
        responses: { '202': json(ref('Requeued'), 'queued'), ...common, '404': error('no such study'), '409': error('the job is done or running (use reprocess)') },
      },
    },
    '/api/studies/{uid}/feedback': {
      get: {
        operationId: 'listFeedback',
        summary: 'Feedback given on this study, oldest first',
        parameters: [uidParam],
        responses: { '200': json({ type: 'object', required: ['items'], properties: { items: { type: 'array', items: ref('Feedback') } } }, 'the feedback'), ...common, '404': error('no such study') },
      },
      post: {
        operationId: 'addFeedback',
        summary: "Accept or reject one finding of the study's latest result (stored with that result's key, for later evaluation)",
        parameters: [uidParam],
        requestBody: { required: true, content: { 'application/json': { schema: ref('NewFeedback') } } },
        responses: {
          '201': json(ref('Feedback'), 'stored'),
          '400': error('invalid body: `error.problems` lists every problem, each with its field'),
          '401': error('no valid bearer token'),
          '404': error('no such study, or it has no result yet'),
          '413': error('body larger than the limit'),
        },
      },
    },
    '/webhooks/orthanc': {
      post: {
        operationId: 'orthancWebhook',
        security: [{ webhookSecret: [] }],
        summary:
          'Ingest mode `webhook` (served only when it is configured): Orthanc (docker/orthanc/on-stable-study.lua) posts a study that became stable, and it is queued; or, with WebhookEvent "instance" and ingest.stableAgeS set, every stored instance, and the study is queued to start ingest.stableAgeS after its last instance (our own SR series is acknowledged and ignored). The shared secret (ingest.webhook.secret) is compared in constant time; no bearer token.',
        requestBody: { required: true, content: { 'application/json': { schema: ref('WebhookBody') } } },
        responses: {
          '200': json(ref('WebhookIgnored'), 'a NewInstance of our own SR or rejection-note series: nothing to do'),
          '202': json(ref('WebhookQueued'), 'queued (a study already queued or running is not queued twice; a NewInstance pushes its start back)'),
          '400': error('invalid body: `error.problems` lists every problem, each with its field'),
          '409': error('a NewInstance post while ingest.stableAgeS is not set'),
          '401': error('no X-Pacs-Triage-Secret header'),
          '403': error('wrong secret'),
          '413': error('body larger than ingest.webhook.bodyLimit'),
        },
      },
    },
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer' },
      webhookSecret: { type: 'apiKey', in: 'header', name: 'X-Pacs-Triage-Secret', description: 'ingest.webhook.secret (at least 16 characters)' },
    },
    schemas: {
      WebhookBody: {
        type: 'object',
        required: ['StudyInstanceUID'],
        description: 'Unknown properties are ignored.',
        properties: {
          StudyInstanceUID: { type: 'string', pattern: '^[0-2](\\.(0|[1-9][0-9]*))*$', maxLength: 64 },
          OrthancId: { type: 'string', pattern: '^[0-9a-f-]{8,64}$', description: "Orthanc's id of the study, kept on the job" },
          ChangeType: { type: 'string', enum: ['StableStudy', 'NewInstance'], default: 'StableStudy' },
          SeriesInstanceUID: { type: 'string', pattern: '^[0-2](\\.(0|[1-9][0-9]*))*$', maxLength: 64, description: 'the instance\'s series; required with NewInstance' },
        },
      },
      WebhookIgnored: {
        type: 'object',
        required: ['studyInstanceUID', 'ignored'],
        properties: { studyInstanceUID: { type: 'string' }, ignored: { type: 'string' } },
      },
      WebhookQueued: {
        type: 'object',
        required: ['studyInstanceUID', 'state'],
        properties: { studyInstanceUID: { type: 'string' }, state: ref('JobState') },
      },
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: { type: 'string', description: 'TriageError code (USAGE, NOT_FOUND, UNAUTHORIZED, INTERNAL, …)' },
              message: { type: 'string' },
              problems: { type: 'array', items: { type: 'object', required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } } },
            },
          },
        },
      },
      Health: {
        type: 'object',
        required: ['status', 'shadow', 'provider', 'model'],
        properties: { status: { const: 'ok' }, shadow: { type: 'boolean', description: 'true: results are not written back' }, provider: { type: 'string' }, model: { type: 'string' } },
      },
      Priority: { type: 'string', enum: PRIORITIES },
      JobState: { type: 'string', enum: JOB_STATES },
      Finding: {
        type: 'object',
        required: ['code', 'display', 'probability', 'threshold', 'positive'],
        properties: {
          code: { type: 'string' },
          display: { type: 'string' },
          probability: { type: 'number', minimum: 0, maximum: 1 },
          threshold: { type: 'number', minimum: 0, maximum: 1 },
          positive: { type: 'boolean' },
          region: {
            type: 'object',
            description: 'where the saliency map points, in source pixel coordinates',
            properties: { sopInstanceUID: { type: 'string' }, x0: { type: 'number' }, y0: { type: 'number' }, x1: { type: 'number' }, y1: { type: 'number' } },
          },
        },
      },
      WorklistEntry: {
        type: 'object',
        required: ['studyInstanceUID', 'state', 'images', 'receivedAt', 'updatedAt'],
        properties: {
          studyInstanceUID: { type: 'string' },
          state: ref('JobState'),
          priority: ref('Priority'),
          findings: { type: 'array', items: ref('Finding') },
          modality: { type: 'string' },
          reason: { type: 'string' },
          errorCode: { type: 'string' },
          images: { type: 'array', items: { type: 'string', enum: ['thumbnail', 'saliency'] } },
          receivedAt: ms,
          updatedAt: ms,
          retracted: {
            type: 'object',
            description: 'the latest result was retracted: no priority or findings, ranked with the studies without a result',
            required: ['cause', 'state', 'requestedAt'],
            properties: { cause: ref('RetractionCause'), state: ref('RetractionState'), requestedAt: ms },
          },
        },
      },
      RetractionCause: { type: 'string', enum: ['marked-wrong', 'study-deleted'] },
      RetractionState: { type: 'string', enum: ['pending', 'running', 'done', 'failed'] },
      RetractRequest: {
        type: 'object',
        additionalProperties: false,
        required: ['reason'],
        properties: {
          reason: { type: 'string', minLength: 1, maxLength: 1000, description: 'why the result is wrong (kept in the store and the FHIR Provenance, never in logs or the PACS)' },
          by: { type: 'string', maxLength: 100, description: 'who asks (self-declared)' },
        },
      },
      Retraction: {
        type: 'object',
        required: ['studyInstanceUID', 'state', 'resultKey', 'message'],
        properties: { studyInstanceUID: { type: 'string' }, state: ref('RetractionState'), resultKey: { type: 'string' }, message: { type: 'string' } },
      },
      WorklistPage: {
        type: 'object',
        required: ['shadow', 'total', 'limit', 'offset', 'items'],
        properties: {
          shadow: { type: 'boolean' },
          total: { type: 'integer', description: 'entries matching the filters, all pages' },
          limit: { type: 'integer' },
          offset: { type: 'integer' },
          items: { type: 'array', items: ref('WorklistEntry') },
        },
      },
      Job: {
        type: 'object',
        required: ['studyInstanceUID', 'source', 'state', 'attempts', 'nextAttemptAt', 'enqueuedAt', 'updatedAt'],
        properties: {
          studyInstanceUID: { type: 'string' },
          source: { type: 'string' },
          state: ref('JobState'),
          attempts: { type: 'integer' },
          nextAttemptAt: ms,
          reason: { type: 'string', description: 'why it was skipped, or the last error' },
          errorCode: { type: 'string' },
          enqueuedAt: ms,
          updatedAt: ms,
          timings: { type: 'object', additionalProperties: { type: 'number' }, description: 'ms per stage of the last run' },
        },
      },
      Study: {
        type: 'object',
        required: ['studyInstanceUID', 'shadow', 'job', 'result', 'images', 'feedback', 'retraction'],
        properties: {
          studyInstanceUID: { type: 'string' },
          shadow: { type: 'boolean' },
          job: ref('Job'),
          result: {
            oneOf: [
              { type: 'null' },
              {
                type: 'object',
                required: ['resultKey', 'priority', 'findings', 'model', 'sr', 'riskAssessment', 'written', 'notes', 'createdAt'],
                properties: {
                  resultKey: { type: 'string' },
                  priority: ref('Priority'),
                  findings: { type: 'array', items: ref('Finding') },
                  modality: { type: 'string' },
                  model: { type: 'object', properties: { id: { type: 'string' }, version: { type: 'string' }, executionProvider: { type: 'string' } } },
                  sr: {
                    type: 'object',
                    description: 'the DICOM SR in the source study; wadoRsPath is relative to the DICOMweb root',
                    properties: { seriesInstanceUID: { type: 'string' }, sopInstanceUID: { type: 'string' }, wadoRsPath: { type: 'string' } },
                  },
                  riskAssessment: { type: ['string', 'null'], description: 'the FHIR RiskAssessment reference, when written' },
                  sourceSopInstanceUIDs: { type: 'array', items: { type: 'string' } },
                  written: { type: 'object', properties: { pacs: { type: 'boolean' }, fhir: { type: 'boolean' }, metadata: { type: 'boolean' } } },
                  notes: { type: 'array', items: { type: 'string' } },
                  createdAt: ms,
                },
              },
            ],
          },
          images: {
            type: 'object',
            properties: { thumbnail: { type: ['string', 'null'] }, saliency: { type: ['string', 'null'] } },
            description: 'URLs of the stored images, null when none',
          },
          feedback: { type: 'array', items: ref('Feedback') },
          retraction: {
            oneOf: [
              { type: 'null' },
              {
                type: 'object',
                required: ['cause', 'state', 'resultKey', 'coversLatestResult', 'requestedAt', 'written', 'notes'],
                properties: {
                  cause: ref('RetractionCause'),
                  state: ref('RetractionState'),
                  resultKey: { type: 'string', description: 'the result marked wrong' },
                  coversLatestResult: { type: 'boolean', description: 'false once a newer result (new inputs) replaced the retracted one' },
                  requestedAt: ms,
                  doneAt: ms,
                  errorCode: { type: 'string' },
                  lastError: { type: 'string' },
                  written: { type: 'object', properties: { pacs: { type: 'boolean' }, fhir: { type: 'boolean' }, metadata: { type: 'boolean' } } },
                  notes: { type: 'array', items: { type: 'string' } },
                },
              },
            ],
          },
        },
      },
      Requeued: {
        type: 'object',
        required: ['studyInstanceUID', 'state', 'message'],
        properties: { studyInstanceUID: { type: 'string' }, state: ref('JobState'), message: { type: 'string' } },
      },
      NewFeedback: {
        type: 'object',
        additionalProperties: false,
        required: ['findingCode', 'verdict'],
        properties: {
          findingCode: { type: 'string', description: "a finding code of the study's latest result" },
          verdict: { type: 'string', enum: ['accept', 'reject'] },
          note: { type: 'string', maxLength: MAX_NOTE },
          by: { type: 'string', maxLength: 100, description: 'who gives it (self-declared); "anonymous" when absent' },
        },
      },
      Feedback: {
        type: 'object',
        required: ['id', 'studyInstanceUID', 'findingCode', 'verdict', 'by', 'createdAt'],
        properties: {
          id: { type: 'string' },
          studyInstanceUID: { type: 'string' },
          findingCode: { type: 'string' },
          verdict: { type: 'string', enum: ['accept', 'reject'] },
          note: { type: 'string' },
          by: { type: 'string' },
          resultKey: { type: 'string' },
          createdAt: ms,
        },
      },
    },
  },
} as const;
