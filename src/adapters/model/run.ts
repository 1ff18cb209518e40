import * as ort from 'onnxruntime-node';
import type { Manifest } from '../../config/manifest.ts';
import type { TextEncoding } from './tokenizer.ts';

export interface ModelInput {
  /** size×size float32, already preprocessed per the manifest. */
  image: Float32Array;
  text: TextEncoding;
}

export interface ModelOutput {
  probabilities: number[];
  /** K maps of size×size, each in [0,1]. */
  saliency: Float32Array[];
}

/** Builds the batch tensors (padding text to the longest item), runs the session, splits the outputs. */
export async function runModel(
  session: ort.InferenceSession,
  manifest: Manifest,
  inputs: readonly ModelInput[],
  padId: number,
): Promise<ModelOutput[]> {
  const n = inputs.length;
  if (n === 0) return [];
  const size = manifest.image.size;
  const pixels = size * size;
  const image = new Float32Array(n * pixels);
  inputs.forEach((input, i) => {
    if (input.image.length !== pixels) throw new RangeError(`image ${i} has ${input.image.length} values, the model takes ${pixels}`);
    image.set(input.image, i * pixels);
  });
  const seq = Math.max(...inputs.map((input) => input.text.inputIds.length));
  const ids = new BigInt64Array(n * seq).fill(BigInt(padId));
  const mask = new BigInt64Array(n * seq);
  inputs.forEach((input, i) => {
    input.text.inputIds.forEach((id, j) => {
      ids[i * seq + j] = BigInt(id);
      mask[i * seq + j] = BigInt(input.text.attentionMask[j] ?? 0);
    });
  });
  const feeds: Record<string, ort.Tensor> = {
    [manifest.inputs.image.name]: new ort.Tensor('float32', image, [n, 1, size, size]),
    [manifest.inputs.inputIds.name]: new ort.Tensor('int64', ids, [n, seq]),
    [manifest.inputs.attentionMask.name]: new ort.Tensor('int64', mask, [n, seq]),
  };
  const out = await session.run(feeds);
  const probs = out[manifest.outputs.probabilities.name]?.data as Float32Array | undefined;
  const sal = out[manifest.outputs.saliency.name]?.data as Float32Array | undefined;
  if (!probs || !sal) throw new Error('model did not return the outputs its manifest names');
  const k = manifest.findings.length;
  if (probs.length !== n * k) throw new Error(`model returned ${probs.length / n} probabilities per item, the manifest lists ${k} findings`);
  return inputs.map((_, i) => ({
    probabilities: Array.from(probs.subarray(i * k, (i + 1) * k)),
    saliency: Array.from({ length: k }, (_, f) => sal.slice((i * k + f) * pixels, (i * k + f + 1) * pixels)),
  }));
}
