/**
 * `npm run bench:model`: CPU (or the configured provider's) throughput and latency of every
 * bundled model (models/<name>/manifest.json) at batch 1 and 8, on real inputs from the held-out
 * set (preprocessed once, so this times the model alone). Not part of the tests.
 *
 *   npm run bench:model -- [--models models/a,models/b] [--providers cuda,cpu] [--seconds 5] [--batches 1,8] [--json]
 */
import { parseArgs } from 'node:util';
import { TriageModel, type ExecutionProvider, type ModelInput } from '../../src/adapters/model/index.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { bundledModelDirs, evalInputs } from '../harness/models.ts';

const { values } = parseArgs({
  options: {
    models: { type: 'string' },
    data: { type: 'string', default: 'models/testset' },
    providers: { type: 'string', default: 'cpu' },
    batches: { type: 'string', default: '1,8' },
    seconds: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});

const log = createLogger('warn');
const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
const round = (x: number): number => Math.round(x * 10) / 10;
const reports = [];
for (const dir of values.models?.split(',') ?? bundledModelDirs()) {
  const model = await TriageModel.load({ dir, executionProviders: values.providers.split(',') as ExecutionProvider[], maxBatch: 64, maxWaitMs: 0 }, log);
  const inputs = await evalInputs(model, values.data, 64);
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
    rows.push({ batch, runs: latencies.length, samplesPerS: round(((batch * latencies.length) / total) * 1000), p50Ms: round(quantile(latencies, 0.5)), p95Ms: round(quantile(latencies, 0.95)) });
  }
  reports.push({ dir, model: `${model.manifest.id}@${model.manifest.version}`, provider: model.provider, threads: 'onnxruntime default', rows });
  await model.close();
}
if (values.json) console.log(JSON.stringify(reports));
else {
  for (const report of reports) {
    console.log(`${report.model} (${report.dir}) on ${report.provider}`);
    console.log('batch  runs  samples/s  p50 ms  p95 ms');
    for (const r of report.rows) console.log(`${String(r.batch).padStart(5)} ${String(r.runs).padStart(5)} ${String(r.samplesPerS).padStart(10)} ${String(r.p50Ms).padStart(7)} ${String(r.p95Ms).padStart(7)}`);
    console.log('');
  }
}
