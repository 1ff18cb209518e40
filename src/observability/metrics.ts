import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Store } from '../state/ports.ts';
import type { BreakerState } from '../adapters/http/breaker.ts';

const STAGE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Prometheus metrics of one service (its own registry, so tests and several services in one
 * process do not share counters). Labels never carry patient data or study UIDs.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly stageSeconds: Histogram<'stage'>;
  readonly upstreamErrors: Counter<'target' | 'status'>;
  readonly inferenceSeconds: Histogram;
  readonly batchSize: Histogram;
  readonly jobOutcomes: Counter<'outcome' | 'code'>;
  readonly writes: Counter<'target' | 'action' | 'outcome'>;
  private readonly breaker: Gauge<'target'>;
  private readonly provider: Gauge<'provider' | 'model'>;

  constructor(store?: Store) {
    const registers = [this.registry];
    // Process RSS, heap, GC and event-loop lag: what capacity planning and a stuck loop show in.
    collectDefaultMetrics({ register: this.registry, prefix: 'pacs_triage_' });
    new Gauge({
      name: 'pacs_triage_jobs',
      help: 'Jobs in the store by state',
      labelNames: ['state'],
      registers,
      async collect() {
        if (!store) return;
        for (const [state, n] of Object.entries(await store.countByState())) this.set({ state }, n);
      },
    });
    this.stageSeconds = new Histogram({ name: 'pacs_triage_stage_seconds', help: 'Time per pipeline stage', labelNames: ['stage'], buckets: STAGE_BUCKETS, registers });
    this.upstreamErrors = new Counter({
      name: 'pacs_triage_upstream_errors_total',
      help: 'Failed calls to an upstream, by target (pacs, fhir) and HTTP status (or timeout, connection, circuit_open)',
      labelNames: ['target', 'status'],
      registers,
    });
    this.inferenceSeconds = new Histogram({ name: 'pacs_triage_inference_seconds', help: 'Model time per batch', buckets: STAGE_BUCKETS, registers });
    this.batchSize = new Histogram({ name: 'pacs_triage_inference_batch_size', help: 'Images per inference batch', buckets: [1, 2, 4, 8, 16, 32, 64], registers });
    this.jobOutcomes = new Counter({ name: 'pacs_triage_job_outcomes_total', help: 'Job runs by outcome and error code', labelNames: ['outcome', 'code'], registers });
    this.writes = new Counter({ name: 'pacs_triage_writes_total', help: 'Writes to the PACS and the FHIR server', labelNames: ['target', 'action', 'outcome'], registers });
    this.breaker = new Gauge({ name: 'pacs_triage_circuit_open', help: '1 while the circuit to an upstream is open', labelNames: ['target'], registers });
    this.provider = new Gauge({ name: 'pacs_triage_execution_provider', help: 'The execution provider the model runs on (value 1)', labelNames: ['provider', 'model'], registers });
  }

  setProvider(provider: string, model: string): void {
    this.provider.reset();
    this.provider.set({ provider, model }, 1);
  }

  breakerChanged(target: string, state: BreakerState): void {
    this.breaker.set({ target }, state === 'open' ? 1 : 0);
  }

  /** Per-stage timings (ms) as the pipeline records them. */
  observeTimings(timings: Record<string, number>): void {
    for (const [stage, ms] of Object.entries(timings)) this.stageSeconds.observe({ stage }, ms / 1000);
  }

  upstreamError(target: string, status: number | string): void {
    this.upstreamErrors.inc({ target, status: String(status) });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
