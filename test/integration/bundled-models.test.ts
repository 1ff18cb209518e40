/**
 * Every bundled model folder (models/<name>/manifest.json) plugs in by its folder alone: `model
 * check` passes, `analyze --model <folder>` runs the demo studies, every SR passes dciodvfy with
 * zero errors and dsrdump reads it, every RiskAssessment is valid R4 with one prediction per
 * finding; a model without saliency writes no SCOORD. A model folder added under models/ is
 * tested by this file with no change to it.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli.ts';
import { parseManifest } from '../../src/config/manifest.ts';
import { bundledModelDirs } from '../harness/models.ts';
import { ACCEPTED_DCIODVFY_WARNING, dciodvfy, dsrdump, fhirProblems } from '../harness/validators.ts';

const DEMO = 'test/fixtures/demo';
const tmp = mkdtempSync(path.join(tmpdir(), 'bundled-models-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (s) => (stdout += `${s}\n`), stderr: (s) => (stderr += `${s}\n`) });
  return { code, stdout, stderr };
}

const dirs = bundledModelDirs();

it('finds the three bundled models (and any added since)', () => {
  expect(dirs).toEqual(expect.arrayContaining(['models/cxr-image-only', 'models/cxr-resnet-bert', 'models/cxr-triage']));
});

describe.each(dirs)('%s', (dir) => {
  const manifest = parseManifest(JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')));
  const out = path.join(tmp, path.basename(dir));

  it('model check passes', async () => {
    const r = await cli('model', 'check', dir);
    expect(r.stdout, r.stdout).toMatch(new RegExp(`^model check ${dir}: ok\\n`));
    expect(r.code).toBe(0);
  });

  it('analyze on the demo studies: an SR and a RiskAssessment per study', async () => {
    const r = await cli('analyze', path.join(DEMO, 'dicom'), '--fhir', path.join(DEMO, 'fhir-bundle.json'), '--model', dir, '--out', out, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const studies = (JSON.parse(r.stdout) as { studies: { status: string; reason?: string; findings?: unknown[] }[] }).studies;
    expect(studies.length).toBeGreaterThan(0);
    for (const s of studies) {
      expect(s.status).toBe('done');
      expect(s.findings).toHaveLength(manifest.findings.length);
      // A model without saliency says so with each result (the page shows it with the notes).
      expect((s.reason ?? '').includes('no saliency: this model gives none')).toBe(!manifest.outputs.saliency);
    }
    expect(readdirSync(out)).toHaveLength(studies.length);
  }, 120_000);

  it('every SR: dciodvfy 0 errors, dsrdump reads the TID 1500 tree; SCOORD only from a model with saliency', () => {
    let scoords = 0;
    for (const study of readdirSync(out)) {
      const file = path.join(out, study, 'sr.dcm');
      const result = dciodvfy(file);
      expect(result.output, file).toContain('Comprehensive3DSR');
      expect(result.errors, result.output).toEqual([]);
      for (const w of result.warnings) expect(w, result.output).toMatch(ACCEPTED_DCIODVFY_WARNING);
      const tree = dsrdump(file);
      expect(tree).toContain('<CONTAINER:(,,"Imaging Measurement Report")=SEPARATE>');
      expect(tree).toContain(manifest.id);
      if (tree.includes('SCOORD')) scoords++;
    }
    if (!manifest.outputs.saliency) expect(scoords).toBe(0);
    // Positive control: the reference model's saliency gives regions on the demo studies.
    if (dir === 'models/cxr-triage') expect(scoords).toBeGreaterThan(0);
  });

  it('every RiskAssessment: valid R4, one prediction per finding in [0, 1], the model as its method and performer', () => {
    for (const study of readdirSync(out)) {
      const ra = JSON.parse(readFileSync(path.join(out, study, 'risk-assessment.json'), 'utf8')) as Record<string, any>;
      expect(ra['resourceType']).toBe('RiskAssessment');
      expect(fhirProblems(ra), study).toEqual([]);
      expect(ra['prediction']).toHaveLength(manifest.findings.length);
      for (const p of ra['prediction'] as { probabilityDecimal: number }[]) {
        expect(p.probabilityDecimal).toBeGreaterThanOrEqual(0);
        expect(p.probabilityDecimal).toBeLessThanOrEqual(1);
      }
      expect(ra['method'].coding[0].code).toBe(manifest.id);
      expect(ra['performer']).toMatchObject({ type: 'Device', display: `${manifest.name} ${manifest.version}` });
    }
  });
});
