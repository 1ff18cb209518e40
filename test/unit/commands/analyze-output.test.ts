/**
 * `analyze` where its input or its output is not what it should be: a folder without DICOM says
 * so and exits 1; an --out that cannot be written is a usage error (exit 2) found before the model
 * runs, and nothing claims files were written when none were.
 */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli.ts';
import { writtenLine } from '../../../src/commands/analyze.ts';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (s) => (stdout += s + '\n'), stderr: (s) => (stderr += s + '\n') });
  return { code, stdout, stderr };
}

const tmp = mkdtempSync(path.join(tmpdir(), 'pacs-triage-analyze-out-'));
const CT = 'test/fixtures/pydicom/CT_small.dcm';

describe('analyze: no DICOM in', () => {
  it('an empty folder: says there is no DICOM and exits 1, without an empty table', async () => {
    const empty = path.join(tmp, 'empty');
    mkdirSync(empty);
    const run = await cli(['analyze', empty]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`pacs-triage analyze: no DICOM files in ${empty}\n`);
    expect(run.stdout).toBe('');
  });

  it('a folder of files that are not DICOM: each named with its error, then that there was no DICOM; exit 1', async () => {
    const junk = path.join(tmp, 'junk');
    mkdirSync(junk);
    writeFileSync(path.join(junk, 'a.bin'), 'not DICOM');
    writeFileSync(path.join(junk, 'b.bin'), 'not DICOM either');
    const run = await cli(['analyze', junk, '--json']);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toEqual({ studies: [expect.objectContaining({ status: 'failed', file: path.join(junk, 'a.bin') }), expect.objectContaining({ status: 'failed', file: path.join(junk, 'b.bin') })] });
    expect(run.stderr).toMatch(/a\.bin: DICOM_UNREADABLE/);
    expect(run.stderr).toContain(`no DICOM files in ${junk} (2 files were not readable DICOM)`);
  });
});

describe('analyze --out', () => {
  it('under a file: a usage error naming the folder and why, before any study runs; nothing claimed', async () => {
    const file = path.join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const run = await cli(['analyze', CT, '--no-select', '--out', path.join(file, 'out')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`pacs-triage analyze: USAGE: --out ${path.join(file, 'out')}: cannot write results there (it, or a folder above it, is a file)\n`);
    expect(run.stdout).toBe('');
  });

  it('that is a file itself: the same usage error', async () => {
    const file = path.join(tmp, 'another-file');
    writeFileSync(file, 'x');
    const run = await cli(['analyze', CT, '--out', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`--out ${file}: cannot write results there (it, or a folder above it, is a file)`);
  });

  it('a study that gives no result (skipped): the folder is made, nothing is said to be written', async () => {
    const out = path.join(tmp, 'out-skipped');
    const run = await cli(['analyze', CT, '--out', out]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Nothing written under ${out}/ (no study gave a result).`);
    expect(run.stdout).not.toMatch(/files? written/);
    expect(readdirSync(out)).toEqual([]);
  });

  it('counts what was written', () => {
    const done = { studyInstanceUID: '1.2', status: 'done' as const, outputs: { sr: '/o/1.2/sr.dcm', riskAssessment: '/o/1.2/risk-assessment.json' } };
    const srOnly = { studyInstanceUID: '1.3', status: 'done' as const, outputs: { sr: '/o/1.3/sr.dcm' } };
    expect(writtenLine([done, srOnly, { studyInstanceUID: '1.4', status: 'failed' }], '/o')).toBe('2 SR files and 1 RiskAssessment file written under /o/<StudyInstanceUID>/');
    expect(writtenLine([], '/o')).toBe('Nothing written under /o/ (no study gave a result).');
  });
});
