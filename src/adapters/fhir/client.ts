import { TriageError } from '../../domain/errors.ts';
import type { FhirResource } from '../../domain/types.ts';
import type { CircuitBreaker } from '../http/breaker.ts';
import { HttpClient, responseError, type HttpRequest, type HttpResponse, type TlsOptions } from '../http/client.ts';
import type { SmartAuth } from './smart-auth.ts';

export interface FhirOptions {
  baseUrl: string;
  /** A fixed bearer token (`fhir.auth.token`). */
  token?: string;
  /** SMART Backend Services tokens (`fhir.auth.smart`); takes the place of `token`. */
  smart?: SmartAuth;
  tls?: TlsOptions;
  timeoutMs: number;
  /** Pages followed at most per search (Bundle `next` links). */
  maxPages?: number;
  /** An answer larger than this is aborted while it streams in (limits.upstream.fhirResponseBytes). */
  maxResponseBytes?: number;
  /** Entries per Bundle page at most (limits.upstream.fhirBundleEntries). */
  maxBundleEntries?: number;
}

interface Bundle {
  resourceType: 'Bundle';
  entry?: { resource?: FhirResource; search?: { mode?: string } }[];
  link?: { relation: string; url: string }[];
}

const FHIR_JSON = 'application/fhir+json';

/** Search parameters as FHIR wants them: a list repeats the parameter (AND), commas inside a value mean OR. */
export function searchQuery(params: Record<string, string | number | readonly string[]>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) q.append(key, String(v));
  }
  const text = q.toString();
  return text === '' ? '' : `?${text}`;
}

/**
 * The FHIR adapter, on our node:http client (keep-alive; Node's fetch cost ~33 ms a request on
 * loopback where this costs ~1 ms, and FHIR context is a large share of a study's time). Every
 * failure is a TriageError: 5xx/429/timeouts/refused connections retryable (Retry-After kept),
 * 4xx terminal, a 2xx that is not FHIR JSON FHIR_MALFORMED; one deadline per request.
 */
export class FhirClient {
  private readonly http: HttpClient;
  /** The base URL without a trailing slash: resource paths and the transaction endpoint hang off it. */
  private readonly base: string;
  private readonly origin: string;
  /** The FHIR server's circuit breaker (set by the service). */
  breaker: CircuitBreaker | undefined;
  /** Told of every failed call: the HTTP status, or 'timeout' / 'connection' / 'tls' / 'circuit_open' / 'malformed'. */
  onError: ((target: string, status: number | string) => void) | undefined;

  constructor(private readonly options: FhirOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.origin = new URL(this.base).origin;
    this.http = new HttpClient({
      baseUrl: this.base,
      timeoutMs: options.timeoutMs,
      name: 'fhir',
      ...(options.token !== undefined && !options.smart ? { auth: { token: options.token } } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
      ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}),
    });
    this.maxEntries = options.maxBundleEntries ?? 1000;
  }

  private readonly maxEntries: number;

  /** How this client authenticates, for `doctor` (never the secret). */
  get authKind(): string {
    if (this.options.smart) return `SMART backend services (client ${this.options.smart.clientId})`;
    return this.options.token !== undefined ? 'bearer token' : 'none';
  }

  close(): void {
    this.http.close();
    this.options.smart?.close();
  }

  /**
   * One FHIR interaction, through the breaker. With SMART, a 401 means the token was revoked or
   * expired early: it is dropped, a new one fetched, and the request sent once more — only once,
   * so a client the server does not accept fails instead of looping.
   */
  private async call(what: string, req: HttpRequest, bundle = false): Promise<{ value: unknown; res: HttpResponse }> {
    const where = `fhir ${what}`;
    try {
      this.breaker?.before();
    } catch (err) {
      this.onError?.('fhir', 'circuit_open');
      throw err;
    }
    let result: { value: unknown; res: HttpResponse };
    try {
      let res = await this.send(req);
      if (res.res.status === 401 && this.options.smart && res.token !== undefined) {
        this.options.smart.invalidate(res.token);
        res = await this.send(req);
      }
      const value = parseFhir(where, res.res);
      if (bundle) asBundle(where, value);
      result = { value, res: res.res };
    } catch (err) {
      const e = err instanceof TriageError ? err : new TriageError('UPSTREAM_UNAVAILABLE', `${where}: ${(err as Error).message}`, { cause: err, where });
      // A certificate or a refused client is not load on the server: it does not open the circuit.
      this.breaker?.after(e.retryable, e.message);
      this.onError?.('fhir', errorLabel(e));
      throw e;
    }
    this.breaker?.after(false);
    return result;
  }

  private async send(req: HttpRequest): Promise<{ res: HttpResponse; token?: string }> {
    const token = this.options.smart ? await this.options.smart.accessToken() : undefined;
    const headers: Record<string, string> = { accept: FHIR_JSON, ...(req.body !== undefined ? { 'content-type': FHIR_JSON } : {}), ...(req.headers ?? {}) };
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    const res = await this.http.request({ ...req, headers });
    return token === undefined ? { res } : { res, token };
  }

  private url(path: string): string {
    return `${this.base}/${path}`;
  }

  /**
   * A `next` link to follow, resolved against the base. Only links on the base URL's origin are
   * followed: the request carries our bearer token (and client certificate), and a link is
   * server-supplied data — a compromised or misconfigured server must not be able to send our
   * credentials to another host.
   */
  private nextLink(bundle: Bundle, where: string): string | undefined {
    const href = (bundle.link ?? []).find((l) => l.relation === 'next')?.url;
    if (href === undefined) return undefined;
    let next: URL;
    try {
      next = new URL(href, `${this.base}/`);
    } catch (err) {
      // Not quoted: a link carries the search's parameters, which may name a patient.
      throw new TriageError('FHIR_INVALID', `${where}: the next link is not a URL`, { cause: err, where });
    }
    if (next.origin !== this.origin) {
      throw new TriageError(
        'UPSTREAM_REJECTED',
        `${where}: the server's next link points to ${next.origin}, not to ${this.origin}; not followed, so our token is not sent there (set the server's public base URL, or fhir.baseUrl to match it)`,
        { where },
      );
    }
    return next.toString();
  }

  /** Type-level search; follows `next` links up to maxPages; only `match` entries are returned. */
  async search(resourceType: string, searchParams: Record<string, string | number | string[]>, max = 100): Promise<FhirResource[]> {
    const out: FhirResource[] = [];
    let what = `search ${resourceType}`;
    let bundle = (await this.call(what, { path: this.url(`${encodeURIComponent(resourceType)}${searchQuery(searchParams)}`) }, true)).value as Bundle;
    for (let page = 1; ; page++) {
      const entries = bundle.entry ?? [];
      if (entries.length > this.maxEntries) {
        throw new TriageError('UPSTREAM_TOO_LARGE', `fhir ${what}: a page of ${entries.length} entries, more than limits.upstream.fhirBundleEntries (${this.maxEntries})`, { where: 'fhir' });
      }
      for (const entry of entries) {
        if (entry.resource && (entry.search?.mode ?? 'match') === 'match') out.push(entry.resource);
      }
      if (out.length >= max || page >= (this.options.maxPages ?? 10)) break;
      const next = this.nextLink(bundle, `fhir ${what}`);
      if (next === undefined) break;
      what = `search ${resourceType} (page ${page + 1})`;
      bundle = (await this.call(what, { path: next }, true)).value as Bundle;
    }
    return out.slice(0, max);
  }

  async transaction(bundle: FhirResource): Promise<FhirResource> {
    return (await this.call('transaction', { method: 'POST', path: this.base, body: JSON.stringify(bundle) })).value as FhirResource;
  }

  /** Update with optimistic locking: If-Match on the version read, so a concurrent edit is not overwritten. */
  async update(resource: FhirResource): Promise<FhirResource> {
    const version = resource.meta?.versionId;
    const { value, res } = await this.call(`update ${resource.resourceType}`, {
      method: 'PUT',
      path: this.url(`${encodeURIComponent(resource.resourceType)}/${encodeURIComponent(resource.id ?? '')}`),
      body: JSON.stringify(resource),
      ...(version ? { headers: { 'if-match': `W/"${version}"` } } : {}),
    });
    const answer = value as FhirResource;
    // A server told `Prefer: return=minimal` (or configured so) answers without a body: the new
    // version is then only in the ETag.
    if (answer.resourceType === undefined) {
      const etag = /^W\/"(.+)"$/.exec(String(res.headers.etag ?? ''))?.[1];
      return { ...resource, ...(etag !== undefined ? { meta: { ...resource.meta, versionId: etag } } : {}) };
    }
    return answer;
  }

  async capabilities(): Promise<FhirResource> {
    return (await this.call('capabilities', { path: this.url('metadata') })).value as FhirResource;
  }
}

/**
 * The body of a FHIR answer. An empty 2xx body is an empty object (a write with
 * return=minimal); anything else that is not a JSON object is not a FHIR server answering (a proxy
 * page, a truncated body) and must not be mistaken for an empty result.
 */
function parseFhir(where: string, res: HttpResponse): unknown {
  if (res.status < 200 || res.status >= 300) throw responseError(where, res);
  if (res.body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(res.body.toString('utf8'));
  } catch (err) {
    throw new TriageError('FHIR_MALFORMED', `${where} answered ${res.status} with a body that is not JSON`, { cause: err, where, status: res.status });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TriageError('FHIR_MALFORMED', `${where}: the answer is not a FHIR JSON resource`, { where, status: res.status });
  }
  return value;
}

/** A search answered with anything but a Bundle is as unusable as garbage. */
function asBundle(where: string, value: unknown): void {
  const type = (value as { resourceType?: unknown }).resourceType;
  if (type !== 'Bundle') {
    throw new TriageError('FHIR_MALFORMED', `${where}: the answer is ${typeof type === 'string' ? `a ${type}` : 'a resource without a type'}, not a Bundle`, { where });
  }
}

function errorLabel(e: TriageError): number | string {
  if (e.code === 'FHIR_MALFORMED') return 'malformed';
  if (e.status !== undefined) return e.status;
  if (e.code === 'UPSTREAM_TIMEOUT') return 'timeout';
  if (e.code === 'TLS_FAILED') return 'tls';
  return 'connection';
}
