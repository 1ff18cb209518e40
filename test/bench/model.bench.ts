/**
 * `npm run bench:model`: CPU (or the configured provider's) throughput and latency of the
 * reference model at batch 1 and 16, on real inputs from the held-out set (preprocessed once,
 * so this times the model alone). Not part of the tests.
 *
 *   npm run bench:model -- [--providers cuda,cpu] [--seconds 5] [--batches 1,16] [--json]
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { TriageModel, type ExecutionProvider, type ModelInput } from '../../src/adapters/model/index.ts';
import { readEvalIndex, resourcesOf } from '../../src/evaluate/evalset.ts';
import { renderClinicalText } from '../../src/pipeline/context/text-template.ts';
import { imageToTensor } from '../../src/pipeline/preprocess/index.ts';
import { readDicom } from '../../src/dicom/index.ts';
import { createLogger } from '../../src/observability/logging.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/cxr-triage' },
    data: { type: 'string', default: 'models/testset' },
    providers: { type: 'string', default: 'cpu' },
    batches: { type: 'string', default: '1,16' },
    seconds: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});

const log = createLogger('info');
const model = await TriageModel.load(
  { dir: values.model, executionProviders: values.providers.split(',') as ExecutionProvider[], maxBatch: 64, maxWaitMs: 0 },
  log,
);
const index = await readEvalIndex(values.data);
const inputs: ModelInput[] = [];
for (const c of index.cases.slice(0, 64)) {
  const image = imageToTensor(readDicom(await readFile(path.join(values.data, c.dicom))), model.manifest.image).tensor;
  const text = c.fhir ? renderClinicalText(resourcesOf(JSON.parse(await readFile(path.join(values.data, c.fhir), 'utf8'))), model.manifest.text).text : model.manifest.text.empty;
  inputs.push({ image, text: model.tokenizer.encode(text) });
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
const rows = [];
for (const batch of values.batches.split(',').map(Number)) {
  const items = Array.from({ length: batch }, (_, i) => inputs[i % inputs.length] as ModelInput);
  for (let w = 0; w < 3; w++) await model.runBatch(items); // warm-up
  const latencies: number[] = [];
  const end = performance.now() + Number(values.seconds) * 1000;
  while (performance.now() < end || latencies.length < 5) {
    const t = performance.now();
    await model.runBatch(items);
    latencies.push(performance.now() - t);
  }
  latencies.sort((a, b) => a - b);
  const total = latencies.reduce((a, b) => a + b, 0);
  rows.push({
    batch,
    runs: latencies.length,
    samplesPerS: Math.round(((batch * latencies.length) / total) * 1000 * 10) / 10,
    p50Ms: Math.round(quantile(latencies, 0.5) * 10) / 10,
    p95Ms: Math.round(quantile(latencies, 0.95) * 10) / 10,
  });
}
const report = { model: `${model.manifest.id}@${model.manifest.version}`, provider: model.provider, threads: 'onnxruntime default', rows };
if (values.json) console.log(JSON.stringify(report));
else {
  console.log(`${report.model} on ${report.provider}`);
  console.log('batch  runs  samples/s  p50 ms  p95 ms');
  for (const r of rows) console.log(`${String(r.batch).padStart(5)} ${String(r.runs).padStart(5)} ${String(r.samplesPerS).padStart(10)} ${String(r.p50Ms).padStart(7)} ${String(r.p95Ms).padStart(7)}`);
}
await model.close();
