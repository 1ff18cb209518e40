import express, { type NextFunction, type Request, type Response } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { asTriageError, TriageError } from '../domain/errors.ts';
import type { ImageKind, JobState } from '../domain/records.ts';
import type { Store } from '../state/ports.ts';
import type { OwnSeries } from '../pipeline/ingest/own-writes.ts';
import { secretMatches, WEBHOOK_SECRET_HEADER, webhookBodySchema, webhookRef } from '../pipeline/ingest/webhook.ts';
import { openApiDocument } from './openapi.ts';
import { checkStudyUid, jobsQuerySchema, parseFeedback, parseWorklistQuery, problemsOf, RequestInvalid } from './validation.ts';
import { z } from 'zod';
import { MAX_RETRACTION_REASON, requestMarkedWrong } from '../pipeline/retract.ts';

/** Body of POST /api/studies/{uid}/retract. */
export const retractSchema = z.strictObject({
  reason: z
    .string({ error: 'must be a string' })
    .trim()
    .min(1, 'is required: say why the result is wrong')
    .max(MAX_RETRACTION_REASON, `must be at most ${MAX_RETRACTION_REASON} characters`),
  by: z.string({ error: 'must be a string' }).trim().min(1).max(100, 'must be at most 100 characters').optional(),
});

export interface AppOptions {
  store: Store;
  /** Bearer token for /api routes; when absent the API is open (bind it to loopback). */
  token?: string;
  shadow: boolean;
  status: () => { provider: string; model: string };
  /** Where API errors are logged (event, code, route pattern; never bodies or patient data). */
  log?: Logger;
  /** Largest JSON body accepted (express/body-parser syntax); default 16kb. */
  bodyLimit?: string;
  /** Prometheus exposition for GET /metrics (absent: 404). */
  metrics?: { contentType: string; text: () => Promise<string> };
  /** Readiness for GET /readyz: the upstreams and the model (absent: ready when the process is up). */
  ready?: () => Promise<{ ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> }>;
  /** `POST /webhooks/orthanc` (ingest mode `webhook`): the shared secret and the body limit (default 4kb). Absent: no route. */
  webhook?: {
    secret: string;
    bodyLimit?: string;
    /** ingest.stableAgeS in ms: NewInstance posts settle this long; absent, they are refused (409). */
    stableAgeMs?: number;
    /** Our own SR and rejection-note series: a NewInstance of one is acknowledged and ignored. */
    isOwnSeries?: OwnSeries;
  };
  /** Told after a study is enqueued through the API (webhook), so that idle workers start at once. */
  onEnqueued?: () => void;
  /**
   * Why retractions cannot run here, when they cannot (the folder mode alone has no PACS and
   * writes its results as files): the retract route then answers 409 instead of queueing work
   * that nothing would ever do.
   */
  retractUnavailable?: string;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The worklist page: three static files, read once. */
const PAGE: Record<string, { type: string; body: Buffer }> = Object.fromEntries(
  (
    [
      ['/', 'index.html', 'text/html; charset=utf-8'],
      ['/app.js', 'app.js', 'text/javascript; charset=utf-8'],
      ['/view.js', 'view.js', 'text/javascript; charset=utf-8'],
      ['/app.css', 'app.css', 'text/css; charset=utf-8'],
    ] as const
  ).map(([route, file, type]) => [route, { type, body: readFileSync(new URL(`./page/${file}`, import.meta.url)) }]),
);

/** Same origin only, no inline script, images from the API as blob: URLs, no framing. */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** body-parser's errors (malformed JSON, too large, bad charset) carry a 4xx status and a type. */
function bodyParserError(err: unknown): { status: number; message: string } | undefined {
  const e = err as { status?: unknown; type?: unknown; limit?: unknown };
  if (typeof e?.type !== 'string' || typeof e.status !== 'number' || e.status < 400 || e.status >= 500) return undefined;
  if (e.type === 'entity.parse.failed') return { status: 400, message: 'the body is not valid JSON' };
  if (e.type === 'entity.too.large') return { status: 413, message: `the body is larger than ${String(e.limit)} bytes` };
  return { status: e.status, message: `the body could not be read (${e.type})` };
}

/** The express app (no listen here, so tests drive it without a socket). */
export function createApp(options: AppOptions): express.Express {
  const { store } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use((_req, res, next) => {
    res.set({ 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    next();
  });

  app.get('/healthz', async (_req, res) => {
    res.json({ status: 'ok', shadow: options.shadow, ...options.status() });
  });
  app.get('/readyz', async (_req, res) => {
    const r = options.ready ? await options.ready() : { ready: true, checks: {} };
    res.status(r.ready ? 200 : 503).set('cache-control', 'no-store').json({ status: r.ready ? 'ready' : 'not ready', checks: r.checks });
  });
  if (options.metrics) {
    const metrics = options.metrics;
    app.get('/metrics', async (_req, res) => {
      res.set({ 'content-type': metrics.contentType, 'cache-control': 'no-store' }).send(await metrics.text());
    });
  }
  app.get('/openapi.json', async (_req, res) => {
    res.json(openApiDocument);
  });
  for (const [route, file] of Object.entries(PAGE)) {
    app.get(route, async (_req, res) => {
      res.set({ 'content-type': file.type, 'content-security-policy': PAGE_CSP, 'x-frame-options': 'DENY', 'cache-control': 'no-cache' }).send(file.body);
    });
  }

  // Ingest mode (c): Orthanc's Lua script posts the study here with the shared secret: when it
  // is stable (OnStableStudy), or each instance (OnStoredInstance) with ingest.stableAgeS.
  // The secret is checked before the body is read; the body is small and validated.
  if (options.webhook) {
    const hook = options.webhook;
    app.post(
      '/webhooks/orthanc',
      (req: Request, res: Response, next: NextFunction) => {
        res.set('cache-control', 'no-store');
        const given = req.headers[WEBHOOK_SECRET_HEADER];
        if (typeof given !== 'string' || given === '') {
          res.status(401).json({ error: { code: 'UNAUTHORIZED', message: `the ${WEBHOOK_SECRET_HEADER} header is required` } });
          return;
        }
        if (!secretMatches(given, hook.secret)) {
          options.log?.warn({ event: 'webhook.forbidden', ip: req.ip }, 'webhook call with a wrong secret');
          res.status(403).json({ error: { code: 'FORBIDDEN', message: 'wrong secret' } });
          return;
        }
        next();
      },
      express.json({ limit: hook.bodyLimit ?? '4kb', type: () => true }),
      async (req: Request, res: Response) => {
        const parsed = webhookBodySchema.safeParse(req.body);
        if (!parsed.success) throw new RequestInvalid('invalid webhook body', problemsOf(parsed.error.issues));
        const body = parsed.data;
        const ref = webhookRef(body);
        if (body.ChangeType === 'NewInstance') {
          if (hook.stableAgeMs === undefined) {
            res.status(409).json({
              error: {
                code: 'CONFLICT',
                message: 'per-instance posts need ingest.stableAgeS (how long a study settles after its last instance); set it, or let the Lua script post StableStudy',
              },
            });
            return;
          }
          if (hook.isOwnSeries?.(body.StudyInstanceUID, body.SeriesInstanceUID ?? '')) {
            // Our own SR (or rejection note) arriving: nothing new to read.
            options.log?.debug({ event: 'webhook.own_instance', study: body.StudyInstanceUID }, 'our own result arrived; not enqueued');
            res.status(200).json({ studyInstanceUID: ref.studyInstanceUID, ignored: 'our own result' });
            return;
          }
        }
        const settleMs = body.ChangeType === 'NewInstance' ? hook.stableAgeMs : undefined;
        await store.enqueue([ref], undefined, settleMs !== undefined ? { settleMs } : {});
        options.onEnqueued?.();
        // Per instance: debug, or a 500-image CT writes 500 lines.
        const line = { event: 'ingest.enqueued', mode: 'webhook', study: ref.studyInstanceUID, change: body.ChangeType };
        if (settleMs === undefined) options.log?.info(line, 'study enqueued by webhook');
        else options.log?.debug({ ...line, settleMs }, 'study enqueued by webhook (settling)');
        res.status(202).json({ studyInstanceUID: ref.studyInstanceUID, state: (await store.get(ref.studyInstanceUID))?.state ?? 'queued' });
      },
    );
  }

  // No CORS headers anywhere: browsers keep other origins out. Nothing under /api is cached.
  app.use('/api', (req: Request, res: Response, next: NextFunction) => {
    res.set('cache-control', 'no-store');
    if (options.token !== undefined && !tokenMatches(req.headers.authorization, options.token)) {
      res.status(401).set('www-authenticate', 'Bearer').json({ error: { code: 'UNAUTHORIZED', message: 'a valid bearer token is required' } });
      return;
    }
    next();
  });
  app.use('/api', express.json({ limit: options.bodyLimit ?? '16kb' }));

  app.get('/api/worklist', async (req, res) => {
    const query = parseWorklistQuery(req.query);
    const { limit, offset, ...filter } = query;
    res.json({ shadow: options.shadow, total: await store.countWorklist(filter), limit, offset, items: await store.worklist(query) });
  });

  app.get('/api/jobs', async (req, res) => {
    const parsed = jobsQuerySchema.safeParse(req.query);
    if (!parsed.success) throw new RequestInvalid('invalid jobs query', problemsOf(parsed.error.issues));
    const state: JobState | undefined = parsed.data.state;
    res.json({ items: await store.jobs(state === undefined ? {} : { state }) });
  });

  const knownStudy = async (req: Request): Promise<string> => {
    const uid = checkStudyUid(String(req.params['uid']));
    if (!await store.get(uid)) throw new TriageError('NOT_FOUND', `no study ${uid} in the store`, { where: 'api' });
    return uid;
  };

  app.get('/api/studies/:uid', async (req, res) => {
    const uid = checkStudyUid(String(req.params['uid']));
    const record = await store.study(uid);
    if (!record) throw new TriageError('NOT_FOUND', `no study ${uid} in the store`, { where: 'api' });
    const r = record.result;
    const base = `/api/studies/${uid}`;
    const image = async (kind: ImageKind): Promise<string | null> => ((await store.getImage(uid, kind)) ? `${base}/${kind}.png` : null);
    res.json({
      studyInstanceUID: uid,
      shadow: options.shadow,
      job: record.job,
      result: r
        ? {
            resultKey: r.resultKey,
            priority: r.priority,
            findings: r.findings,
            ...(r.modality ? { modality: r.modality } : {}),
            model: { id: r.modelId, version: r.modelVersion, executionProvider: r.executionProvider },
            sr: {
              seriesInstanceUID: r.srSeriesInstanceUID,
              sopInstanceUID: r.srSopInstanceUID,
              wadoRsPath: `/studies/${uid}/series/${r.srSeriesInstanceUID}/instances/${r.srSopInstanceUID}`,
            },
            riskAssessment: r.riskAssessmentRef ?? null,
            sourceSopInstanceUIDs: r.sourceSopInstanceUIDs,
            written: r.written,
            notes: r.notes,
            createdAt: r.createdAt,
          }
        : null,
      images: { thumbnail: await image('thumbnail'), saliency: await image('saliency') },
      feedback: await store.listFeedback(uid),
      // The reason stays in the store (free text may name a patient); the API says that and when.
      retraction: record.retraction
        ? {
            cause: record.retraction.cause,
            state: record.retraction.state,
            resultKey: record.retraction.resultKey,
            coversLatestResult: record.retraction.resultKey === r?.resultKey,
            requestedAt: record.retraction.requestedAt,
            ...(record.retraction.doneAt !== undefined ? { doneAt: record.retraction.doneAt } : {}),
            ...(record.retraction.errorCode ? { errorCode: record.retraction.errorCode, lastError: record.retraction.lastError } : {}),
            written: record.retraction.written,
            notes: record.retraction.notes,
          }
        : null,
    });
  });

  for (const kind of ['thumbnail', 'saliency'] as const) {
    app.get(`/api/studies/:uid/${kind}.png`, async (req, res) => {
      const uid = await knownStudy(req);
      const image = await store.getImage(uid, kind);
      if (!image) throw new TriageError('NOT_FOUND', `no ${kind} stored for study ${uid}`, { where: 'api' });
      res.set({ 'content-type': 'image/png', 'content-length': String(image.png.length) }).send(image.png);
    });
  }

  app.post('/api/studies/:uid/reprocess', async (req, res) => {
    const uid = await knownStudy(req);
    const job = await store.requeue(uid);
    if (!job) throw new TriageError('NOT_FOUND', `no study ${uid} in the store`, { where: 'api' });
    options.log?.info({ event: 'api.reprocess', study: uid, state: job.state }, 'study queued again');
    res.status(202).json({
      studyInstanceUID: uid,
      state: job.state,
      message: job.state === 'running' ? 'running now; it runs again when this run ends' : 'queued',
    });
  });

  // Retry a job that failed (or is waiting for its next attempt) now, attempts reset — as the
  // CLI's `retry`. A study that is done or running is refused: reprocess is for those.
  // "This result is wrong": retracted as durable work (FHIR entered-in-error, an IOCM rejection
  // note in the PACS), run by the service's next pass and retried while an upstream is away.
  app.post('/api/studies/:uid/retract', async (req, res) => {
    const uid = checkStudyUid(String(req.params['uid']));
    const parsed = retractSchema.safeParse(req.body ?? {});
    if (!parsed.success) throw new RequestInvalid('invalid retract body', problemsOf(parsed.error.issues));
    if (options.retractUnavailable !== undefined) throw new TriageError('CONFLICT', options.retractUnavailable, { where: 'api' });
    const { retraction, created } = await requestMarkedWrong(store, uid, parsed.data.reason, parsed.data.by);
    options.log?.info({ event: 'api.retract', study: uid, created }, created ? 'retraction queued' : 'already retracted');
    res.status(created ? 202 : 200).json({
      studyInstanceUID: uid,
      state: retraction.state,
      resultKey: retraction.resultKey,
      message: created ? 'retraction queued' : `already retracted (${retraction.state}); nothing new is written`,
    });
  });

  app.post('/api/studies/:uid/retry', async (req, res) => {
    const uid = await knownStudy(req);
    const before = await store.get(uid);
    if (before && before.state !== 'failed' && before.state !== 'queued') {
      throw new TriageError('CONFLICT', `study ${uid} is ${before.state}; only a failed or waiting job can be retried (use reprocess)`, { where: 'api' });
    }
    const job = await store.requeue(uid);
    if (!job) throw new TriageError('NOT_FOUND', `no study ${uid} in the store`, { where: 'api' });
    options.log?.info({ event: 'api.retry', study: uid }, 'failed study queued again');
    res.status(202).json({ studyInstanceUID: uid, state: job.state, message: 'queued' });
  });

  app.get('/api/studies/:uid/feedback', async (req, res) => {
    res.json({ items: await store.listFeedback((await knownStudy(req))) });
  });

  app.post('/api/studies/:uid/feedback', async (req, res) => {
    const uid = await knownStudy(req);
    const result = await store.latestResult(uid);
    if (!result) throw new TriageError('NOT_FOUND', `study ${uid} has no result to give feedback on`, { where: 'api' });
    const body = parseFeedback(req.body, (result.findings ?? []).map((f) => f.code));
    const stored = await store.addFeedback({
      studyInstanceUID: uid,
      findingCode: body.findingCode,
      verdict: body.verdict,
      ...(body.note !== undefined && body.note.length > 0 ? { note: body.note } : {}),
      by: body.by ?? 'anonymous',
      resultKey: result.resultKey,
    });
    // The note and the reviewer stay in the store: free text may name a patient.
    options.log?.info({ event: 'api.feedback', study: uid, finding: stored.findingCode, verdict: stored.verdict }, 'feedback stored');
    res.status(201).json(stored);
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: 'no such route' } });
  });
  // express needs all four parameters to treat this as the error handler.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const parser = bodyParserError(err);
    const e = parser ? new TriageError('USAGE', parser.message, { where: 'api' }) : asTriageError(err, 'api');
    const status = parser?.status ?? e.httpStatus;
    const route = typeof req.route?.path === 'string' ? req.route.path : req.baseUrl || 'unrouted';
    if (status >= 500) options.log?.error({ event: 'api.error', code: e.code, method: req.method, route, status, err: e.message }, 'request failed');
    else options.log?.debug({ event: 'api.rejected', code: e.code, method: req.method, route, status }, 'request rejected');
    res.status(status).json({
      error: {
        code: e.code,
        message: status >= 500 ? 'internal error' : e.message,
        ...(e instanceof RequestInvalid ? { problems: e.problems } : {}),
      },
    });
  });
  return app;
}
