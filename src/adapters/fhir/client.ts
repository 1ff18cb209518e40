import { Client } from 'fhir-kit-client';
import { TriageError, codeForHttpStatus } from '../../domain/errors.ts';
import type { FhirResource } from '../../domain/types.ts';

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

  constructor(private readonly options: FhirOptions) {
    this.client = new Client({ baseUrl: options.baseUrl, ...(options.token ? { bearerToken: options.token } : {}) });
  }

  private async call<T>(what: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    try {
      return await run(signal);
    } catch (err) {
      throw toTriageError(err, `fhir ${what}`, this.options.timeoutMs);
    }
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

  async capabilities(): Promise<FhirResource> {
    return (await this.call('capabilities', (signal) => this.client.capabilityStatement({ signal }))) as FhirResource;
  }
}

function toTriageError(err: unknown, where: string, timeoutMs: number): TriageError {
  if (err instanceof TriageError) return err;
  const e = err as { name?: string; message?: string; response?: { status?: number; data?: unknown }; cause?: unknown };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new TriageError('UPSTREAM_TIMEOUT', `${where}: no answer within ${timeoutMs} ms`, { cause: err, where });
  }
  const status = e.response?.status;
  if (typeof status === 'number') {
    const detail = typeof e.response?.data === 'string' ? e.response.data : JSON.stringify(e.response?.data ?? '');
    return new TriageError(codeForHttpStatus(status), `${where} answered ${status}: ${detail.slice(0, 300)}`, { cause: err, where, status });
  }
  return new TriageError('UPSTREAM_UNAVAILABLE', `${where}: ${e.message ?? String(err)}`, { cause: err, where });
}
