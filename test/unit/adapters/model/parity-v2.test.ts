/**
 * The schema-2 bundled models (models/cxr-resnet-bert, models/cxr-image-only) against the Python
 * side that trained them, from what models/training/build_seed_arch.py wrote to <model>/reference/:
 *
 *   reference.json   { tolerance, pixelValuesShape: [C, H, W], cases: [{ id, dicom, fhir, pixelValues,
 *                      text?, inputIds?, attentionMask?, tokenTypeIds?, logits, probabilities,
 *                      logitsTextMasked?, logitsImageBlanked }], ablations: { textMasked? } }
 *   <id>.pixel_values.f32   the Python-preprocessed tensor of the case's DICOM, float32 LE
 *
 * Three claims, each within the reference's own tolerance (1e-4):
 *  - preprocessing: our tensor of the DICOM equals Python's pixel_values (3 channels, ImageNet
 *    normalisation of the grey image);
 *  - inference: Python's inputs through onnxruntime-node give PyTorch's logits, sigmoid gives its
 *    probabilities, and the manifest's two ablations give its ablation logits;
 *  - the whole path: our tensor and our tokenisation of the FHIR text give the same logits.
 * Missing reference files fail the test: they are part of the model artefact.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TriageModel, type ModelInput } from '../../../../src/adapters/model/index.ts';
import { readDicom } from '../../../../src/dicom/read.ts';
import { resourcesOf } from '../../../../src/evaluate/evalset.ts';
import { renderClinicalText } from '../../../../src/pipeline/context/text-template.ts';
import { imageToTensor } from '../../../../src/pipeline/preprocess/image-tensor.ts';
import { createLogger } from '../../../../src/observability/logging.ts';
import { ROOT } from '../../../harness/models.ts';

const ids = z.array(z.number().int());
const referenceSchema = z.object({
  testset: z.string(),
  tolerance: z.number().positive().max(1e-4),
  pixelValuesShape: z.tuple([z.number().int(), z.number().int(), z.number().int()]),
  ablations: z.object({ textMasked: z.object({ inputIds: ids, attentionMask: ids, tokenTypeIds: ids.optional() }).optional() }).passthrough().default({}),
  cases: z
    .array(
      z.object({
        id: z.string(),
        dicom: z.string(),
        fhir: z.string(),
        pixelValues: z.string(),
        text: z.string().optional(),
        inputIds: ids.optional(),
        attentionMask: ids.optional(),
        tokenTypeIds: ids.optional(),
        logits: z.array(z.number()),
        probabilities: z.array(z.number()),
        logitsTextMasked: z.array(z.number()).optional(),
        logitsImageBlanked: z.array(z.number()),
      }),
    )
    .min(4),
});

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
};

for (const name of ['cxr-resnet-bert', 'cxr-image-only']) {
  const dir = path.join(ROOT, 'models', name);
  const refDir = path.join(dir, 'reference');
  describe(`${name}: parity with the Python side`, () => {
    let model: TriageModel;
    let reference: z.infer<typeof referenceSchema>;
    const f32 = (file: string): Float32Array => {
      const b = readFileSync(path.join(refDir, file));
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    beforeAll(async () => {
      expect(existsSync(path.join(refDir, 'reference.json')), `${name}/reference/reference.json is missing: rebuild the model`).toBe(true);
      reference = referenceSchema.parse(JSON.parse(readFileSync(path.join(refDir, 'reference.json'), 'utf8')));
      model = await TriageModel.load({ dir, executionProviders: ['cpu'], maxBatch: 8, maxWaitMs: 0 }, createLogger('silent'));
    });
    afterAll(() => model?.close());

    it('preprocessing: our tensor of each reference DICOM is Python’s pixel_values', () => {
      const [c, h, w] = reference.pixelValuesShape;
      expect([c, h, w]).toEqual([model.manifest.image.input.channels, model.manifest.image.size.height, model.manifest.image.size.width]);
      let worst = 0;
      for (const ref of reference.cases) {
        const ours = imageToTensor(readDicom(readFileSync(path.join(ROOT, reference.testset, ref.dicom))), model.manifest.image).tensor;
        worst = Math.max(worst, maxDiff(ours, f32(ref.pixelValues)));
      }
      expect(worst).toBeLessThanOrEqual(reference.tolerance);
    });

    it('inference: Python’s inputs give PyTorch’s logits and probabilities, batched with ragged text', async () => {
      const inputs: ModelInput[] = reference.cases.map((ref) => ({
        image: f32(ref.pixelValues),
        ...(ref.inputIds ? { text: { inputIds: ref.inputIds, attentionMask: ref.attentionMask!, ...(ref.tokenTypeIds ? { tokenTypeIds: ref.tokenTypeIds } : {}) } } : {}),
      }));
      const out = await model.runBatch(inputs);
      let worst = 0;
      out.forEach((o, i) => {
        worst = Math.max(worst, maxDiff(o.scores, reference.cases[i]!.logits), maxDiff(o.probabilities, reference.cases[i]!.probabilities));
      });
      expect(worst).toBeLessThanOrEqual(reference.tolerance);
      // logits in, sigmoid applied by us: the scores are not probabilities
      expect(out.some((o) => o.scores.some((s) => s < 0 || s > 1))).toBe(true);
    });

    it('ablations: image blanked (zeros after normalisation) and, with text, text masked', async () => {
      const blank = new Float32Array(f32(reference.cases[0]!.pixelValues).length);
      const masked = reference.ablations.textMasked;
      const blanked = await model.runBatch(reference.cases.map((ref) => ({ image: blank, ...(ref.inputIds ? { text: { inputIds: ref.inputIds, attentionMask: ref.attentionMask!, tokenTypeIds: ref.tokenTypeIds ?? [] } } : {}) })));
      let worst = 0;
      blanked.forEach((o, i) => (worst = Math.max(worst, maxDiff(o.scores, reference.cases[i]!.logitsImageBlanked))));
      if (masked && model.manifest.text) {
        expect(model.tokenizer!.masked()).toEqual({ inputIds: masked.inputIds, attentionMask: masked.attentionMask, tokenTypeIds: masked.tokenTypeIds ?? [0, 0] });
        const out = await model.runBatch(reference.cases.map((ref) => ({ image: f32(ref.pixelValues), text: model.tokenizer!.masked() })));
        out.forEach((o, i) => (worst = Math.max(worst, maxDiff(o.scores, reference.cases[i]!.logitsTextMasked!))));
      }
      expect(worst).toBeLessThanOrEqual(reference.tolerance);
    });

    it('the whole path: our tensor and our tokenisation of the FHIR text give PyTorch’s logits', async () => {
      const inputs: ModelInput[] = [];
      for (const ref of reference.cases) {
        const image = imageToTensor(readDicom(readFileSync(path.join(ROOT, reference.testset, ref.dicom))), model.manifest.image).tensor;
        const template = model.manifest.text;
        if (template) {
          const text = renderClinicalText(resourcesOf(JSON.parse(readFileSync(path.join(ROOT, reference.testset, ref.fhir), 'utf8'))), template).text;
          expect(text).toBe(ref.text);
          const encoded = model.encodeText(text)!;
          expect(encoded.inputIds).toEqual(ref.inputIds);
          expect(encoded.tokenTypeIds).toEqual(ref.tokenTypeIds);
          inputs.push({ image, text: encoded });
        } else {
          expect(model.encodeText('anything')).toBeUndefined();
          inputs.push({ image });
        }
      }
      const out = await model.runBatch(inputs);
      let worst = 0;
      out.forEach((o, i) => (worst = Math.max(worst, maxDiff(o.scores, reference.cases[i]!.logits))));
      expect(worst).toBeLessThanOrEqual(reference.tolerance);
    });
  });
}
