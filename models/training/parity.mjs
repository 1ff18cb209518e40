// ONNX side of the PyTorch <-> onnxruntime parity check for the seed-architecture models.
//
//   node models/training/parity.mjs <model.onnx> <dir-with-parity.json> [tolerance]
//
// parity.json (written by build_seed_arch.py): { "cases": [ { "name": ...,
//   "inputs":  { "<onnx input name>": { "file": "x.f32" | "x.i64", "dtype": "float32" | "int64", "dims": [...] } },
//   "outputs": { "<onnx output name>": { "file": "y.f32", "dims": [...] } } } ] }
// Raw files are little-endian. Runs every case with onnxruntime-node (CPU) and prints the
// max |diff| per case and overall as JSON on the last line; exit code 1 above tolerance.
//
// A model folder's reference/ (reference.json without parity.json) is checked the same way:
//   node models/training/parity.mjs models/cxr-resnet-bert/model.onnx models/cxr-resnet-bert/reference
// runs each case's pixel_values (+ token ids) and both ablations and compares with the
// PyTorch logits stored there.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';

const [modelPath, dir, tolArg] = process.argv.slice(2);
if (!modelPath || !dir) {
  console.error('usage: node parity.mjs <model.onnx> <dir> [tolerance]');
  process.exit(2);
}
const tol = tolArg ? Number(tolArg) : 1e-4;
const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'] });
console.log(`inputs ${JSON.stringify(session.inputNames)} outputs ${JSON.stringify(session.outputNames)}`);
if (!existsSync(join(dir, 'parity.json')) && existsSync(join(dir, 'reference.json'))) {
  await checkReference();
  process.exit(0);
}
const spec = JSON.parse(readFileSync(join(dir, 'parity.json'), 'utf8'));

function load(file, dtype, dims) {
  const buf = readFileSync(join(dir, file));
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const data = dtype === 'int64' ? new BigInt64Array(ab) : new Float32Array(ab);
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`${file}: ${data.length} values, dims ${dims}`);
  return new ort.Tensor(dtype, data, dims);
}

let worst = 0;
const perCase = {};
for (const c of spec.cases) {
  const feeds = {};
  for (const [name, t] of Object.entries(c.inputs)) feeds[name] = load(t.file, t.dtype, t.dims);
  const out = await session.run(feeds);
  let d = 0;
  for (const [name, t] of Object.entries(c.outputs)) {
    const ref = load(t.file, 'float32', t.dims).data;
    const got = out[name];
    if (!got) throw new Error(`no output ${name}`);
    if (JSON.stringify(Array.from(got.dims)) !== JSON.stringify(t.dims)) throw new Error(`${c.name}: dims ${got.dims} != ${t.dims}`);
    for (let i = 0; i < ref.length; i++) {
      if (!Number.isFinite(got.data[i])) throw new Error(`${c.name}: non-finite output`);
      d = Math.max(d, Math.abs(got.data[i] - ref[i]));
    }
  }
  perCase[c.name] = d;
  worst = Math.max(worst, d);
  console.log(`${c.name}: max|diff| ${d.toExponential(2)}`);
}
console.log(JSON.stringify({ maxAbsDiff: worst, tolerance: tol, cases: perCase }));
process.exit(worst < tol ? 0 : 1);

async function checkReference() {
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
  const [c0, c1, h, w] = [1, ...ref.pixelValuesShape];
  const hasText = session.inputNames.includes('input_ids');
  const i64 = (a) => new ort.Tensor('int64', BigInt64Array.from(a.map(BigInt)), [1, a.length]);
  let worstRef = 0;
  const per = {};
  for (const c of ref.cases) {
    const buf = readFileSync(join(dir, c.pixelValues));
    const px = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const variants = [['fused', px, c.inputIds, c.attentionMask, c.tokenTypeIds, c.logits],
      ['imageBlanked', new Float32Array(px.length), c.inputIds, c.attentionMask, c.tokenTypeIds, c.logitsImageBlanked]];
    if (hasText) {
      const m = ref.ablations?.textMasked ?? { inputIds: [2, 3], attentionMask: [1, 1], tokenTypeIds: [0, 0] };
      variants.push(['textMasked', px, m.inputIds, m.attentionMask, m.tokenTypeIds, c.logitsTextMasked]);
    }
    for (const [name, pixels, ids, mask, types, expected] of variants) {
      const feeds = { pixel_values: new ort.Tensor('float32', pixels, [c0, c1, h, w]) };
      if (hasText) Object.assign(feeds, { input_ids: i64(ids), attention_mask: i64(mask), token_type_ids: i64(types) });
      const out = (await session.run(feeds)).logits.data;
      let d = 0;
      for (let k = 0; k < expected.length; k++) d = Math.max(d, Math.abs(out[k] - expected[k]));
      per[`${c.id}/${name}`] = d;
      worstRef = Math.max(worstRef, d);
      console.log(`${c.id} ${name}: max|diff| ${d.toExponential(2)}`);
    }
  }
  console.log(JSON.stringify({ maxAbsDiff: worstRef, tolerance: tol, cases: per }));
  if (!(worstRef < tol)) process.exit(1);
}
