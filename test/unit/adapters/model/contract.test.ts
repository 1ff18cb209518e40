/** The manifest against an ONNX graph's inputs and outputs: pure, on graphs described here. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { contractProblems, idsTypeOf, type Graph } from '../../../../src/adapters/model/contract.ts';
import { parseManifest, type Manifest } from '../../../../src/config/manifest.ts';

const resnetBert = parseManifest(JSON.parse(readFileSync('models/cxr-resnet-bert/manifest.json', 'utf8')));
const reference = parseManifest(JSON.parse(readFileSync('models/cxr-triage/manifest.json', 'utf8')));

const text = (type = 'int64') => [
  { name: 'input_ids', type, shape: ['N', 'S'] },
  { name: 'attention_mask', type, shape: ['N', 'S'] },
  { name: 'token_type_ids', type, shape: ['N', 'S'] },
];
const graph = (image: (string | number)[] = ['N', 3, 224, 224], extra: Partial<Graph> = {}): Graph => ({
  inputs: [{ name: 'pixel_values', type: 'float32', shape: image }, ...text()],
  outputs: [{ name: 'logits', type: 'float32', shape: ['N', 4] }],
  ...extra,
});
const wheres = (g: Graph, m: Manifest = resnetBert): string[] => contractProblems(g, m).map((p) => p.where);

describe('contractProblems', () => {
  it('agrees with a graph that takes and gives what the manifest says (symbolic dimensions are fine)', () => {
    expect(contractProblems(graph(), resnetBert)).toEqual([]);
    expect(contractProblems(graph([-1, 3, -1, -1]), resnetBert)).toEqual([]);
  });

  it('an NHWC graph under an NCHW manifest: says to switch the layout', () => {
    const [p] = contractProblems(graph(['N', 224, 224, 3]), resnetBert);
    expect(p).toMatchObject({ where: 'image.input.channels', fix: 'the graph looks NHWC: set image.input.layout to NHWC' });
  });

  it('size, dtype, fixed batch', () => {
    expect(wheres(graph(['N', 3, 256, 224]))).toEqual(['image.size.height']);
    expect(wheres(graph([1, 3, 224, 224]))).toEqual(['image.input']);
    const f16 = { ...graph(), inputs: [{ name: 'pixel_values', type: 'float16', shape: ['N', 3, 224, 224] }, ...text()] };
    expect(contractProblems(f16, resnetBert)[0]).toMatchObject({ where: 'image.input.dtype', fix: 'set image.input.dtype to float16' });
  });

  it('the number of findings against the scores output', () => {
    const g = graph(undefined, { outputs: [{ name: 'logits', type: 'float32', shape: ['N', 5] }] });
    expect(contractProblems(g, resnetBert)).toEqual([
      { where: 'findings', problem: 'the manifest lists 4 findings; "logits" [N, 5] gives 5 per item', fix: 'list exactly 5 findings, in the order of the model\'s output' },
    ]);
  });

  it('saliency maps not at the model input size', () => {
    const g: Graph = {
      inputs: [{ name: 'image', type: 'float32', shape: ['N', 1, 224, 224] }, ...text().slice(0, 2)],
      outputs: [
        { name: 'probabilities', type: 'float32', shape: ['N', 4] },
        { name: 'saliency', type: 'float32', shape: ['N', 4, 14, 14] },
      ],
    };
    expect(wheres(g, reference)).toEqual(['outputs.saliency.name']);
  });

  it('int32 text inputs are fed as int32; float text inputs are refused', () => {
    const g32 = { ...graph(), inputs: [graph().inputs[0]!, ...text('int32')] };
    expect(contractProblems(g32, resnetBert)).toEqual([]);
    expect(idsTypeOf(g32, resnetBert)).toBe('int32');
    expect(idsTypeOf(graph(), resnetBert)).toBe('int64');
    const gf = { ...graph(), inputs: [graph().inputs[0]!, ...text('float32')] };
    expect(wheres(gf)).toEqual(['text.inputs.inputIds', 'text.inputs.attentionMask', 'text.inputs.tokenTypeIds']);
  });

  it('a graph input the manifest does not feed is named, with where it probably belongs', () => {
    const { tokenTypeIds: _dropped, ...inputs } = resnetBert.text!.inputs;
    const m: Manifest = { ...resnetBert, text: { ...resnetBert.text!, inputs } };
    expect(contractProblems(graph(), m)).toEqual([
      { where: 'text.inputs.tokenTypeIds', problem: 'the model takes an input "token_type_ids" [N, S] that the manifest does not feed', fix: 'name it in text.inputs.tokenTypeIds' },
    ]);
  });
});
