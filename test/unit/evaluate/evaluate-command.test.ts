/**
 * `evaluate` on a small copy of the shipped test set: calibration per variant in the JSON, PNG
 * reliability plots with --plots, and broken cases named by id and file (an unreadable FHIR
 * JSON used to be a bare "INTERNAL: Unexpected token…").
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'evaluate-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Index {
  cases: { id: string; dicom: string; fhir?: string }[];
  [key: string]: unknown;
}

/** The first `n` cases of models/testset, copied; `broken` may spoil some files afterwards. */
function evalSet(name: string, n: number, broken: (dir: string, index: Index) => void = () => undefined): string {
  const dir = path.join(tmp, name);
  mkdirSync(path.join(dir, 'dicom'), { recursive: true });
  mkdirSync(path.join(dir, 'fhir'), { recursive: true });
  const index = JSON.parse(readFileSync('models/testset/index.json', 'utf8')) as Index;
  index.cases = index.cases.slice(0, n);
  for (const c of index.cases) for (const f of [c.dicom, c.fhir]) if (f !== undefined) cpSync(path.join('models/testset', f), path.join(dir, f));
  broken(dir, index);
  writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
  return dir;
}

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['evaluate', ...args], { stdout: (s) => (stdout += `${s}\n`), stderr: (s) => (stderr += `${s}\n`) });
  return { code, stdout, stderr };
}

describe('evaluate', () => {
  let good: string;
  beforeAll(() => {
    good = evalSet('good', 12);
  });

  it('--json: each variant has Brier, ECE and a 10-bin reliability table; --plots writes a PNG per variant', async () => {
    const plots = path.join(tmp, 'plots');
    const r = await run('--data', good, '--json', '--plots', plots);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { n: number; variants: Record<string, { macro: { brier: number; ece: number }; calibration: { bins: { n: number }[] } }> };
    expect(report.n).toBe(12);
    expect(Object.keys(report.variants)).toEqual(['fused', 'imageOnly', 'textOnly']);
    for (const v of Object.values(report.variants)) {
      expect(v.macro.brier).toBeGreaterThanOrEqual(0);
      expect(v.macro.ece).toBeGreaterThanOrEqual(0);
      expect(v.calibration.bins).toHaveLength(10);
      expect(v.calibration.bins.reduce((a, b) => a + b.n, 0)).toBe(12 * 4);
    }
    for (const variant of ['fused', 'imageOnly', 'textOnly']) {
      const png = readFileSync(path.join(plots, `reliability-${variant}.png`));
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    }
    expect(r.stderr).toContain(`reliability plots: ${path.join(plots, 'reliability-fused.png')}`);
  }, 120_000);

  it('an image-only model: the fused variant only', async () => {
    const r = await run('--data', good, '--json', '--model', 'models/cxr-image-only');
    expect(r.code).toBe(0);
    expect(Object.keys((JSON.parse(r.stdout) as { variants: object }).variants)).toEqual(['fused']);
  }, 120_000);

  it('the text report has the reliability table', async () => {
    const r = await run('--data', good);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('reliability (all findings pooled: Brier');
    expect(r.stdout).toMatch(/\n {4}0\.9–1\.0 +\d+ /);
  }, 120_000);

  it('broken cases: each named with its id, its file and what is wrong; nothing is run', async () => {
    const bad = evalSet('bad', 4, (dir, index) => {
      const [a, b] = index.cases;
      writeFileSync(path.join(dir, a!.fhir!), '{ "resourceType": "Bundle", ');
      writeFileSync(path.join(dir, b!.dicom), 'not dicom');
    });
    const r = await run('--data', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pacs-triage evaluate: [A-Z_]+: 2 of 4 cases of .* cannot be evaluated:\n/);
    expect(r.stderr).toMatch(/\n {2}- case case0001 \(fhir\/case0001\.json\): is not JSON \(.+\)\n/);
    expect(r.stderr).toMatch(/\n {2}- case case0002 \(dicom\/case0002\.dcm\): .+/);
    expect(r.stderr).not.toContain('INTERNAL');
  }, 120_000);
});
