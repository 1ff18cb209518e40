/**
 * `model check`: each problem a team adding its model meets is reported with its fix — on copies
 * of the bundled model folders with one thing changed, run against the real ONNX files.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkModel, formatModelCheck, type ModelCheckReport } from '../../../src/compose/model-check.ts';
import { doctor } from '../../../src/compose/doctor.ts';
import { main } from '../../../src/cli.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { createLogger } from '../../../src/observability/logging.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'model-check-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Json = Record<string, any>;

let n = 0;
/** A copy of models/<name> with its manifest changed by `edit` (and, optionally, files removed). */
function variant(name: string, edit: (m: Json) => void, remove: string[] = []): string {
  const dir = path.join(tmp, `${name}-${n++}`);
  cpSync(path.join('models', name), dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Json;
  edit(manifest);
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  for (const f of remove) rmSync(path.join(dir, f));
  return dir;
}

const check = (dir: string): Promise<ModelCheckReport> => checkModel(dir, { mappingsDir: 'mappings' });
const where = (r: ModelCheckReport): string[] => r.problems.map((p) => p.where);

describe('model check', () => {
  it('the bundled models pass, with a summary of what each needs and produces', async () => {
    for (const name of ['cxr-triage', 'cxr-resnet-bert', 'cxr-image-only']) {
      const r = await check(path.join('models', name));
      expect(r.problems).toEqual([]);
      const text = formatModelCheck(r);
      expect(text).toMatch(/^model check models\/cxr-[a-z-]+: ok\n/);
      expect(text).toContain('synthetic batch');
      expect(text).toContain('all as the manifest says');
    }
  }, 60_000);

  it('a wrong input name: names the graph\'s inputs', async () => {
    const r = await check(variant('cxr-image-only', (m) => (m['image'].input.name = 'image')));
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([{
      where: 'image.input.name',
      problem: 'the model has no input "image" (its inputs: pixel_values)',
      fix: 'set image.input.name to the name of the graph\'s input (pixel_values); Netron or onnx.load(...).graph.inputs shows them',
    }]);
  });

  it('a wrong channel count: says what the graph takes and that mean/std need one value per channel', async () => {
    const r = await check(
      variant('cxr-image-only', (m) => {
        m['image'].input.channels = 1;
        m['image'].normalize = { mean: 0.5, std: 0.25 };
      }),
    );
    const p = r.problems.find((x) => x.where === 'image.input.channels');
    expect(p?.problem).toBe('is 1; "pixel_values" [N, 3, 224, 224] takes 3 at its channel dimension (NCHW)');
    expect(p?.fix).toContain('set image.input.channels to 3');
  });

  it('a missing tokenizer: where to get it', async () => {
    const r = await check(variant('cxr-resnet-bert', () => undefined, ['tokenizer.json']));
    const p = r.problems.find((x) => x.where === 'text.tokenizer');
    expect(p?.problem).toMatch(/tokenizer\.json does not exist$/);
    expect(p?.fix).toContain('backend_tokenizer.save("tokenizer.json")');
    expect(formatModelCheck(r)).toContain('    fix: save the tokenizer the model was trained with');
  });

  it('logits declared as probabilities: values outside [0, 1] in the synthetic batch', async () => {
    const r = await check(variant('cxr-image-only', (m) => (m['outputs'].scores = { name: 'logits', kind: 'probabilities' })));
    expect(where(r)).toEqual(['outputs.scores.kind']);
    expect(r.problems[0]?.problem).toMatch(/^is probabilities, but "logits" gave \d+ of 8 values outside \[0, 1\] on the synthetic batch \(e\.g\. -?\d+\.\d{3}\): these look like logits$/);
    expect(r.problems[0]?.fix).toBe('set outputs.scores.kind to "logits" with activation "sigmoid" (independent findings) or "softmax" (mutually exclusive classes)');
  });

  it('a finding without mapping: the file and the entry to add', async () => {
    const r = await check(variant('cxr-image-only', (m) => (m['findings'][3].code = 'pulmonary_nodule')));
    expect(r.problems).toContainEqual({
      where: 'findings coded',
      problem: 'pulmonary_nodule of model pacs-triage-cxr-image-only has no coded concept in mappings/findings.yaml: the SR and the RiskAssessment cannot be written for any study',
      fix: 'add findings.pulmonary_nodule (concept: a SNOMED CT code; radlex: a RadLex code) to mappings/findings.yaml',
    });
  });

  it('a hash mismatch: the actual hash, and when to change the version and Device UID', async () => {
    const r = await check(variant('cxr-image-only', (m) => (m['onnx'].sha256 = '0'.repeat(64))));
    expect(where(r)).toEqual(['onnx.sha256']);
    const actual = JSON.parse(readFileSync('models/cxr-image-only/manifest.json', 'utf8')).onnx.sha256 as string;
    expect(r.problems[0]?.problem).toBe(`is ${'0'.repeat(64)}; model.onnx has ${actual}`);
    expect(r.problems[0]?.fix).toContain(`set onnx.sha256 to ${actual} (and, for a retrained model, a new version and deviceUid)`);
  });

  it('a model that reads text, described as image-only: the unfed inputs are named', async () => {
    const r = await check(variant('cxr-resnet-bert', (m) => delete m['text']));
    expect(where(r)).toEqual(['text.inputs.inputIds', 'text.inputs.attentionMask', 'text.inputs.tokenTypeIds']);
    expect(r.problems[0]?.fix).toContain("add the manifest's text object");
  });

  it('an invalid manifest: every schema problem, each with its path', async () => {
    const r = await check(
      variant('cxr-image-only', (m) => {
        m['image'].input.layout = 'CHW';
        delete m['deviceUid'];
      }),
    );
    expect(where(r).sort()).toEqual(['manifest.json deviceUid', 'manifest.json image.input.layout']);
  });

  it('doctor runs the same check: its model check fails with the problem and the fix', async () => {
    const dir = variant('cxr-image-only', (m) => (m['image'].input.name = 'image'));
    const config = loadConfig({ env: {}, overrides: { model: { dir } } });
    const report = await doctor(config, createLogger('silent'));
    const model = report.checks.find((c) => c.name === 'model');
    expect(model).toMatchObject({ status: 'fail', detail: `1 problem in ${path.resolve(dir)}: image.input.name: the model has no input "image" (its inputs: pixel_values)` });
    expect(model?.fix).toContain('set image.input.name to the name of the graph\'s input (pixel_values)');
    expect(report.ok).toBe(false);
  });

  it('the command: exit 1 and each problem with its fix; exit 0 and the summary; exit 2 without a folder', async () => {
    let stdout = '';
    const out = { stdout: (t: string) => (stdout += `${t}\n`), stderr: () => undefined };
    const dir = variant('cxr-image-only', (m) => (m['onnx'].sha256 = 'f'.repeat(64)));
    expect(await main(['model', 'check', dir], out)).toBe(1);
    expect(stdout).toMatch(new RegExp(`^model check ${dir}: 1 problem\n  - onnx.sha256: is f{64}; model.onnx has [0-9a-f]{64}\n    fix: if this .onnx is the model you mean to run`));
    stdout = '';
    expect(await main(['model', 'check', 'models/cxr-image-only'], out)).toBe(0);
    expect(stdout).toContain('no saliency: the SR has no image region');
    expect(await main(['model', 'check'], out)).toBe(2);
  });

  it('doctor with several models (config models): a model check and mapping checks per folder, named by it', async () => {
    const broken = variant('cxr-image-only', (m) => (m['findings'][3].code = 'pulmonary_nodule'));
    const config = loadConfig({ env: {}, overrides: { models: ['models/cxr-triage', broken] } });
    const report = await doctor(config, createLogger('silent'));
    const named = report.checks.filter((c) => c.name.includes('(')).map((c) => [c.name, c.status]);
    expect(named).toEqual([
      ['model (models/cxr-triage)', 'ok'],
      [`model (${broken})`, 'ok'],
      ['findings coded (models/cxr-triage)', 'ok'],
      ['priority rules (models/cxr-triage)', 'ok'],
      ['selection rules (models/cxr-triage)', 'ok'],
      [`findings coded (${broken})`, 'fail'],
      [`priority rules (${broken})`, 'warn'],
      [`selection rules (${broken})`, 'ok'],
    ]);
  }, 60_000);
});
