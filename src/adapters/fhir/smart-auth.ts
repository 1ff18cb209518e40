import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { readFileSync } from 'node:fs';
import { TriageError, codeForHttpStatus } from '../../domain/errors.ts';
import { HttpClient, retryAfterSeconds, type HttpResponse, type TlsOptions } from '../http/client.ts';

/**
 * SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html): the
 * OAuth client_credentials grant with a private_key_jwt client assertion. No shared secret travels:
 * the token endpoint checks the assertion's signature against the public key registered for the
 * client (by `kid`).
 */
export type SmartAlg = 'RS384' | 'ES384';

/** `fhir.auth.smart` as configured. */
export interface SmartConfig {
  tokenUrl: string;
  clientId: string;
  /** The key by path, or inline (PEM text): one of the two. */
  privateKeyFile?: string | undefined;
  privateKey?: string | undefined;
  keyId: string;
  scope?: string | undefined;
  alg?: SmartAlg | undefined;
}

/**
 * The least the service needs, in SMART v1 scope syntax (which v2 servers also accept): read the
 * clinical context; create Device, RiskAssessment and Provenance — conditional creates, which
 * search first, hence read on those too; and update ServiceRequest only when the priority is
 * written to the order.
 */
export function defaultSmartScope(writeOrderPriority: boolean): string {
  const read = ['Patient', 'ServiceRequest', 'DiagnosticReport', 'Observation', 'ImagingStudy', 'Device', 'RiskAssessment', 'Provenance'];
  const write = ['Device', 'RiskAssessment', 'Provenance', ...(writeOrderPriority ? ['ServiceRequest'] : [])];
  return [...read.map((r) => `system/${r}.read`), ...write.map((r) => `system/${r}.write`)].join(' ');
}

export interface SmartKey {
  key: KeyObject;
  alg: SmartAlg;
}

/**
 * Reads and checks the signing key at start: RS384 needs an RSA key, ES384 an EC key on P-384;
 * without `alg` the key decides. Problems go to `problems` with their config path.
 */
export function readSmartKey(config: SmartConfig, at: string, problems: string[]): SmartKey | undefined {
  const source = config.privateKey !== undefined ? 'the inline privateKey' : String(config.privateKeyFile);
  const field = config.privateKey !== undefined ? `${at}.privateKey` : `${at}.privateKeyFile`;
  let pem: Buffer | string;
  if (config.privateKey !== undefined) pem = config.privateKey;
  else {
    try {
      pem = readFileSync(String(config.privateKeyFile));
    } catch (err) {
      problems.push(`  - ${field}: cannot read ${source}: ${(err as Error).message}`);
      return undefined;
    }
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    problems.push(`  - ${field}: ${source} is not an unencrypted PEM private key (${(err as Error).message})`);
    return undefined;
  }
  const fits: SmartAlg | undefined =
    key.asymmetricKeyType === 'rsa' ? 'RS384' : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'ES384' : undefined;
  if (fits === undefined) {
    problems.push(`  - ${field}: ${source} must be an RSA key (RS384) or an EC P-384 key (ES384)`);
    return undefined;
  }
  if (config.alg !== undefined && config.alg !== fits) {
    problems.push(`  - ${at}.alg: ${config.alg} does not fit the key in ${source} (${fits} does)`);
    return undefined;
  }
  return { key, alg: fits };
}


/**
 * Lifetime of an assertion. The spec allows at most five minutes; four leave room for our clock
 * running ahead of the token endpoint's.
 */
export const ASSERTION_LIFETIME_S = 240;

export interface AssertionInput {
  clientId: string;
  tokenUrl: string;
  keyId: string;
  key: SmartKey;
  /** Seconds since the epoch. */
  nowS: number;
  /** Unique per assertion: the token endpoint refuses a replayed one. */
  jti: string;
}

/** The signed client assertion (a compact JWS, signed by jose): iss = sub = client id, aud = the token endpoint. */
export function clientAssertion(input: AssertionInput): Promise<string> {
  return new SignJWT({ jti: input.jti })
    .setProtectedHeader({ alg: input.key.alg, kid: input.keyId, typ: 'JWT' })
    .setIssuer(input.clientId)
    .setSubject(input.clientId)
    .setAudience(input.tokenUrl)
    .setExpirationTime(input.nowS + ASSERTION_LIFETIME_S)
    .sign(input.key.key);
}

/** The form the token endpoint gets (application/x-www-form-urlencoded). */
export function tokenRequestBody(scope: string, assertion: string): string {
  return new URLSearchParams({
    grant_type: 'client_credentials',
    scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  }).toString();
}

export interface SmartAuthOptions {
  tokenUrl: string;
  clientId: string;
  keyId: string;
  scope: string;
  key: SmartKey;
  timeoutMs: number;
  /** The FHIR server's TLS settings: the token endpoint is usually behind the same CA. */
  tls?: TlsOptions | undefined;
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number;
}

interface Held {
  token: string;
  /** When to fetch a fresh one (80% of its lifetime). */
  refreshAt: number;
  expiresAt: number;
}

/** Lifetime assumed when the token endpoint leaves out expires_in (which the spec requires). */
const DEFAULT_EXPIRES_S = 300;

/**
 * Access tokens for the FHIR client: fetched on first use, cached, refreshed at 80% of their
 * lifetime, one token request at a time however many callers wait. Neither the token nor the
 * assertion ever appears in an error message.
 */
export class SmartAuth {
  private readonly http: HttpClient;
  private readonly now: () => number;
  private held: Held | undefined;
  private pending: Promise<Held> | undefined;
  /** Token requests sent so far (diagnostics, tests). */
  requests = 0;

  constructor(private readonly options: SmartAuthOptions) {
    this.http = new HttpClient({ baseUrl: options.tokenUrl, timeoutMs: options.timeoutMs, name: 'fhir', ...(options.tls ? { tls: options.tls } : {}) });
    this.now = options.now ?? Date.now;
  }

  get clientId(): string {
    return this.options.clientId;
  }

  async accessToken(): Promise<string> {
    const held = this.held;
    if (held && this.now() < held.refreshAt) return held.token;
    try {
      return (await this.refresh()).token;
    } catch (err) {
      // The token endpoint being down must not stop work while the token in hand is still good.
      if (held && this.now() < held.expiresAt && err instanceof TriageError && err.retryable) return held.token;
      throw err;
    }
  }

  /**
   * The FHIR server refused `token` (401): forget it, so the next accessToken() fetches a new
   * one — unless another caller already replaced it.
   */
  invalidate(token: string): void {
    if (this.held?.token === token) this.held = undefined;
  }

  close(): void {
    this.http.close();
  }

  private refresh(): Promise<Held> {
    // Single flight: concurrent callers share one token request.
    this.pending ??= this.fetchToken().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async fetchToken(): Promise<Held> {
    const { tokenUrl, clientId, keyId, key, scope } = this.options;
    const assertion = await clientAssertion({ clientId, tokenUrl, keyId, key, nowS: Math.floor(this.now() / 1000), jti: randomUUID() });
    this.requests++;
    const res = await this.http.request({
      method: 'POST',
      path: tokenUrl,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: tokenRequestBody(scope, assertion),
    });
    const obtained = this.now();
    const where = `fhir token endpoint ${tokenUrl}`;
    if (res.status < 200 || res.status >= 300) throw tokenError(where, res);
    let answer: { access_token?: unknown; token_type?: unknown; expires_in?: unknown };
    try {
      answer = JSON.parse(res.body.toString('utf8')) as typeof answer;
    } catch (err) {
      // Like a FHIR answer that is not JSON: most likely a proxy page, so worth another try.
      throw new TriageError('UPSTREAM_UNAVAILABLE', `${where} answered ${res.status} with a body that is not JSON`, { cause: err, where, status: res.status });
    }
    if (typeof answer.access_token !== 'string' || answer.access_token === '') {
      throw new TriageError('UPSTREAM_AUTH', `${where} answered ${res.status} without an access_token`, { where, status: res.status });
    }
    if (typeof answer.token_type === 'string' && answer.token_type.toLowerCase() !== 'bearer') {
      throw new TriageError('UPSTREAM_AUTH', `${where} issued a "${answer.token_type}" token; only bearer tokens are supported`, { where, status: res.status });
    }
    const lifetimeS = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : DEFAULT_EXPIRES_S;
    const held = { token: answer.access_token, refreshAt: obtained + lifetimeS * 800, expiresAt: obtained + lifetimeS * 1000 };
    this.held = held;
    return held;
  }
}

/**
 * 5xx, 429 and 408 are the token endpoint's trouble and retried; any other refusal (invalid_client,
 * invalid_scope, an unknown kid) needs an administrator and is terminal, with the OAuth error text.
 */
function tokenError(where: string, res: HttpResponse): TriageError {
  let detail = '';
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { error?: unknown; error_description?: unknown };
    if (typeof body.error === 'string') detail = `: ${body.error}${typeof body.error_description === 'string' ? ` (${body.error_description.slice(0, 300)})` : ''}`;
  } catch {
    // Not an OAuth error body; the status says enough (and the body is not echoed, in case it repeats the assertion).
  }
  const code = codeForHttpStatus(res.status);
  const retryAfter = retryAfterSeconds(res.headers['retry-after']);
  return new TriageError(transientStatus(res.status) ? code : 'UPSTREAM_AUTH', `${where} answered ${res.status}${detail}`, {
    where,
    status: res.status,
    ...(retryAfter === undefined ? {} : { retryAfterS: retryAfter }),
  });
}

function transientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}
