/**
 * Write-back that waits instead of redoing work: a retryable failure of a write after the result
 * is stored leaves the job waiting, and the next attempt writes the stored result — the SR byte
 * for byte the same — without running the model again.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BundleSource } from '../../../../src/adapters/fhir/clinical-source.ts';
import { FileStudySource } from '../../../../src/adapters/files/folder-io.ts';
import { configSchema } from '../../../../src/config/schema.ts';
import { TriageError } from '../../../../src/domain/errors.ts';
import type { FhirResource, InstanceMeta } from '../../../../src/domain/types.ts';
import { resourcesOf } from '../../../../src/evaluate/evalset.ts';
import { openRuntime, type Runtime } from '../../../../src/compose/runtime.ts';
import { SOFTWARE } from '../../../../src/compose/software.ts';
import { processStudy, WriteBackPending, type PipelineDeps, type ResultSink } from '../../../../src/pipeline/process-study.ts';
import { runJob } from '../../../../src/pipeline/worker.ts';
import type { StoredResult } from '../../../../src/domain/records.ts';

const DEMO = 'test/fixtures/demo';
const log = pino({ level: 'silent' });

/** Records every write; each kind fails while its counter is above zero. */
class FlakySink implements ResultSink {
  readonly srs: Uint8Array[] = [];
  readonly bundles: FhirResource[] = [];
  readonly priorities: string[] = [];
  fail = { sr: 0, fhir: 0, priority: 0 };
  private down(kind: keyof FlakySink['fail']): void {
    if (this.fail[kind] > 0) {
      this.fail[kind]--;
      throw new TriageError('UPSTREAM_UNAVAILABLE', `${kind} answered 503`, { status: 503 });
    }
  }
  async storeSr(_uid: string, part10: Uint8Array): Promise<void> {
    this.down('sr');
    this.srs.push(part10);
  }
  async writeFhir(_uid: string, bundle: FhirResource): Promise<string | undefined> {
    this.down('fhir');
    this.bundles.push(bundle);
    return 'RiskAssessment/1';
  }
  async setPriority(_study: InstanceMeta, result: StoredResult): Promise<void> {
    this.down('priority');
    this.priorities.push(result.priority);
  }
}

describe('write-back waits for its upstream and never re-runs the model', () => {
  let runtime: Runtime;
  let source: FileStudySource;
  let clinical: BundleSource;
  let studies: string[];
  const deps = (sink: ResultSink): PipelineDeps => ({
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
  });

  beforeAll(async () => {
    runtime = await openRuntime(configSchema.parse({}), log, ':memory:');
    source = await FileStudySource.open([path.join(DEMO, 'dicom')]);
    clinical = new BundleSource(resourcesOf(JSON.parse(readFileSync(path.join(DEMO, 'fhir-bundle.json'), 'utf8'))));
    studies = [...source.studies()];
  });
  afterAll(async () => {
    await runtime?.close();
  });

  it('FHIR down after the SR: SR and priority written, FHIR waits; the retry writes FHIR only, no inference', async () => {
    const uid = studies[0]!;
    const sink = new FlakySink();
    sink.fail.fhir = 1;
    const infer = vi.spyOn(runtime.model, 'infer');
    const first = processStudy(uid, deps(sink));
    await expect(first).rejects.toBeInstanceOf(WriteBackPending);
    await expect(first).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: expect.stringMatching(/^waiting for fhir: /) });
    expect(infer).toHaveBeenCalledTimes(1);
    expect(sink.srs).toHaveLength(1);
    expect(sink.priorities).toHaveLength(1);
    expect((await runtime.store.latestResult(uid))?.written).toEqual({ pacs: true, metadata: true, fhir: false });

    const second = await processStudy(uid, deps(sink));
    expect(second.status).toBe('done');
    expect(infer).toHaveBeenCalledTimes(1); // the model did not run again
    expect(sink.srs).toHaveLength(1);
    expect(sink.priorities).toHaveLength(1);
    expect(sink.bundles).toHaveLength(1);
    expect(await runtime.store.latestResult(uid)).toMatchObject({ written: { pacs: true, metadata: true, fhir: true }, riskAssessmentRef: 'RiskAssessment/1' });
    // The PACS chain and the FHIR chain run side by side: order within each chain, not across.
    const audit = (await runtime.store.auditLog({ studyInstanceUID: uid })).map((a) => [a.target, a.action, a.outcome]);
    expect(audit.filter(([target]) => target === 'pacs')).toEqual([
      ['pacs', 'store-sr', 'ok'],
      ['pacs', 'set-priority', 'ok'],
    ]);
    expect(audit.filter(([target]) => target === 'fhir')).toEqual([
      ['fhir', 'transaction', 'error'],
      ['fhir', 'transaction', 'ok'],
    ]);
    infer.mockRestore();
  });

  it('PACS down at the SR write: FHIR is written meanwhile; the retry re-encodes the same SR byte for byte from the stored result', async () => {
    const uid = studies[1]!;
    const sink = new FlakySink();
    sink.fail.sr = 1;
    const captured: Uint8Array[] = [];
    const spy = vi.spyOn(sink, 'storeSr').mockImplementation(async (_u, part10) => {
      captured.push(part10);
      if (captured.length === 1) throw new TriageError('UPSTREAM_TIMEOUT', 'pacs: no answer');
      sink.srs.push(part10);
    });
    const infer = vi.spyOn(runtime.model, 'infer');
    await expect(processStudy(uid, deps(sink))).rejects.toBeInstanceOf(WriteBackPending);
    // A PACS outage does not hold back the FHIR write (and the priority waits for its SR).
    expect((await runtime.store.latestResult(uid))?.written).toEqual({ pacs: false, metadata: false, fhir: true });
    expect(sink.bundles).toHaveLength(1);
    await processStudy(uid, deps(sink));
    expect(sink.bundles).toHaveLength(1);
    expect(infer).toHaveBeenCalledTimes(1);
    expect(captured).toHaveLength(2);
    expect(Buffer.from(captured[1]!).equals(Buffer.from(captured[0]!))).toBe(true);
    expect((await runtime.store.latestResult(uid))?.written).toEqual({ pacs: true, metadata: true, fhir: true });
    spy.mockRestore();
    infer.mockRestore();
  });

  it('a waiting write-back is not dead-lettered after maxAttempts; a terminal write error fails at once', async () => {
    const uid = studies[2]!;
    const sink = new FlakySink();
    sink.fail.fhir = 100;
    await runtime.store.enqueue([{ studyInstanceUID: uid, source: 'cli' }]);
    const policy = { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 20 };
    for (let i = 0; i < 3; i++) {
      const job = (await runtime.store.claim(Date.now() + 60_000))!;
      const outcome = await runJob(job, deps(sink), policy, log);
      expect(outcome).toMatchObject({ status: 'failed', code: 'UPSTREAM_UNAVAILABLE', retryAt: expect.any(Number) });
      expect(await runtime.store.get(uid)).toMatchObject({ state: 'queued', reason: expect.stringMatching(/^waiting for fhir/) });
    }
    vi.spyOn(sink, 'writeFhir').mockRejectedValueOnce(new TriageError('UPSTREAM_REJECTED', 'fhir answered 400'));
    const job = (await runtime.store.claim(Date.now() + 60_000))!;
    expect(await runJob(job, deps(sink), policy, log)).toMatchObject({ status: 'failed', code: 'UPSTREAM_REJECTED' });
    expect((await runtime.store.get(uid))?.state).toBe('failed');
  });
});
