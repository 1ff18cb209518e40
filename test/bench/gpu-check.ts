/**
 * `npm run bench:gpu -- --providers cuda` (or webgpu): the short prepared check for a GPU
 * machine, for every bundled model (or --models a,b). Loads each model on the requested provider
 * and on CPU, compares outputs on 64 held-out inputs (probabilities and saliency must agree
 * within 1e-3), and times batch 1, 8 and 64 on both. Exits 1 when the provider did not load (the
 * log says why) or any model's outputs disagree.
 */
import { parseArgs } from 'node:util';
import { TriageModel, type ExecutionProvider } from '../../src/adapters/model/index.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { bundledModelDirs, evalInputs } from '../harness/models.ts';

const { values } = parseArgs({
  options: { providers: { type: 'string', default: 'cuda' }, models: { type: 'string' }, data: { type: 'string', default: 'models/testset' }, runs: { type: 'string', default: '20' } },
});
const log = createLogger('info');
const want = values.providers.split(',') as ExecutionProvider[];

async function time(model: TriageModel, inputs: Awaited<ReturnType<typeof evalInputs>>, batch: number): Promise<{ batch: number; p50Ms: number; samplesPerS: number }> {
  const items = inputs.slice(0, batch);
  for (let i = 0; i < 3; i++) await model.runBatch(items);
  const ms: number[] = [];
  for (let i = 0; i < Number(values.runs); i++) {
    const t = performance.now();
    await model.runBatch(items);
    ms.push(performance.now() - t);
  }
  ms.sort((x, y) => x - y);
  const p50 = ms[Math.floor(ms.length / 2)]!;
  return { batch, p50Ms: Math.round(p50 * 100) / 100, samplesPerS: Math.round((batch / p50) * 1000) };
}

const reports = [];
let ok = true;
for (const dir of values.models?.split(',') ?? bundledModelDirs()) {
  const options = (executionProviders: ExecutionProvider[]) => ({ dir, executionProviders, maxBatch: 64, maxWaitMs: 0 });
  const gpu = await TriageModel.load(options(want), log);
  const cpu = await TriageModel.load(options(['cpu']), log);
  const inputs = await evalInputs(cpu, values.data, 64);
  const [a, b] = [await gpu.runBatch(inputs), await cpu.runBatch(inputs)];
  let maxProb = 0;
  let maxSal = 0;
  a.forEach((o, i) => {
    o.probabilities.forEach((p, k) => (maxProb = Math.max(maxProb, Math.abs(p - b[i]!.probabilities[k]!))));
    o.saliency.forEach((m, k) => m.forEach((v, j) => (maxSal = Math.max(maxSal, Math.abs(v - b[i]!.saliency[k]![j]!)))));
  });
  const agrees = maxProb <= 1e-3 && maxSal <= 1e-3;
  const report = {
    dir,
    model: `${gpu.manifest.id}@${gpu.manifest.version}`,
    requested: want,
    provider: gpu.provider,
    maxAbsDiff: { probabilities: maxProb, saliency: maxSal },
    agrees,
    speed: {
      cpu: [await time(cpu, inputs, 1), await time(cpu, inputs, 8), await time(cpu, inputs, 64)],
      ...(gpu.provider === 'cpu' ? {} : { [gpu.provider]: [await time(gpu, inputs, 1), await time(gpu, inputs, 8), await time(gpu, inputs, 64)] }),
    },
  };
  reports.push(report);
  ok &&= agrees && !(gpu.provider === 'cpu' && !want.includes('cpu'));
  await gpu.close();
  await cpu.close();
}
console.log(JSON.stringify(reports, null, 2));
process.exitCode = ok ? 0 : 1;
