/**
 * The Node runtime against the Python side it was trained with:
 *  - parity: the committed reference inputs give PyTorch's outputs (models/cxr-triage/reference,
 *    written by models/training/build.py) within the tolerance it states (1e-4);
 *  - golden text and tokens: for every case of the held-out set, Node renders the same clinical
 *    text from the same FHIR JSON as the Python generator did, and the tokenizer gives the same ids.
 * (The image-tensor golden test is test/unit/pipeline/preprocess/golden.test.ts.)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TriageModel } from '../../../../src/adapters/model/index.ts';
import { readEvalIndex, resourcesOf } from '../../../../src/evaluate/evalset.ts';
import { renderClinicalText } from '../../../../src/pipeline/context/text-template.ts';
import { createLogger } from '../../../../src/observability/logging.ts';

const MODEL = 'models/cxr-triage';
const REF = path.join(MODEL, 'reference');
const TESTSET = 'models/testset';

interface Reference {
  tolerance: number;
  cases: { id: string; image: string; inputIds: number[]; attentionMask: number[]; probabilities: number[]; saliency?: string }[];
}
const reference = JSON.parse(readFileSync(path.join(REF, 'reference.json'), 'utf8')) as Reference;
const f32 = (file: string): Float32Array => {
  const b = readFileSync(path.join(REF, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

let model: TriageModel;
beforeAll(async () => {
  model = await TriageModel.load({ dir: MODEL, executionProviders: ['cpu'], maxBatch: 8, maxWaitMs: 0 }, createLogger('silent'));
});
afterAll(() => model?.close());

describe('parity with PyTorch', () => {
  it(`reproduces the reference probabilities and saliency within ${reference.tolerance}, batched together`, async () => {
    expect(reference.cases.length).toBeGreaterThanOrEqual(4);
    expect(reference.tolerance).toBeLessThanOrEqual(1e-4);
    // One batch with different text lengths: padding must not change any item's output.
    const outputs = await model.runBatch(reference.cases.map((c) => ({ image: f32(c.image), text: { inputIds: c.inputIds, attentionMask: c.attentionMask } })));
    let worst = 0;
    reference.cases.forEach((c, i) => {
      const out = outputs[i]!;
      c.probabilities.forEach((p, k) => (worst = Math.max(worst, Math.abs(p - out.probabilities[k]!))));
      if (c.saliency) {
        const want = f32(c.saliency);
        const size = 224 * 224;
        out.saliency.forEach((map, k) => {
          for (let j = 0; j < size; j++) worst = Math.max(worst, Math.abs(map[j]! - want[k * size + j]!));
        });
      }
    });
    expect(worst).toBeLessThanOrEqual(reference.tolerance);
    expect(reference.cases.filter((c) => c.saliency).length).toBeGreaterThanOrEqual(2);
  });
});

describe('golden text and token ids (every held-out case)', () => {
  it('renders the Python text and gives the Python token ids', async () => {
    const index = await readEvalIndex(TESTSET);
    const mismatches: string[] = [];
    for (const c of index.cases) {
      const bundle = JSON.parse(readFileSync(path.join(TESTSET, c.fhir!), 'utf8')) as unknown;
      const text = renderClinicalText(resourcesOf(bundle), model.manifest.text!).text;
      if (text !== c.text) mismatches.push(`${c.id} text: node ${JSON.stringify(text)} python ${JSON.stringify(c.text)}`);
      const ids = model.tokenizer!.encode(text).inputIds;
      if (JSON.stringify(ids) !== JSON.stringify(c.inputIds)) mismatches.push(`${c.id} ids differ`);
    }
    expect(index.cases.length).toBeGreaterThanOrEqual(300);
    expect(mismatches).toEqual([]);
  });

  it('truncates like training: the first maxLength-1 ids, then [SEP]', () => {
    const long = Array.from({ length: 400 }, (_, i) => `word${i % 7}`).join(' ');
    const enc = model.tokenizer!.encode(long);
    const [cls, sep] = model.tokenizer!.masked().inputIds;
    expect(enc.inputIds).toHaveLength(model.manifest.text!.maxLength);
    expect(enc.inputIds[0]).toBe(cls);
    expect(enc.inputIds.at(-1)).toBe(sep);
    expect(enc.inputIds.slice(0, -1)).toEqual(model.tokenizer!.encode(long.split(' ').slice(0, 200).join(' ')).inputIds.slice(0, 127));
  });

  it('the two ablations give finite outputs (no NaN from a fully masked text or a blank image)', async () => {
    const { width, height } = model.manifest.image.size;
    const [out] = await model.runBatch([{ image: new Float32Array(width * height), text: model.tokenizer!.masked() }]);
    expect(out!.probabilities.every(Number.isFinite)).toBe(true);
    expect(out!.saliency.every((m) => m.every(Number.isFinite))).toBe(true);
  });
});
