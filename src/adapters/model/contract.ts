/**
 * The manifest's contract against the ONNX graph's own inputs and outputs (names, ranks, element
 * types, fixed dimensions), each mismatch with what to change. Pure over the session's metadata,
 * so `model check`, `doctor` and every model load apply the same rules.
 */
import type { Manifest } from '../../config/manifest.ts';

/** An input or output as onnxruntime describes it (InferenceSession.inputMetadata). */
export interface GraphValue {
  name: string;
  /** Element type (float32, int64…); absent for a non-tensor value. */
  type?: string;
  /** Dimensions: numbers are fixed, strings (or -1) symbolic; empty when unknown. */
  shape: readonly (number | string)[];
}

export interface Graph {
  inputs: readonly GraphValue[];
  outputs: readonly GraphValue[];
}

export interface Problem {
  /** What it is about: a manifest path, a file, a mapping. */
  where: string;
  problem: string;
  fix: string;
}

/** What the graph says the text inputs take (the feeds are built in that type). */
export type IdsType = 'int64' | 'int32';

const fixed = (d: number | string | undefined): d is number => typeof d === 'number' && d > 0;
const dims = (shape: readonly (number | string)[]): string => `[${shape.map(String).join(', ')}]`;

/** `candidates`: the graph's values no other manifest field names (all of them when none is left). */
function nameProblem(where: string, name: string, kind: 'input' | 'output', available: readonly string[], candidates: readonly string[] = available): Problem {
  const names = candidates.length > 0 ? candidates : available;
  return {
    where,
    problem: `the model has no ${kind} "${name}" (its ${kind}s: ${available.join(', ') || 'none'})`,
    fix: `set ${where} to the name of the graph's ${kind} (${names.join(' or ')}); Netron or onnx.load(...).graph.${kind}s shows them`,
  };
}

/** Schema 1 names its inputs and outputs elsewhere: a problem points at the field the file has. */
const V1_PATHS: Record<string, string> = {
  'image.input.name': 'inputs.image.name',
  'image.input.dtype': 'inputs.image.dtype',
  'image.input.channels': 'inputs.image.shape',
  'image.input': 'inputs.image.shape',
  'image.size.height': 'image.size',
  'image.size.width': 'image.size',
  'text.inputs.inputIds': 'inputs.inputIds.name',
  'text.inputs.attentionMask': 'inputs.attentionMask.name',
  'outputs.scores.name': 'outputs.probabilities.name',
};

function inSchema1(p: Problem): Problem {
  const where = V1_PATHS[p.where] ?? p.where;
  return { ...p, where, fix: p.fix.replace(`set ${p.where} `, `set ${where} `) };
}

function imageProblems(value: GraphValue, manifest: Manifest): Problem[] {
  const { input, size } = manifest.image;
  const problems: Problem[] = [];
  if (value.type !== input.dtype) {
    problems.push({
      where: 'image.input.dtype',
      problem: `is ${input.dtype}; the graph's "${value.name}" takes ${value.type ?? 'a non-tensor value'}`,
      fix: value.type === 'float32' || value.type === 'float16' ? `set image.input.dtype to ${value.type}` : 'export the model with a float32 or float16 image input',
    });
  }
  if (value.shape.length === 0) return problems;
  if (value.shape.length !== 4) {
    problems.push({ where: 'image.input', problem: `"${value.name}" has rank ${value.shape.length} ${dims(value.shape)}; pacs-triage feeds [N, C, H, W] or [N, H, W, C]`, fix: 'export the model with a batched 4-D image input (batch dimension first)' });
    return problems;
  }
  const [c, h, w] = input.layout === 'NCHW' ? [1, 2, 3] : [3, 1, 2];
  const channels = value.shape[c];
  if (fixed(channels) && channels !== input.channels) {
    const other = value.shape[input.layout === 'NCHW' ? 3 : 1];
    problems.push({
      where: 'image.input.channels',
      problem: `is ${input.channels}; "${value.name}" ${dims(value.shape)} takes ${channels} at its channel dimension (${input.layout})`,
      fix:
        fixed(other) && other === input.channels
          ? `the graph looks ${input.layout === 'NCHW' ? 'NHWC' : 'NCHW'}: set image.input.layout to ${input.layout === 'NCHW' ? 'NHWC' : 'NCHW'}`
          : channels === 3
            ? 'set image.input.channels to 3 with color replicate-grey (grey radiographs) or rgb, and give normalize.mean and normalize.std three values each (the ones the model was trained with)'
            : `set image.input.channels to ${channels} and give normalize.mean and normalize.std ${channels} value(s)`,
    });
  }
  if (fixed(value.shape[h]) && value.shape[h] !== size.height) {
    problems.push({ where: 'image.size.height', problem: `is ${size.height}; "${value.name}" ${dims(value.shape)} takes ${String(value.shape[h])} rows`, fix: `set image.size.height to ${String(value.shape[h])}` });
  }
  if (fixed(value.shape[w]) && value.shape[w] !== size.width) {
    problems.push({ where: 'image.size.width', problem: `is ${size.width}; "${value.name}" ${dims(value.shape)} takes ${String(value.shape[w])} columns`, fix: `set image.size.width to ${String(value.shape[w])}` });
  }
  // Even a fixed batch of 1: studies are batched (model.maxBatch), and model check runs a batch of several.
  if (fixed(value.shape[0])) {
    problems.push({ where: 'image.input', problem: `"${value.name}" has a fixed batch size ${value.shape[0]}; pacs-triage runs batches of several studies`, fix: 'export with a dynamic batch dimension (dynamic_axes={"...": {0: "N"}} in torch.onnx.export)' });
  }
  return problems;
}

function textProblems(value: GraphValue, where: string): Problem[] {
  const problems: Problem[] = [];
  if (value.type !== 'int64' && value.type !== 'int32') {
    problems.push({ where, problem: `"${value.name}" takes ${value.type ?? 'a non-tensor value'}; token ids and masks are integers`, fix: 'export the model with int64 (or int32) text inputs, or point this at the right input' });
  }
  if (value.shape.length > 0 && value.shape.length !== 2) {
    problems.push({ where, problem: `"${value.name}" has rank ${value.shape.length} ${dims(value.shape)}; pacs-triage feeds [N, S]`, fix: 'export the text inputs as [batch, sequence]' });
  }
  return problems;
}

function outputProblems(value: GraphValue, manifest: Manifest, saliency: boolean): Problem[] {
  const where = saliency ? 'outputs.saliency.name' : 'outputs.scores.name';
  const k = manifest.findings.length;
  const problems: Problem[] = [];
  if (value.type !== 'float32' && value.type !== 'float16') {
    problems.push({ where, problem: `"${value.name}" gives ${value.type ?? 'a non-tensor value'}; a float32 or float16 tensor is needed`, fix: 'point this at a float output' });
  }
  const want = saliency ? 4 : 2;
  if (value.shape.length > 0 && value.shape.length !== want) {
    problems.push({
      where,
      problem: `"${value.name}" has rank ${value.shape.length} ${dims(value.shape)}; ${saliency ? '[N, K, H, W] maps' : '[N, K] scores'} are needed`,
      fix: saliency ? 'export one map per finding at the model input size, or remove outputs.saliency' : 'export the classifier head as [batch, findings]',
    });
    return problems;
  }
  if (fixed(value.shape[1]) && value.shape[1] !== k) {
    problems.push({
      where: 'findings',
      problem: `the manifest lists ${k} findings; "${value.name}" ${dims(value.shape)} gives ${String(value.shape[1])} per item`,
      fix: `list exactly ${String(value.shape[1])} findings, in the order of the model's output`,
    });
  }
  if (saliency) {
    const { width, height } = manifest.image.size;
    if ((fixed(value.shape[2]) && value.shape[2] !== height) || (fixed(value.shape[3]) && value.shape[3] !== width)) {
      problems.push({ where, problem: `"${value.name}" ${dims(value.shape)} is not at the model input size ${height}x${width}`, fix: 'upsample the maps to the model input size inside the model, or remove outputs.saliency' });
    }
  }
  return problems;
}

/** Every mismatch between the manifest and the graph; empty when they agree. */
export function contractProblems(graph: Graph, manifest: Manifest): Problem[] {
  const problems: Problem[] = [];
  const inputs = new Map(graph.inputs.map((v) => [v.name, v]));
  const outputs = new Map(graph.outputs.map((v) => [v.name, v]));
  const inputNames = graph.inputs.map((v) => v.name);
  const outputNames = graph.outputs.map((v) => v.name);
  const declared: [string, string, (v: GraphValue) => Problem[]][] = [['image.input.name', manifest.image.input.name, (v) => imageProblems(v, manifest)]];
  const text = manifest.text;
  if (text) {
    declared.push(['text.inputs.inputIds', text.inputs.inputIds, (v) => textProblems(v, 'text.inputs.inputIds')]);
    declared.push(['text.inputs.attentionMask', text.inputs.attentionMask, (v) => textProblems(v, 'text.inputs.attentionMask')]);
    if (text.inputs.tokenTypeIds !== undefined) declared.push(['text.inputs.tokenTypeIds', text.inputs.tokenTypeIds, (v) => textProblems(v, 'text.inputs.tokenTypeIds')]);
  }
  const misnamed = new Set<string>();
  const fed = new Set(declared.map(([, name]) => name));
  const unfed = inputNames.filter((n) => !fed.has(n));
  for (const [where, name, check] of declared) {
    const value = inputs.get(name);
    if (!value) misnamed.add(where);
    problems.push(...(value ? check(value) : [nameProblem(where, name, 'input', inputNames, unfed)]));
  }
  for (const value of graph.inputs) {
    if (fed.has(value.name)) continue;
    const looksLike = /token_type/i.test(value.name) ? 'text.inputs.tokenTypeIds' : /mask/i.test(value.name) ? 'text.inputs.attentionMask' : /ids/i.test(value.name) ? 'text.inputs.inputIds' : /pixel|image/i.test(value.name) ? 'image.input.name' : undefined;
    // A misnamed input is reported once, by its name problem (which lists the graph's inputs).
    if (looksLike !== undefined && misnamed.has(looksLike)) continue;
    problems.push({
      where: looksLike ?? 'inputs',
      problem: `the model takes an input "${value.name}" ${dims(value.shape)} that the manifest does not feed`,
      fix: looksLike
        ? `name it in ${looksLike}${looksLike.startsWith('text') && !text ? ' (the model reads text: add the manifest\'s text object)' : ''}`
        : 'export the model without it (pacs-triage feeds an image and, optionally, token ids, attention mask and token type ids)',
    });
  }
  const scores = outputs.get(manifest.outputs.scores.name);
  problems.push(...(scores ? outputProblems(scores, manifest, false) : [nameProblem('outputs.scores.name', manifest.outputs.scores.name, 'output', outputNames)]));
  const saliency = manifest.outputs.saliency;
  if (saliency) {
    const value = outputs.get(saliency.name);
    problems.push(...(value ? outputProblems(value, manifest, true) : [nameProblem('outputs.saliency.name', saliency.name, 'output', outputNames)]));
  }
  return manifest.schemaVersion === 1 ? problems.map(inSchema1) : problems;
}

/** The element type of the graph's text inputs (int64 unless it says int32). */
export function idsTypeOf(graph: Graph, manifest: Manifest): IdsType {
  const name = manifest.text?.inputs.inputIds;
  return graph.inputs.find((v) => v.name === name)?.type === 'int32' ? 'int32' : 'int64';
}

/** Problems as the lines of one error message. */
export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `  - ${p.where}: ${p.problem}\n    fix: ${p.fix}`).join('\n');
}
