/**
 * `pacs-triage analyze FILE --no-select --json` on every pydicom sample file (issue 5, "Must
 * show"): exit 0 with a result for the files that decode, exit 1 with a clear message naming the
 * error for the others (the split in pydicom-samples.ts, plus CLI_ONLY_FAILURES: files that
 * decode but fail later in the pipeline), never a crash or a stack trace.
 * Runs the real model on CPU, one CLI run per file (about half a second each).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli.ts';
import { CLI_ONLY_FAILURES, EXPECTED_FAILURES, FIXTURES, sampleFiles } from '../../harness/pydicom-samples.ts';

interface Study {
  studyInstanceUID: string;
  status: string;
  reason?: string;
  findings?: { code: string; probability: number }[];
  file?: string;
}

async function analyze(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['analyze', file, '--no-select', '--json'], { stdout: (s) => (stdout += s + '\n'), stderr: (s) => (stderr += s + '\n') });
  return { code, stdout, stderr };
}

describe('pacs-triage analyze --no-select on every pydicom sample file', () => {
  it.each(sampleFiles())('%s', async (name) => {
    const run = await analyze(path.join(FIXTURES, name));
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(run.stdout).not.toMatch(/\n\s+at /);
    const { studies } = JSON.parse(run.stdout) as { studies: Study[] };
    expect(studies).toHaveLength(1);
    const [study] = studies as [Study];
    const failure = EXPECTED_FAILURES[name] ?? CLI_ONLY_FAILURES[name];
    if (failure === undefined) {
      expect(run.code, run.stderr).toBe(0);
      expect(study.status, study.reason).toBe('done');
      expect(study.findings?.length).toBeGreaterThan(0);
      for (const f of study.findings ?? []) expect(Number.isFinite(f.probability)).toBe(true);
      return;
    }
    expect(run.code).toBe(1);
    expect(study.status).toBe('failed');
    expect(study.reason).toMatch(new RegExp(`^${failure.code}: `));
    expect(study.reason?.slice(failure.code.length + 2)).toMatch(failure.message);
    // "pacs-triage analyze: <file or study UID>: CODE: message"
    expect(run.stderr).toMatch(new RegExp(`^pacs-triage analyze: \\S+: ${failure.code}: `));
  });
});
