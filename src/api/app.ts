/**
 * The HTTP API as an express app (no listen here, so tests drive it without a socket). Routes come
 * from one table (routes.ts): what is registered is what is documented. Safe by default: every
 * /api route and /metrics need a token, every request's Host is checked, and error answers carry
 * codes and our own messages, never an upstream body.
 */
import { logEvent } from '../domain/log-events.ts';
import express, { type NextFunction, type Request, type Response } from 'express';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { asTriageError, TriageError } from '../domain/errors.ts';
import type { Store } from '../state/ports.ts';
import type { OwnSeries } from '../pipeline/ingest/own-writes.ts';
import { secretMatches, WEBHOOK_SECRET_HEADER } from '../pipeline/ingest/webhook.ts';
import { allowedHosts, bearerMatches, hostName } from './auth.ts';
import { openApiDocument } from './openapi.ts';
import { expressPath, ROUTES, type Access } from './routes.ts';
import { studyHandlers, type Handler } from './study-routes.ts';
import { RequestInvalid } from './validation.ts';
import { webhookHandler } from './webhook-route.ts';

export { retractSchema } from './schemas.ts';

export interface AppOptions {
  store: Store;
  /**
   * Bearer token for /api routes and /metrics. Absent: those routes are open — only with
   * api.auth `none`, which the configuration allows on a loopback host alone.
   */
  token?: string;
  /** A second token that reads /metrics and /readyz details, and nothing else. */
  metricsToken?: string;
  /** api.host (its name is accepted as Host) and api.allowedHosts; default: loopback names only. */
  hosts?: { host: string; allowed: readonly string[] };
  shadow: boolean;
  status: () => { provider: string; model: string };
  /** Where API errors are logged (event, code, route pattern; never bodies or patient data). */
  log?: Logger;
  /** Largest JSON body accepted (express/body-parser syntax); default 16kb. */
  bodyLimit?: string;
  /** Prometheus exposition for GET /metrics (absent: 404). */
  metrics?: { contentType: string; text: () => Promise<string> };
  /** Readiness for GET /readyz (absent: ready when the process is up). Details only go to a caller with a token. */
  ready?: () => Promise<{ ready: boolean; checks: Record<string, { ok: boolean; warning?: boolean; detail?: string }> }>;
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
  /** Why retractions cannot run here (the folder mode alone has no PACS): the retract route answers 409. */
  retractUnavailable?: string;
  /** api.viewerUrlTemplate: the worklist's "open" link per study (absent: none). */
  viewerUrlTemplate?: string;
  /** api.showPatientIdentity: the patient's name and ID in the answers (default: never). */
  showPatientIdentity?: boolean;
}

/** The worklist page: static files, read once. */
const PAGE: Record<string, { type: string; body: Buffer }> = Object.fromEntries(
  (
    [
      ['/', 'index.html', 'text/html; charset=utf-8'],
      ['/app.js', 'app.js', 'text/javascript; charset=utf-8'],
      ['/view.js', 'view.js', 'text/javascript; charset=utf-8'],
      ['/filters.js', 'filters.js', 'text/javascript; charset=utf-8'],
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

function unauthorized(res: Response): void {
  res.status(401).set('www-authenticate', 'Bearer').json({ error: { code: 'UNAUTHORIZED', message: 'a valid bearer token is required' } });
}

export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const hosts = allowedHosts(options.hosts?.host ?? '127.0.0.1', options.hosts?.allowed ?? []);
  const hasToken = (req: Request, access: Access): boolean =>
    options.token === undefined || bearerMatches(req.headers.authorization, access === 'metrics' ? [options.token, options.metricsToken] : [options.token]);

  app.use((req: Request, res: Response, next: NextFunction) => {
    res.set({ 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' });
    // DNS rebinding: a page elsewhere that points its own name at this address still sends that name.
    const name = hostName(req.headers.host);
    if (name === undefined || !hosts.has(name)) {
      logEvent(options.log, 'api.host_refused', { method: req.method });
      res.status(421).json({ error: { code: 'MISDIRECTED', message: 'this service does not answer to that host name (api.allowedHosts)' } });
      return;
    }
    next();
  });
  // No CORS headers anywhere: browsers keep other origins out. Nothing under /api is cached, and
  // no /api path — known or not — answers anything but 401 without the token.
  app.use('/api', (req: Request, res: Response, next: NextFunction) => {
    res.set('cache-control', 'no-store');
    if (!hasToken(req, 'token')) return unauthorized(res);
    next();
  });
  app.use('/api', express.json({ limit: options.bodyLimit ?? '16kb' }));

  const handlers: Record<string, Handler | undefined> = {
    health: async (_req, res) => {
      res.json({ status: 'ok', shadow: options.shadow, ...options.status() });
    },
    ready: async (req, res) => {
      const r = options.ready ? await options.ready() : { ready: true, checks: {} };
      // Without a token: ready or not, nothing about the upstreams.
      const details = options.token !== undefined && bearerMatches(req.headers.authorization, [options.token, options.metricsToken]);
      res
        .status(r.ready ? 200 : 503)
        .set('cache-control', 'no-store')
        .json({ status: r.ready ? 'ready' : 'not ready', ...(details || options.token === undefined ? { checks: r.checks } : {}) });
    },
    metrics: options.metrics
      ? async (_req, res) => {
          const m = options.metrics!;
          res.set({ 'content-type': m.contentType, 'cache-control': 'no-store' }).send(await m.text());
        }
      : undefined,
    openapi: async (_req, res) => {
      res.json(openApiDocument);
    },
    ...Object.fromEntries(
      (['page', 'pageScript', 'pageView', 'pageFilters', 'pageStyle'] as const).map((id) => {
        const file = PAGE[ROUTES.find((r) => r.id === id)?.path ?? ''];
        const handler: Handler = async (_req, res) => {
          if (!file) throw new TriageError('NOT_FOUND', 'no such file');
          res.set({ 'content-type': file.type, 'content-security-policy': PAGE_CSP, 'x-frame-options': 'DENY', 'cache-control': 'no-cache' }).send(file.body);
        };
        return [id, handler];
      }),
    ),
    ...studyHandlers({
      store: options.store,
      shadow: options.shadow,
      log: options.log,
      retractUnavailable: options.retractUnavailable,
      viewerUrlTemplate: options.viewerUrlTemplate,
      showPatientIdentity: options.showPatientIdentity,
    }),
    orthancWebhook: options.webhook ? webhookHandler(options.webhook, options) : undefined,
  };

  for (const route of ROUTES) {
    const handler = handlers[route.id];
    if (!handler) continue; // a part that is not configured (metrics, the webhook) is not served
    const guard = (req: Request, res: Response, next: NextFunction): void => {
      if ((route.access === 'token' || route.access === 'metrics') && !hasToken(req, route.access)) return unauthorized(res);
      next();
    };
    const body = route.access === 'webhook' && options.webhook ? [express.json({ limit: options.webhook.bodyLimit ?? '4kb', type: () => true })] : [];
    const secret = route.access === 'webhook' ? [webhookSecretGuard(options)] : [];
    app[route.method](expressPath(route.path), guard, ...secret, ...body, (req: Request, res: Response) => handler(req, res));
  }

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: 'no such route' } });
  });
  // express needs all four parameters to treat this as the error handler.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const parser = bodyParserError(err);
    const e = parser ? new TriageError('USAGE', parser.message, { where: 'api' }) : asTriageError(err, 'api');
    const status = parser?.status ?? e.httpStatus;
    const route = typeof req.route?.path === 'string' ? req.route.path : req.baseUrl || 'unrouted';
    if (status >= 500) logEvent(options.log, 'api.error', { code: e.code, method: req.method, route, status });
    else logEvent(options.log, 'api.rejected', { code: e.code, method: req.method, route, status });
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

/** The webhook's shared secret, checked before the body is read. */
function webhookSecretGuard(options: AppOptions) {
  return (req: Request, res: Response, next: NextFunction): void => {
    res.set('cache-control', 'no-store');
    const hook = options.webhook;
    if (!hook) return next();
    const given = req.headers[WEBHOOK_SECRET_HEADER];
    if (typeof given !== 'string' || given === '') {
      res.status(401).json({ error: { code: 'UNAUTHORIZED', message: `the ${WEBHOOK_SECRET_HEADER} header is required` } });
      return;
    }
    if (!secretMatches(given, hook.secret)) {
      logEvent(options.log, 'webhook.forbidden', {});
      res.status(403).json({ error: { code: 'FORBIDDEN', message: 'wrong secret' } });
      return;
    }
    next();
  };
}
