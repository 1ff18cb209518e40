/**
 * `model check`'s synthetic batch: inputs made here (no patient data, nothing from the
 * evaluation set) that go through the same preprocessing and tokenisation as a study's, and the
 * checks of what the model gives back — finite scores, probabilities that are probabilities,
 * scores that padding does not change. The image and text are deterministic so that a problem
 * found once is found again.
 */
import type { Manifest } from '../../config/manifest.ts';
import type { Problem } from '../../adapters/model/contract.ts';
import type { ModelInput, ModelOutput, TextEncoding } from '../../adapters/model/index.ts';
import { imageToTensor, type GreyImage } from '../../pipeline/preprocess/image-tensor.ts';

/** A 12-bit grey radiograph-like image: a vertical gradient, a brighter disc, deterministic noise. */
export function syntheticImage(rows = 256, columns = 208): GreyImage {
  const data = new Uint16Array(rows * columns);
  let seed = 12345;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const disc = (r - rows * 0.4) ** 2 + (c - columns * 0.6) ** 2 < (rows * 0.12) ** 2 ? 900 : 0;
      data[r * columns + c] = Math.min(4095, Math.round(600 + (2400 * r) / rows + disc + (seed % 200)));
    }
  }
  const plane = Float32Array.from(data);
  return {
    rows,
    columns,
    data,
    photometricInterpretation: 'MONOCHROME2',
    windowCenter: 2048,
    windowWidth: 4096,
    color: [plane, plane, plane],
  };
}

/** A clinical text longer than any max length, so that truncation is exercised too. */
export function longText(manifest: Manifest): string {
  const words = 'indication: acute shortness of breath after a fall, left sided chest pain, previous report: small left apical pneumothorax, follow up requested';
  return Array.from({ length: Math.ceil(((manifest.text?.maxLength ?? 16) * 2) / 20) + 1 }, () => words).join(manifest.text?.joiner ?? ' | ');
}

/**
 * The batch: item 0 the image with the manifest's empty text, item 1 the same image with a long
 * text (so item 0 is padded to item 1's length in the batch), item 2 the image blanked (zeros
 * after normalisation, the textOnly ablation's input). An image-only model: the image and the
 * blank image.
 */
export function syntheticBatch(manifest: Manifest, encode: (text: string) => TextEncoding | undefined): ModelInput[] {
  const image = imageToTensor(syntheticImage(), manifest.image).tensor;
  const blank = new Float32Array(image.length);
  const short = encode(manifest.text?.empty ?? '');
  const long = encode(longText(manifest));
  const withText = (text: TextEncoding | undefined): Pick<ModelInput, 'text'> => (text ? { text } : {});
  if (!manifest.text) return [{ image }, { image: blank }];
  return [
    { image, ...withText(short) },
    { image, ...withText(long) },
    { image: blank, ...withText(short) },
  ];
}

/** Largest absolute difference between two score lists. */
const maxDiff = (a: readonly number[], b: readonly number[]): number => Math.max(0, ...a.map((x, i) => Math.abs(x - (b[i] ?? Number.NaN))));

/**
 * What the outputs say about the manifest: `batch` is the synthetic batch's output, `alone`
 * item 0 run on its own (batch 1, no padding).
 */
export function outputProblems(manifest: Manifest, batch: readonly ModelOutput[], alone: ModelOutput | undefined): Problem[] {
  const problems: Problem[] = [];
  const scores = manifest.outputs.scores;
  const all = batch.flatMap((o) => o.scores);
  if (all.some((x) => !Number.isFinite(x))) {
    problems.push({
      where: 'outputs.scores.name',
      problem: `"${scores.name}" gave non-finite values (NaN or infinity) on the synthetic batch`,
      fix: 'check the export (a division or log without an epsilon, float16 overflow) and that image.normalize and image.range are what the model was trained with',
    });
    return problems;
  }
  if (scores.kind === 'probabilities') {
    const outside = all.filter((x) => x < 0 || x > 1);
    if (outside.length > 0) {
      const example = outside.reduce((a, b) => (Math.abs(b - 0.5) > Math.abs(a - 0.5) ? b : a));
      problems.push({
        where: 'outputs.scores.kind',
        problem: `is probabilities, but "${scores.name}" gave ${outside.length} of ${all.length} values outside [0, 1] on the synthetic batch (e.g. ${example.toFixed(3)}): these look like logits`,
        fix: 'set outputs.scores.kind to "logits" with activation "sigmoid" (independent findings) or "softmax" (mutually exclusive classes)',
      });
    }
  }
  const first = batch[0];
  if (alone && first) {
    const diff = maxDiff(first.scores, alone.scores);
    if (manifest.text && diff > 1e-3) {
      problems.push({
        where: 'text.inputs.attentionMask',
        problem: `the scores of one item change by ${diff.toFixed(4)} when it is padded in a batch with a longer text: the model does not honour the attention mask (or the padding token is wrong)`,
        fix: `check text.inputs.attentionMask names the mask input and text.padToken the token the model was trained to pad with; export with the mask applied in attention`,
      });
    }
  }
  for (const o of batch) {
    if (o.saliency.some((map) => map.some((v) => !Number.isFinite(v)))) {
      problems.push({ where: 'outputs.saliency.name', problem: 'the saliency maps have non-finite values on the synthetic batch', fix: 'check the export of the saliency output, or remove outputs.saliency' });
      break;
    }
  }
  return problems;
}
