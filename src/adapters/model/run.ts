import * as ort from 'onnxruntime-node';
import { imageValues, type Manifest } from '../../config/manifest.ts';
import { activate } from './activation.ts';
import type { IdsType } from './contract.ts';
import { fromFloat16Bits, toFloat16Array } from './float16.ts';
import type { TextEncoding } from './tokenizer.ts';

export interface ModelInput {
  /** One item of the image input (channels × height × width in its layout), preprocessed per the manifest. */
  image: Float32Array;
  /** The tokenised clinical text; ignored by a model without text inputs. */
  text?: TextEncoding;
}

export interface ModelOutput {
  /** What the model gave, per finding (probabilities or logits, as the manifest says). */
  scores: number[];
  /** After the manifest's activation: what the thresholds apply to. */
  probabilities: number[];
  /** K maps of height×width, each in [0,1]; empty when the model gives no saliency. */
  saliency: Float32Array[];
}

function numbers(tensor: ort.Tensor | undefined, name: string): Float32Array {
  if (!tensor) throw new Error(`model did not return the output "${name}" its manifest names`);
  if (tensor.type === 'float16') return Float32Array.from(tensor.data as Uint16Array, fromFloat16Bits);
  return tensor.data as Float32Array;
}

function textFeeds(manifest: Manifest, inputs: readonly ModelInput[], padId: number, idsType: IdsType): Record<string, ort.Tensor> {
  const text = manifest.text;
  if (!text) return {};
  const n = inputs.length;
  const seq = Math.max(1, ...inputs.map((input) => input.text?.inputIds.length ?? 0));
  const Typed = idsType === 'int64' ? BigInt64Array : Int32Array;
  const of = (v: number): bigint | number => (idsType === 'int64' ? BigInt(v) : v);
  const ids = new Typed(n * seq);
  const mask = new Typed(n * seq);
  const types = new Typed(n * seq);
  (ids as { fill(v: bigint | number): unknown }).fill(of(padId));
  inputs.forEach((input, i) => {
    if (!input.text) throw new RangeError(`item ${i} has no text; the model reads text`);
    const { inputIds, attentionMask, tokenTypeIds } = input.text;
    inputIds.forEach((id, j) => {
      ids[i * seq + j] = of(id) as never;
      mask[i * seq + j] = of(attentionMask[j] ?? 0) as never;
      types[i * seq + j] = of(tokenTypeIds?.[j] ?? 0) as never;
    });
  });
  return {
    [text.inputs.inputIds]: new ort.Tensor(idsType, ids, [n, seq]),
    [text.inputs.attentionMask]: new ort.Tensor(idsType, mask, [n, seq]),
    ...(text.inputs.tokenTypeIds === undefined ? {} : { [text.inputs.tokenTypeIds]: new ort.Tensor(idsType, types, [n, seq]) }),
  };
}

/**
 * Builds the batch tensors (the image in the input's layout and dtype; text padded to the
 * longest item), runs the session, and splits the outputs per item: the scores, their
 * probabilities after the manifest's activation, and the saliency maps when the model has them.
 */
export async function runModel(session: ort.InferenceSession, manifest: Manifest, inputs: readonly ModelInput[], padId: number, idsType: IdsType = 'int64'): Promise<ModelOutput[]> {
  const n = inputs.length;
  if (n === 0) return [];
  const spec = manifest.image;
  const per = imageValues(spec);
  const image = new Float32Array(n * per);
  inputs.forEach((input, i) => {
    if (input.image.length !== per) throw new RangeError(`image ${i} has ${input.image.length} values, the model takes ${per}`);
    image.set(input.image, i * per);
  });
  const { width, height } = spec.size;
  const c = spec.input.channels;
  const shape = spec.input.layout === 'NCHW' ? [n, c, height, width] : [n, height, width, c];
  const imageTensor = spec.input.dtype === 'float16' ? new ort.Tensor('float16', toFloat16Array(image), shape) : new ort.Tensor('float32', image, shape);
  const out = await session.run({ [spec.input.name]: imageTensor, ...textFeeds(manifest, inputs, padId, idsType) });
  const scores = numbers(out[manifest.outputs.scores.name], manifest.outputs.scores.name);
  const k = manifest.findings.length;
  if (scores.length !== n * k) throw new Error(`model returned ${scores.length / n} scores per item, the manifest lists ${k} findings`);
  const salName = manifest.outputs.saliency?.name;
  const sal = salName === undefined ? undefined : numbers(out[salName], salName);
  const pixels = width * height;
  if (sal && sal.length !== n * k * pixels) throw new Error(`model returned ${sal.length / n} saliency values per item, ${k} maps of ${height}x${width} expected`);
  return inputs.map((_, i) => {
    const raw = Array.from(scores.subarray(i * k, (i + 1) * k));
    return {
      scores: raw,
      probabilities: activate(raw, manifest.outputs.scores.activation),
      saliency: sal ? Array.from({ length: k }, (_, f) => sal.slice((i * k + f) * pixels, (i * k + f + 1) * pixels)) : [],
    };
  });
}
