import { Client } from 'fhir-kit-client';
import { TriageError, codeForHttpStatus } from '../../domain/errors.ts';
import type { FhirResource } from '../../domain/types.ts';
import type { CircuitBreaker } from '../http/breaker.ts';

export interface FhirOptions {
  baseUrl: string;
  token?: string;
  timeoutMs: number;
  /** Pages followed at most per search (Bundle `next` links). */
  maxPages?: number;
}

interface Bundle {
  resourceType: 'Bundle';
  entry?: { resource?: FhirResource; search?: { mode?: string } }[];
  link?: { relation: string; url: string }[];
}

/**
 * The FHIR adapter: fhir-kit-client for the requests, with every failure turned into a
 * TriageError (5xx/429/network retryable, 4xx terminal) and a timeout on every call.
 */
export class FhirClient {
  private readonly client: Client;
  /** The FHIR server's circuit breaker (set by the service). */
  breaker: CircuitBreaker | undefined;
  /** Told of every failed call: the HTTP status, or 'timeout' / 'connection' / 'circuit_open' / 'malformed'. */
  onError: ((target: string, status: number | string) => void) | undefined;

  constructor(private readonly options: FhirOptions) {
    this.client = new Client({ baseUrl: options.baseUrl, ...(options.token ? { bearerToken: options.token } : {}) });
  }

  private async call<T>(what: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      this.breaker?.before();
    } catch (err) {
      this.onError?.('fhir', 'circuit_open');
      throw err;
    }
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    let value: T;
    try {
      value = await run(signal);
    } catch (err) {
      const e = toTriageError(err, `fhir ${what}`, this.options.timeoutMs);
      this.breaker?.after(e.retryable, e.message);
      this.onError?.('fhir', e.code === 'FHIR_MALFORMED' ? 'malformed' : (e.status ?? (e.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : 'connection')));
      throw e;
    }
    this.breaker?.after(false);
    // fhir-kit-client hands back a string when the body is not JSON: a server answering garbage
    // is not a FHIR server answering, and must not be mistaken for an empty result.
    if (typeof value === 'string' || value === null || typeof value !== 'object') {
      this.onError?.('fhir', 'malformed');
      throw new TriageError('FHIR_MALFORMED', `fhir ${what}: the answer is not a FHIR JSON resource`, { where: `fhir ${what}` });
    }
    return value;
  }

  /** Type-level search; follows `next` links up to maxPages; only `match` entries are returned. */
  async search(resourceType: string, searchParams: Record<string, string | number | string[]>, max = 100): Promise<FhirResource[]> {
    const out: FhirResource[] = [];
    let bundle = await this.call(`search ${resourceType}`, (signal) =>
      this.client.search({ resourceType, searchParams, options: { signal } }),
    ) as unknown as Bundle;
    for (let page = 1; ; page++) {
      for (const entry of bundle.entry ?? []) {
        if (entry.resource && (entry.search?.mode ?? 'match') === 'match') out.push(entry.resource);
      }
      const hasNext = (bundle.link ?? []).some((l) => l.relation === 'next');
      if (!hasNext || out.length >= max || page >= (this.options.maxPages ?? 10)) break;
      const current = bundle;
      bundle = (await this.call(`search ${resourceType} (page ${page + 1})`, (signal) =>
        this.client.nextPage({ bundle: current as never, options: { signal } }) as Promise<unknown>,
      )) as Bundle;
    }
    return out.slice(0, max);
  }

  async transaction(bundle: FhirResource): Promise<FhirResource> {
    return (await this.call('transaction', (signal) => this.client.transaction({ body: bundle as never, options: { signal } }))) as FhirResource;
  }

  /** Update with optimistic locking: If-Match on the version read, so a concurrent edit is not overwritten. */
  async update(resource: FhirResource): Promise<FhirResource> {
    const version = resource.meta?.versionId;
    return (await this.call(`update ${resource.resourceType}`, (signal) =>
      this.client.update({
        resourceType: resource.resourceType,
        id: resource.id ?? '',
        body: resource as never,
        options: { signal, ...(version ? { headers: { 'If-Match': `W/"${version}"` } } : {}) },
      }),
    )) as FhirResource;
  }

  async capabilities(): Promise<FhirResource> {
    return (await this.call('capabilities', (signal) => this.client.capabilityStatement({ signal }))) as FhirResource;
  }
}

function toTriageError(err: unknown, where: string, timeoutMs: number): TriageError {
  if (err instanceof TriageError) return err;
  const e = err as {
    name?: string;
    message?: string;
    response?: { status?: number; data?: unknown };
    config?: { headers?: { get?: (name: string) => string | null } };
    cause?: unknown;
  };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new TriageError('UPSTREAM_TIMEOUT', `${where}: no answer within ${timeoutMs} ms`, { cause: err, where });
  }
  const status = e.response?.status;
  if (typeof status === 'number') {
    // fhir-kit-client reports a body it could not parse as JSON with the status it came with.
    if (status >= 200 && status < 300) {
      return new TriageError('FHIR_MALFORMED', `${where} answered ${status} with a body that is not JSON`, { cause: err, where, status });
    }
    const detail = typeof e.response?.data === 'string' ? e.response.data : JSON.stringify(e.response?.data ?? '');
    const retryAfter = Number(e.config?.headers?.get?.('retry-after') ?? Number.NaN);
    return new TriageError(codeForHttpStatus(status), `${where} answered ${status}: ${detail.slice(0, 300)}`, {
      cause: err,
      where,
      status,
      ...(Number.isFinite(retryAfter) ? { retryAfterS: retryAfter } : {}),
    });
  }
  return new TriageError('UPSTREAM_UNAVAILABLE', `${where}: ${e.message ?? String(err)}`, { cause: err, where });
}
