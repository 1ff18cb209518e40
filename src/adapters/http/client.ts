import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { TriageError, codeForHttpStatus } from '../../domain/errors.ts';
import type { CircuitBreaker } from './breaker.ts';

/**
 * A small HTTP client on node:http. Measured against Orthanc 1.10 on loopback, Node's global
 * fetch (undici) spent ~33 ms per request where node:http spent ~1 ms, and dicomweb-client
 * (XMLHttpRequest) both encodes list query parameters as %2C — which Orthanc ignores — and
 * mishandles retrieve with mediaTypes; so the DICOMweb and Orthanc adapters use this instead.
 * Every request has a timeout; every failure becomes a TriageError that knows if it is retryable.
 */
export type Auth = { username: string; password: string } | { token: string } | undefined;

/** TLS material for an https upstream, read from the configured files at start. */
export interface TlsOptions {
  /** PEM CA certificate(s) trusted in place of Node's built-in list. */
  ca?: Buffer;
  /** PEM client certificate (chain) presented when the server asks for one (mutual TLS). */
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
  /** false turns certificate checking off (a test rig only); default true. */
  rejectUnauthorized?: boolean;
}

export interface HttpRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  /**
   * Path and query, appended to the base URL's path; or an absolute URL on the base URL's origin
   * (a FHIR `next` link, a token endpoint).
   */
  path: string;
  query?: Record<string, string | number | readonly (string | number)[] | undefined>;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpClientOptions {
  baseUrl: string;
  auth?: Auth;
  timeoutMs: number;
  /** Name of the upstream for errors and logs ("pacs", "fhir"). */
  name: string;
  /** For an https base URL: CA, client certificate, verification. */
  tls?: TlsOptions;
  /** An answer larger than this is aborted while it streams in (UPSTREAM_TOO_LARGE); default 512 MiB. */
  maxResponseBytes?: number;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 512 * 1024 * 1024;

export function authHeader(auth: Auth): string | undefined {
  if (auth === undefined) return undefined;
  if ('token' in auth) return `Bearer ${auth.token}`;
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

/** Query string with list values joined by a literal comma (DICOMweb includefield style). */
export function buildQuery(query: HttpRequest['query']): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    const joined = Array.isArray(value) ? value.map(String).map(encodeURIComponent).join(',') : encodeURIComponent(String(value));
    parts.push(`${encodeURIComponent(key)}=${joined}`);
  }
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

/** Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterSeconds(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - now) / 1000)) : undefined;
}

/**
 * What may be said of an error answer: an OperationOutcome's issue severities and codes (FHIR's
 * own vocabulary), else nothing. Never the body's text — an OperationOutcome echoing a search, a
 * proxy page, an error page — which can carry a patient's identifiers into the job's reason, the
 * logs and the API.
 */
export function safeDetail(body: Buffer): string {
  if (body.length === 0 || body.length > 1_000_000) return '';
  try {
    const value = JSON.parse(body.toString('utf8')) as { resourceType?: unknown; issue?: unknown };
    if (value?.resourceType !== 'OperationOutcome' || !Array.isArray(value.issue)) return '';
    const token = (v: unknown): string => (typeof v === 'string' && /^[a-z-]{1,32}$/.test(v) ? v : '?');
    return `OperationOutcome ${(value.issue as { severity?: unknown; code?: unknown }[])
      .slice(0, 5)
      .map((i) => `${token(i.severity)}/${token(i.code)}`)
      .join(', ')}`;
  } catch {
    return '';
  }
}

/** A non-2xx answer as a TriageError: 5xx/429 retryable (with Retry-After), 4xx not. */
export function responseError(where: string, res: HttpResponse): TriageError {
  const retryAfter = retryAfterSeconds(res.headers['retry-after']);
  const detail = safeDetail(res.body);
  return new TriageError(codeForHttpStatus(res.status), `${where} answered ${res.status}${detail ? ` (${detail})` : ''}`, {
    where,
    status: res.status,
    ...(retryAfter === undefined ? {} : { retryAfterS: retryAfter }),
  });
}

function tlsAgentOptions(tls: TlsOptions | undefined): https.AgentOptions {
  if (!tls) return {};
  return {
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
    ...(tls.passphrase !== undefined ? { passphrase: tls.passphrase } : {}),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
  };
}

/** OpenSSL's certificate verification results, as Node names them in err.code. */
const CERT_ERRORS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED',
  'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A failure of the TLS handshake itself (a certificate, an alert from the server such as
 * "certificate required", a protocol mismatch), as opposed to the network going away under it —
 * ECONNRESET or a handshake timeout stay transient.
 */
export function isTlsFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string') return false;
  return CERT_ERRORS.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_OSSL_') || code === 'EPROTO';
}

/**
 * Node 20 keeps a pooled socket only while it has more than a second left of the server's
 * announced Keep-Alive timeout; Orthanc announces `timeout=1` (its default KeepAliveTimeout),
 * so Node reused no connection to it at all: measured, every request to Orthanc 1.10 opened and
 * closed its own (~8 a study), costing CPU on both sides. A pooled socket is reused here for
 * half of a short announced timeout instead, so it is never sent on as the server closes it.
 */
/** A reused keep-alive connection that turned out closed (see HttpClient.send). */
class StaleSocket extends Error {}

function keepShortHintedSockets<A extends http.Agent>(agent: A): A {
  const standard = agent.keepSocketAlive.bind(agent);
  agent.keepSocketAlive = (socket) => {
    const res = (socket as unknown as { _httpMessage?: { res?: http.IncomingMessage } })._httpMessage?.res;
    const hint = /^timeout=(\d+)/.exec(String(res?.headers['keep-alive'] ?? ''))?.[1];
    if (hint !== '1') return standard(socket);
    const tcp = socket as Socket;
    tcp.setKeepAlive(true, 1_000);
    tcp.unref();
    // The agent destroys a free socket whose timeout fires.
    tcp.setTimeout(500);
    return true;
  };
  return agent;
}

export class HttpClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly authorization: string | undefined;
  /** The upstream's circuit breaker, shared by every client of that upstream (set by the service). */
  breaker: CircuitBreaker | undefined;
  /** Told of every failed exchange: the HTTP status (>= 400), or 'timeout' / 'connection' / 'tls' / 'circuit_open'. */
  onError: ((target: string, status: number | string) => void) | undefined;

  constructor(private readonly options: HttpClientOptions) {
    this.base = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
    this.agent = keepShortHintedSockets(
      this.base.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...tlsAgentOptions(options.tls) }) : new http.Agent({ keepAlive: true }),
    );
    this.authorization = authHeader(options.auth);
  }

  get name(): string {
    return this.options.name;
  }

  url(path: string): string {
    return new URL(path.replace(/^\//, ''), this.base).toString();
  }

  /**
   * Sends a request; resolves for any HTTP status (use `expectOk` to turn errors into TriageErrors).
   * Through the circuit breaker when there is one: 5xx, 429 and network failures count against it.
   */
  async request(req: HttpRequest): Promise<HttpResponse> {
    try {
      this.breaker?.before();
    } catch (err) {
      this.onError?.(this.options.name, 'circuit_open');
      throw err;
    }
    let res: HttpResponse;
    try {
      res = await this.send(req);
    } catch (err) {
      // A certificate problem (or a refused URL) is not load on the upstream: only transient
      // failures count towards opening the circuit.
      const e = err instanceof TriageError ? err : undefined;
      this.breaker?.after(e?.retryable ?? true, (err as Error).message);
      this.onError?.(this.options.name, e?.code === 'TLS_FAILED' ? 'tls' : e?.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : 'connection');
      throw err;
    }
    const transient = res.status >= 500 || res.status === 429;
    this.breaker?.after(transient, transient ? `${this.options.name} ${req.method ?? 'GET'} ${req.path.split('?')[0]} answered ${res.status}` : undefined);
    if (res.status >= 400) this.onError?.(this.options.name, res.status);
    return res;
  }

  /**
   * A pooled connection the server closed just as we reused it fails with ECONNRESET before any
   * answer. That most likely means the request never reached the server, but not surely, so
   * only a request that is safe to repeat is sent once more (what Node's documentation advises
   * for `reusedSocket`): GET, HEAD, DELETE, and PUT without If-Match. Any other method, and
   * any other failure, is the caller's (a transient error: the job is retried as a whole).
   */
  private async send(req: HttpRequest): Promise<HttpResponse> {
    const method = req.method ?? 'GET';
    const conditional = Object.keys(req.headers ?? {}).some((h) => h.toLowerCase() === 'if-match');
    const repeatable = method === 'GET' || method === 'HEAD' || method === 'DELETE' || (method === 'PUT' && !conditional);
    try {
      return await this.sendOnce(req, repeatable);
    } catch (err) {
      if (!(err instanceof StaleSocket)) throw err;
      return this.sendOnce(req, false);
    }
  }

  private sendOnce(req: HttpRequest, resendable: boolean): Promise<HttpResponse> {
    const target = new URL(req.path.replace(/^\//, '') + buildQuery(req.query), this.base);
    // The authorization header and the client certificate belong to this upstream: an absolute
    // URL elsewhere (a link in an answer) must not receive them.
    if (target.origin !== this.base.origin) {
      return Promise.reject(
        new TriageError('UPSTREAM_REJECTED', `${this.options.name}: refusing to send a request to ${target.origin}, which is not ${this.base.origin}`, {
          where: this.options.name,
        }),
      );
    }
    const headers: Record<string, string> = { ...(req.headers ?? {}) };
    if (this.authorization !== undefined && headers['authorization'] === undefined) headers['authorization'] = this.authorization;
    const body = typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
    if (body !== undefined) headers['content-length'] = String(body.byteLength);
    const timeoutMs = req.timeoutMs ?? this.options.timeoutMs;
    const where = `${this.options.name} ${req.method ?? 'GET'} ${target.pathname}`;
    const transport = target.protocol === 'https:' ? https : http;
    return new Promise<HttpResponse>((resolve, reject) => {
      // A deadline for the whole exchange, not a socket idle timeout: an upstream that drips
      // bytes slowly must not hold a worker forever.
      const timer = setTimeout(() => {
        r.destroy(new TriageError('UPSTREAM_TIMEOUT', `${where}: no complete answer within ${timeoutMs} ms`, { where }));
      }, timeoutMs);
      const max = this.options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
      const tooLarge = (bytes: number): TriageError =>
        new TriageError('UPSTREAM_TOO_LARGE', `${where}: the answer is larger than ${max} bytes (${bytes} seen); aborted`, { where });
      const r = transport.request(target, { method: req.method ?? 'GET', headers, agent: this.agent }, (res) => {
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err instanceof TriageError ? err : new TriageError('UPSTREAM_UNAVAILABLE', `${where}: response failed: ${err.message}`, { cause: err, where }));
        });
        const chunks: Buffer[] = [];
        // Counted as it arrives, not after: an upstream (or something posing as one) must not make
        // us buffer what it likes. A declared length past the cap is refused before any byte.
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > max) {
          res.destroy(tooLarge(declared));
          return;
        }
        let received = 0;
        res.on('data', (c: Buffer) => {
          received += c.byteLength;
          if (received > max) res.destroy(tooLarge(received));
          else chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });
      r.on('error', (err) => {
        clearTimeout(timer);
        if (resendable && r.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET') reject(new StaleSocket());
        else if (err instanceof TriageError) reject(err);
        else if (isTlsFailure(err)) {
          const code = (err as NodeJS.ErrnoException).code;
          reject(new TriageError('TLS_FAILED', `${where}: TLS failed (${code}: ${err.message.replace(/\s+/g, ' ').trim()}); check ${this.options.name}.tls (caFile, certFile/keyFile) and the server's certificate`, { cause: err, where }));
        } else reject(new TriageError('UPSTREAM_UNAVAILABLE', `${where}: ${err.message}`, { cause: err, where }));
      });
      if (body !== undefined) r.end(body);
      else r.end();
    });
  }

  /** Like request, but a non-2xx status becomes a TriageError (5xx/429 retryable, 4xx not). */
  async expectOk(req: HttpRequest): Promise<HttpResponse> {
    const res = await this.request(req);
    if (res.status >= 200 && res.status < 300) return res;
    throw this.errorFor(req, res);
  }

  errorFor(req: HttpRequest, res: HttpResponse): TriageError {
    return responseError(`${this.options.name} ${req.method ?? 'GET'} ${req.path.split('?')[0]}`, res);
  }

  async json<T>(req: HttpRequest): Promise<T> {
    const res = await this.expectOk({ ...req, headers: { accept: 'application/json', ...(req.headers ?? {}) } });
    if (res.body.length === 0) return undefined as T;
    try {
      return JSON.parse(res.body.toString('utf8')) as T;
    } catch (err) {
      throw new TriageError('UPSTREAM_REJECTED', `${this.options.name} ${req.path}: answer is not JSON`, { cause: err });
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
