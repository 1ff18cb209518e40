/**
 * Several models in one service (config `models`): each model chooses its own series (selection
 * rules keyed by its manifest id) and writes one SR (in its own series) and one RiskAssessment
 * per study; a rerun writes nothing twice. Real models, real store, the demo studies.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import dcmjs from 'dcmjs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleSource } from '../../../src/adapters/fhir/clinical-source.ts';
import { FileStudySource } from '../../../src/adapters/files/folder-io.ts';
import { configSchema } from '../../../src/config/schema.ts';
import type { FhirResource, InstanceMeta } from '../../../src/domain/types.ts';
import type { StoredResult } from '../../../src/domain/records.ts';
import { resourcesOf } from '../../../src/evaluate/evalset.ts';
import { openRuntime, type Runtime } from '../../../src/compose/runtime.ts';
import { SOFTWARE } from '../../../src/compose/software.ts';
import { processStudyModels } from '../../../src/pipeline/process-models.ts';
import type { PipelineDeps, ResultSink } from '../../../src/pipeline/ports.ts';
import { ownSeries } from '../../../src/pipeline/ingest/own-writes.ts';
import { NO_SALIENCY_NOTE } from '../../../src/pipeline/encode/result.ts';

const DEMO = 'test/fixtures/demo';
const UID_ROOT = '1.2.826.0.1.3680043.10.999';
const log = pino({ level: 'silent' });

class RecordingSink implements ResultSink {
  readonly srs: { study: string; part10: Uint8Array }[] = [];
  readonly bundles: FhirResource[] = [];
  async storeSr(study: string, part10: Uint8Array): Promise<void> {
    this.srs.push({ study, part10 });
  }
  async writeFhir(_uid: string, bundle: FhirResource): Promise<string | undefined> {
    this.bundles.push(bundle);
    return `RiskAssessment/${this.bundles.length}`;
  }
  async setPriority(_study: InstanceMeta, _result: StoredResult): Promise<void> {}
}

/** SeriesInstanceUID, the Contributing Equipment's model name (the manifest id), and whether an SCOORD is in the tree. */
function srFacts(part10: Uint8Array): { series: string; modelName: string; scoord: boolean } {
  const data = dcmjs.data.DicomMessage.readFile(part10.buffer.slice(part10.byteOffset, part10.byteOffset + part10.byteLength) as ArrayBuffer);
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(data.dict) as Record<string, any>;
  const seq = (v: unknown): any[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  const walk = (items: any[]): boolean => items.some((i) => i.ValueType === 'SCOORD' || walk(seq(i.ContentSequence)));
  return { series: ds['SeriesInstanceUID'], modelName: seq(ds['ContributingEquipmentSequence'])[0]?.ManufacturerModelName, scoord: walk(seq(ds['ContentSequence'])) };
}

const riskAssessments = (bundles: FhirResource[]): any[] =>
  bundles.flatMap((b) => ((b as any).entry ?? []).map((e: any) => e.resource).filter((r: any) => r?.resourceType === 'RiskAssessment'));

describe('several models per study', () => {
  let runtime: Runtime;
  let source: FileStudySource;
  let clinical: BundleSource;
  const deps = (sink: ResultSink, mappings = runtime.mappings): PipelineDeps => ({
    model: runtime.model,
    models: runtime.models,
    mappings,
    uidRoot: UID_ROOT,
    shadow: false,
    source,
    clinical,
    sink,
    store: runtime.store,
    log,
    software: SOFTWARE,
  });

  beforeAll(async () => {
    runtime = await openRuntime(configSchema.parse({ models: ['models/cxr-triage', 'models/cxr-image-only'] }), log, ':memory:');
    source = await FileStudySource.open([path.join(DEMO, 'dicom')]);
    clinical = new BundleSource(resourcesOf(JSON.parse(readFileSync(path.join(DEMO, 'fhir-bundle.json'), 'utf8'))));
  }, 60_000);
  afterAll(async () => {
    await runtime?.close();
  });

  it('loads both, in config order', () => {
    expect(runtime.models.map((m) => m.manifest.id)).toEqual(['pacs-triage-cxr-ref', 'pacs-triage-cxr-image-only']);
  });

  it('one SR and one RiskAssessment per model per study, each SR in its model\'s own series; no SCOORD from the model without saliency; a rerun writes nothing', async () => {
    const sink = new RecordingSink();
    const study = [...source.studies()][0]!;
    const { outcome, runs } = await processStudyModels(study, deps(sink));
    expect(outcome.status).toBe('done');
    expect(runs.map((r) => [r.modelId, 'outcome' in r ? r.outcome.status : 'error'])).toEqual([
      ['pacs-triage-cxr-ref', 'done'],
      ['pacs-triage-cxr-image-only', 'done'],
    ]);
    expect(sink.srs).toHaveLength(2);
    const facts = sink.srs.map((s) => srFacts(s.part10));
    expect(new Set(facts.map((f) => f.series)).size).toBe(2);
    const own = ownSeries(UID_ROOT, runtime.models.map((m) => m.manifest));
    expect(facts.every((f) => own(study, f.series))).toBe(true);
    const imageOnly = facts.find((f) => f.modelName === 'pacs-triage-cxr-image-only');
    expect(imageOnly?.scoord).toBe(false);
    const ras = riskAssessments(sink.bundles);
    expect(ras).toHaveLength(2);
    expect(new Set(ras.map((r) => JSON.stringify(r.identifier))).size).toBe(2);
    const results = await runtime.store.resultsOf(study);
    expect(results.map((r) => [r.modelId, r.notes.includes(NO_SALIENCY_NOTE)]).sort()).toEqual([
      ['pacs-triage-cxr-image-only', true],
      ['pacs-triage-cxr-ref', false],
    ]);

    const again = await processStudyModels(study, deps(sink));
    expect(again.outcome).toMatchObject({ status: 'done', unchanged: true });
    expect(sink.srs).toHaveLength(2);
    expect(sink.bundles).toHaveLength(2);
  }, 60_000);

  it('selection rules keyed by manifest id: a model whose rules choose nothing is skipped, the other still writes', async () => {
    const sink = new RecordingSink();
    const study = [...source.studies()][1]!;
    const nothing = { rules: [{ name: 'no such modality', match: { Modality: 'XX' } }] };
    const selection = { ...runtime.mappings.selection, models: { ...runtime.mappings.selection.models, 'pacs-triage-cxr-image-only': nothing } };
    const { outcome, runs } = await processStudyModels(study, deps(sink, { ...runtime.mappings, selection } as typeof runtime.mappings));
    expect(outcome.status).toBe('done');
    expect(runs.map((r) => [r.modelId, 'outcome' in r ? r.outcome.status : 'error'])).toEqual([
      ['pacs-triage-cxr-ref', 'done'],
      ['pacs-triage-cxr-image-only', 'skipped'],
    ]);
    expect(sink.srs).toHaveLength(1);
    expect(riskAssessments(sink.bundles)).toHaveLength(1);
  }, 60_000);

  it('two folders with the same manifest id are refused', async () => {
    await expect(openRuntime(configSchema.parse({ models: ['models/cxr-triage', 'models/../models/cxr-triage'] }), log, ':memory:')).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('have the same manifest id pacs-triage-cxr-ref'),
    });
  }, 60_000);
});
