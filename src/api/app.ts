import express, { type NextFunction, type Request, type Response } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { asTriageError } from '../domain/errors.ts';
import type { JobState, JobStore } from '../state/store.ts';

export interface AppOptions {
  store: JobStore;
  /** Bearer token for /api routes; when absent the API is open (bind it to loopback). */
  token?: string;
  shadow: boolean;
  status: () => { provider: string; model: string };
}

const STATES: readonly JobState[] = ['queued', 'running', 'done', 'failed', 'skipped'];

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The express app (no listen here, so tests drive it without a socket). */
export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '64kb' }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', shadow: options.shadow, ...options.status() });
  });

  app.use('/api', (req: Request, res: Response, next: NextFunction) => {
    if (options.token !== undefined && !tokenMatches(req.headers.authorization, options.token)) {
      res.status(401).set('www-authenticate', 'Bearer').json({ error: { code: 'UNAUTHORIZED', message: 'a valid bearer token is required' } });
      return;
    }
    next();
  });

  app.get('/api/worklist', (_req, res) => {
    res.json({ shadow: options.shadow, items: options.store.worklist() });
  });

  app.get('/api/jobs', (req, res) => {
    const state = req.query['state'];
    if (state !== undefined && !STATES.includes(state as JobState)) {
      res.status(400).json({ error: { code: 'USAGE', message: `state must be one of ${STATES.join(', ')}` } });
      return;
    }
    res.json({ items: options.store.jobs(state === undefined ? {} : { state: state as JobState }) });
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: 'no such route' } });
  });
  // express needs all four parameters to treat this as the error handler.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = asTriageError(err, 'api');
    const status = (err as { status?: number }).status ?? e.httpStatus;
    res.status(status).json({ error: { code: e.code, message: status >= 500 ? 'internal error' : e.message } });
  });
  return app;
}
