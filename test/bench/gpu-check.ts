/**
 * `npm run bench:gpu -- --providers cuda` (or webgpu): the short prepared check for a GPU
 * machine. Loads the model on the requested provider and on CPU, compares outputs on 64 held-out
 * inputs (must agree within 1e-3), and times batch 1 and 64 on both. Exits 1 when the provider
 * did not load (the log says why) or the outputs disagree.
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

const { values } = parseArgs({ options: { providers: { type: 'string', default: 'cuda' }, data: { type: 'string', default: 'models/testset' }, runs: { type: 'string', default: '20' } } });
const log = createLogger('info');
const want = values.providers.split(',') as ExecutionProvider[];
const options = (executionProviders: ExecutionProvider[]) => ({ dir: 'models/cxr-triage', executionProviders, maxBatch: 64, maxWaitMs: 0 });
const gpu = await TriageModel.load(options(want), log);
const cpu = await TriageModel.load(options(['cpu']), log);

const index = await readEvalIndex(values.data);
const inputs: ModelInput[] = [];
for (const c of index.cases.slice(0, 64)) {
  const image = imageToTensor(readDicom(await readFile(path.join(values.data, c.dicom))), cpu.manifest.image).tensor;
  const text = renderClinicalText(resourcesOf(JSON.parse(await readFile(path.join(values.data, c.fhir ?? ''), 'utf8'))), cpu.manifest.text).text;
  inputs.push({ image, text: cpu.tokenizer.encode(text) });
}

const [a, b] = [await gpu.runBatch(inputs), await cpu.runBatch(inputs)];
let maxProb = 0;
let maxSal = 0;
a.forEach((o, i) => {
  o.probabilities.forEach((p, k) => (maxProb = Math.max(maxProb, Math.abs(p - b[i]!.probabilities[k]!))));
  o.saliency.forEach((m, k) => m.forEach((v, j) => (maxSal = Math.max(maxSal, Math.abs(v - b[i]!.saliency[k]![j]!)))));
});

async function time(model: TriageModel, batch: number): Promise<{ batch: number; p50Ms: number; samplesPerS: number }> {
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

const report = {
  requested: want,
  provider: gpu.provider,
  maxAbsDiff: { probabilities: maxProb, saliency: maxSal },
  agrees: maxProb <= 1e-3 && maxSal <= 1e-3,
  speed: {
    cpu: [await time(cpu, 1), await time(cpu, 64)],
    ...(gpu.provider === 'cpu' ? {} : { [gpu.provider]: [await time(gpu, 1), await time(gpu, 64)] }),
  },
};
console.log(JSON.stringify(report, null, 2));
await gpu.close();
await cpu.close();
process.exitCode = gpu.provider === 'cpu' && !want.includes('cpu') ? 1 : report.agrees ? 0 : 1;
