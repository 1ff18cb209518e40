/**
 * The CLI as a user meets it: the demo data through `analyze`, exit codes, and clear messages
 * (never a stack trace) for bad input. Runs the real model on CPU; no servers.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli.ts';
import { readSr } from '../../../src/pipeline/encode/sr-read.ts';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (s) => (stdout += s + '\n'), stderr: (s) => (stderr += s + '\n') });
  return { code, stdout, stderr };
}

const DEMO = 'test/fixtures/demo';
const tmp = mkdtempSync(path.join(tmpdir(), 'pacs-triage-cli-'));

interface Study {
  studyInstanceUID: string;
  status: string;
  reason?: string;
  priority?: string;
  findings?: { code: string; display: string; probability: number; positive: boolean }[];
  outputs?: { sr?: string; riskAssessment?: string };
}

describe('pacs-triage analyze', () => {
  it('runs the demo: a ranked result per study, an SR and a RiskAssessment per study', async () => {
    const out = path.join(tmp, 'demo');
    const run = await cli(['analyze', `${DEMO}/dicom`, '--fhir', `${DEMO}/fhir-bundle.json`, '--out', out, '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const { studies } = JSON.parse(run.stdout) as { studies: Study[] };
    expect(studies).toHaveLength(readdirSync(`${DEMO}/dicom`).filter((f) => f.endsWith('.dcm')).length);
    const order = ['stat', 'asap', 'urgent', 'routine'];
    const ranks = studies.map((s) => order.indexOf(s.priority ?? ''));
    expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);
    for (const s of studies) {
      expect(s.status).toBe('done');
      expect(s.findings?.map((f) => f.code)).toEqual(['pneumothorax', 'pleural_effusion', 'consolidation', 'lung_nodule']);
      const sr = readSr(readFileSync(s.outputs!.sr!));
      expect(sr.studyInstanceUID).toBe(s.studyInstanceUID);
      expect(sr.findings.map((f) => f.positive)).toEqual(s.findings!.map((f) => f.positive));
      const risk = JSON.parse(readFileSync(s.outputs!.riskAssessment!, 'utf8')) as { resourceType: string; prediction: unknown[] };
      expect(risk.resourceType).toBe('RiskAssessment');
      expect(risk.prediction).toHaveLength(4);
    }
    // The demo is chosen so the worklist is not flat: something is urgent or worse, something routine.
    expect(ranks[0]).toBeLessThan(3);
    expect(ranks[ranks.length - 1]).toBe(3);
  });

  it('is deterministic: the same input gives the same findings and priorities', async () => {
    const a = await cli(['analyze', `${DEMO}/dicom`, '--fhir', `${DEMO}/fhir-bundle.json`, '--json']);
    const b = await cli(['analyze', `${DEMO}/dicom`, '--fhir', `${DEMO}/fhir-bundle.json`, '--json']);
    expect(JSON.parse(a.stdout)).toEqual(JSON.parse(b.stdout));
  });

  it('skips a non-chest study with the reason and exits 0; --no-select runs it anyway', async () => {
    const ct = 'test/fixtures/pydicom/CT_small.dcm';
    const run = await cli(['analyze', ct, '--json']);
    expect(run.code).toBe(0);
    const [study] = (JSON.parse(run.stdout) as { studies: Study[] }).studies;
    expect(study).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/no series matches the selection rules/) });
    const forced = await cli(['analyze', ct, '--no-select', '--json']);
    expect(forced.code).toBe(0);
    expect((JSON.parse(forced.stdout) as { studies: Study[] }).studies[0]?.status).toBe('done');
  });

  it('names a file that is not DICOM, goes on with the others, and exits 1', async () => {
    const junk = path.join(tmp, 'junk.dcm');
    writeFileSync(junk, 'this is not a DICOM file at all');
    const run = await cli(['analyze', junk, 'test/fixtures/pydicom/CT_small.dcm', '--json']);
    expect(run.code).toBe(1);
    const studies = (JSON.parse(run.stdout) as { studies: (Study & { file?: string })[] }).studies;
    expect(studies.map((s) => s.status).sort()).toEqual(['failed', 'skipped']);
    expect(run.stderr).toMatch(/junk\.dcm: DICOM_UNREADABLE/);
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('usage and configuration errors exit 2 with a message', async () => {
    expect((await cli(['analyze'])).code).toBe(2);
    expect((await cli(['analyze', '/no/such/dir'])).code).toBe(2);
    const bad = await cli(['analyze', DEMO, '--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Unknown option '--bogus'/);
    expect((await cli(['nope'])).code).toBe(2);
    const cfg = path.join(tmp, 'bad.yaml');
    writeFileSync(cfg, 'model:\n  maxBatch: 0\n');
    const conf = await cli(['analyze', DEMO, '--config', cfg]);
    expect(conf.code).toBe(2);
    expect(conf.stderr).toMatch(/CONFIG_INVALID: configuration is invalid:\n\s+- model\.maxBatch/);
  });

  it('refuses a model whose file does not match its manifest hash', async () => {
    const dir = path.join(tmp, 'model');
    const { mkdirSync, copyFileSync } = await import('node:fs');
    mkdirSync(dir);
    for (const f of ['manifest.json', 'tokenizer.json']) copyFileSync(path.join('models/cxr-triage', f), path.join(dir, f));
    writeFileSync(path.join(dir, 'model.onnx'), 'not the model');
    const run = await cli(['evaluate', '--model', dir]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/MANIFEST_INVALID: model file model\.onnx does not match its manifest: sha256 is [0-9a-f]{64}/);
  });

  it('refuses a manifest whose input names are not the graph\'s, naming both', async () => {
    const dir = path.join(tmp, 'renamed');
    const { mkdirSync, copyFileSync } = await import('node:fs');
    mkdirSync(dir);
    for (const f of ['model.onnx', 'tokenizer.json']) copyFileSync(path.join('models/cxr-triage', f), path.join(dir, f));
    const manifest = JSON.parse(readFileSync('models/cxr-triage/manifest.json', 'utf8')) as { inputs: { image: { name: string } } };
    manifest.inputs.image.name = 'pixels';
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    const run = await cli(['evaluate', '--model', dir]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('does not match its ONNX graph:\n  - inputs.image.name: the model has no input "pixels" (its inputs: image, input_ids, attention_mask)\n    fix: set inputs.image.name to the name of the graph\'s input (image);');
  });
});
