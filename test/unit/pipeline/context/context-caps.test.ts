/**
 * The mapping's caps reach the pipeline: a hit cuts the model's text and is logged as
 * `context.cap_hit` with counts only — never the text, never patient data.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleSource } from '../../../../src/adapters/fhir/clinical-source.ts';
import { FileStudySource } from '../../../../src/adapters/files/folder-io.ts';
import { configSchema } from '../../../../src/config/schema.ts';
import type { FhirResource } from '../../../../src/domain/types.ts';
import { resourcesOf } from '../../../../src/evaluate/evalset.ts';
import { openRuntime, type Runtime } from '../../../../src/compose/runtime.ts';
import { SOFTWARE } from '../../../../src/compose/software.ts';
import { processStudy, type ResultSink } from '../../../../src/pipeline/process-study.ts';

const DEMO = 'test/fixtures/demo';
const never: ResultSink = {
  storeSr: () => Promise.reject(new Error('shadow')),
  writeFhir: () => Promise.reject(new Error('shadow')),
  setPriority: () => Promise.reject(new Error('shadow')),
};

describe('caps from mappings/fhir.yaml in the pipeline', () => {
  let runtime: Runtime;
  let source: FileStudySource;
  let resources: FhirResource[];
  beforeAll(async () => {
    runtime = await openRuntime(configSchema.parse({}), pino({ level: 'silent' }), ':memory:');
    source = await FileStudySource.open([path.join(DEMO, 'dicom')]);
    resources = resourcesOf(JSON.parse(readFileSync(path.join(DEMO, 'fhir-bundle.json'), 'utf8')));
  });
  afterAll(async () => {
    await runtime?.close();
  });

  it('maxChars: the text is cut and context.cap_hit logged with the cap and counts, no text or identifiers', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const mappings = structuredClone(runtime.mappings);
    mappings.fhir.caps.maxChars = 12;
    const uid = [...source.studies()][0] as string;
    const out = await processStudy(uid, {
      model: runtime.model,
      mappings,
      uidRoot: '1.2.826.0.1.3680043.10.999',
      shadow: true,
      source,
      clinical: new BundleSource(resources),
      sink: never,
      store: runtime.store,
      log,
      software: SOFTWARE,
    });
    expect(out.status).toBe('done');
    const hits = lines.filter((l) => l['event'] === 'context.cap_hit');
    expect(hits).toEqual([expect.objectContaining({ level: 40, study: uid, cap: 'maxChars', limit: 12, count: expect.any(Number) })]);
    expect(Object.keys(hits[0] as object).sort()).toEqual(['cap', 'count', 'event', 'hostname', 'level', 'limit', 'msg', 'pid', 'study', 'time']);
  });
});
