/**
 * Optional write-backs degrade: the SR and the RiskAssessment are the result; when the PACS metadata
 * or the order's priority is refused for a configuration reason, the job ends done with a warning
 * that names the fix, logged once per cause, and a rerun with the same inputs writes nothing.
 * A transient failure of the same write keeps its retries.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleSource } from '../../../../src/adapters/fhir/clinical-source.ts';
import { FileStudySource } from '../../../../src/adapters/files/folder-io.ts';
import { configSchema } from '../../../../src/config/schema.ts';
import { openRuntime, type Runtime } from '../../../../src/compose/runtime.ts';
import { SOFTWARE } from '../../../../src/compose/software.ts';
import { TriageError } from '../../../../src/domain/errors.ts';
import type { StoredResult } from '../../../../src/domain/records.ts';
import type { FhirResource, InstanceMeta, Priority } from '../../../../src/domain/types.ts';
import { resourcesOf } from '../../../../src/evaluate/evalset.ts';
import type { PipelineDeps, ResultSink } from '../../../../src/pipeline/process-study.ts';
import { runJob } from '../../../../src/pipeline/worker.ts';
import { WriteWarnings } from '../../../../src/pipeline/writeback/optional-writes.ts';

const DEMO = 'test/fixtures/demo';
const POLICY = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 };

/** Counts every write; the metadata and the order answer what `refuse` says. */
class RefusingSink implements ResultSink {
  calls = { sr: 0, fhir: 0, metadata: 0, order: 0 };
  refuse: { metadata?: TriageError; order?: TriageError } = {};
  async storeSr(): Promise<void> {
    this.calls.sr++;
  }
  async writeFhir(): Promise<string | undefined> {
    this.calls.fhir++;
    return 'RiskAssessment/ra-1';
  }
  async setPriority(_study: InstanceMeta, _result: StoredResult): Promise<void> {
    this.calls.metadata++;
    if (this.refuse.metadata) throw this.refuse.metadata;
  }
  async writeOrderPriority(_order: FhirResource, _priority: Priority): Promise<string | undefined> {
    this.calls.order++;
    if (this.refuse.order) throw this.refuse.order;
    return '2';
  }
}

const UNDECLARED = new TriageError('CONFIG_INVALID', 'Orthanc refused the study metadata PacsTriagePriority and PacsTriageResult (404): its UserMetadata does not declare them', {
  where: 'pacs.userMetadata',
  status: 404,
});

describe('optional write-backs degrade with a named warning', () => {
  let runtime: Runtime;
  let source: FileStudySource;
  let clinical: BundleSource;
  let studies: string[];
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const warnings = new WriteWarnings(log);
  const deps = (sink: ResultSink, extra: Partial<PipelineDeps> = {}): PipelineDeps => ({
    model: runtime.model,
    mappings: runtime.mappings,
    uidRoot: '1.2.826.0.1.3680043.10.999',
    shadow: false,
    source,
    clinical,
    sink,
    store: runtime.store,
    log,
    software: SOFTWARE,
    warnings,
    ...extra,
  });
  const run = async (uid: string, d: PipelineDeps): Promise<Awaited<ReturnType<typeof runJob>>> => {
    await runtime.store.enqueue([{ studyInstanceUID: uid, source: 'cli' }]);
    const job = (await runtime.store.claim(Date.now() + 60_000, undefined, uid))!;
    return runJob(job, d, POLICY, log);
  };

  beforeAll(async () => {
    runtime = await openRuntime(configSchema.parse({}), pino({ level: 'silent' }), ':memory:');
    source = await FileStudySource.open([path.join(DEMO, 'dicom')]);
    clinical = new BundleSource(resourcesOf(JSON.parse(readFileSync(path.join(DEMO, 'fhir-bundle.json'), 'utf8'))));
    studies = [...source.studies()];
  });
  afterAll(async () => {
    await runtime?.close();
  });

  it('metadata not declared: every study done with the warning, logged once; a second run writes nothing', async () => {
    const sink = new RefusingSink();
    sink.refuse.metadata = UNDECLARED;
    const [a, b] = [studies[0]!, studies[1]!];
    expect(await run(a, deps(sink))).toMatchObject({ status: 'done', unchanged: false });
    expect(await run(b, deps(sink))).toMatchObject({ status: 'done', unchanged: false });
    expect(sink.calls).toEqual({ sr: 2, fhir: 2, metadata: 2, order: 0 });
    const result = (await runtime.store.latestResult(a))!;
    expect(result.written).toEqual({ pacs: true, fhir: true, metadata: false });
    expect(result.warnings).toEqual([expect.objectContaining({ write: 'metadata', cause: 'pacs-metadata-undeclared', fix: expect.stringContaining('"UserMetadata": { "PacsTriagePriority": 4100') })]);
    const job = (await runtime.store.get(a))!;
    expect(job).toMatchObject({ state: 'done', reason: expect.stringMatching(/^warning: Orthanc does not know the study metadata .*; fix: declare "UserMetadata"/) });
    expect(job.errorCode).toBeUndefined();
    // One log line for the cause, not one per study.
    expect(lines.filter((l) => l['event'] === 'study.warning')).toEqual([expect.objectContaining({ study: a, warning: expect.stringMatching(/^pacs-metadata-undeclared: /), fix: expect.any(String) })]);
    expect(lines.filter((l) => l['event'] === 'study.failed')).toEqual([]);

    // The next run with the same inputs: unchanged, nothing written, the warning still on the job.
    expect(await run(a, deps(sink))).toMatchObject({ status: 'done', unchanged: true });
    expect(sink.calls).toEqual({ sr: 2, fhir: 2, metadata: 2, order: 0 });
    expect((await runtime.store.get(a))?.reason).toBe(job.reason);
    expect(warnings.list().map((w) => [w.warning.cause, w.studies])).toEqual([['pacs-metadata-undeclared', 3]]);
  });

  it('a transient failure of the metadata keeps the retries (job waiting, no warning), then writes it', async () => {
    const sink = new RefusingSink();
    sink.refuse.metadata = new TriageError('UPSTREAM_UNAVAILABLE', 'pacs PUT answered 503', { status: 503 });
    const uid = studies[2]!;
    expect(await run(uid, deps(sink))).toMatchObject({ status: 'failed', code: 'UPSTREAM_UNAVAILABLE', retryAt: expect.any(Number) });
    expect(await runtime.store.get(uid)).toMatchObject({ state: 'queued', reason: expect.stringMatching(/^waiting for pacs/) });
    expect((await runtime.store.latestResult(uid))?.warnings).toBeUndefined();
    delete sink.refuse.metadata;
    const job = (await runtime.store.claim(Date.now() + 60_000, undefined, uid))!;
    expect(await runJob(job, deps(sink), POLICY, log)).toMatchObject({ status: 'done' });
    expect((await runtime.store.latestResult(uid))?.written.metadata).toBe(true);
    expect((await runtime.store.get(uid))?.reason).toBeUndefined();
  });

  it('the order update refused (403): done with the order warning; the metadata is written', async () => {
    const sink = new RefusingSink();
    sink.refuse.order = new TriageError('UPSTREAM_AUTH', 'fhir update ServiceRequest answered 403', { status: 403 });
    const uid = studies.find((u, i) => i > 2 && u)!;
    const outcome = await run(uid, deps(sink, { writeOrderPriority: true }));
    expect(outcome).toMatchObject({ status: 'done' });
    const result = (await runtime.store.latestResult(uid))!;
    // The demo study has an order whose priority differs from the triage one, so a write was attempted.
    expect(sink.calls.order).toBe(1);
    expect(result.written).toMatchObject({ pacs: true, fhir: true, metadata: true, order: false });
    expect(result.warnings?.map((w) => w.cause)).toEqual(['fhir-order-forbidden']);
    expect(await run(uid, deps(sink, { writeOrderPriority: true }))).toMatchObject({ status: 'done', unchanged: true });
    expect(sink.calls.order).toBe(1);
  });

  it('another terminal error (a 400 on the metadata) still fails the job with its reason', async () => {
    const sink = new RefusingSink();
    sink.refuse.metadata = new TriageError('UPSTREAM_REJECTED', 'pacs PUT answered 400', { status: 400 });
    const uid = studies[studies.length - 1]!;
    expect(await run(uid, deps(sink))).toMatchObject({ status: 'failed', code: 'UPSTREAM_REJECTED' });
    expect((await runtime.store.get(uid))?.state).toBe('failed');
  });
});
