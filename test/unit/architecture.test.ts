/**
 * The layout's rules, checked by the test command: imports point down the layers
 * (.dependency-cruiser.cjs says which), no cycles, and no hand-written source file in src/ over
 * 400 lines (a file that long is two modules).
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cruise, type IReporterOutput } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|mjs|js)$/.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

describe('architecture', () => {
  async function cruiseWithRules(paths: string[]): Promise<{ violations: string[]; totalCruised: number }> {
    const config = (await import(path.join(ROOT, '.dependency-cruiser.cjs'))) as { default: { forbidden: unknown[]; options: Record<string, unknown> } };
    // validate: true is what makes the API apply the rules; without it cruise() only maps imports
    // and reports no violation whatever the code does (the CLI sets it for you).
    const result: IReporterOutput = await cruise(paths, { ...config.default.options, validate: true, ruleSet: { forbidden: config.default.forbidden } } as never, undefined, {
      tsConfig: { fileName: path.join(ROOT, 'tsconfig.json') },
    } as never);
    const output = result.output as { summary: { violations: { rule: { name: string }; from: string; to: string }[]; totalCruised: number } };
    return { violations: output.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`), totalCruised: output.summary.totalCruised };
  }

  it('every import in src/ points down the layers, and there is no cycle (dependency-cruiser)', async () => {
    const { violations, totalCruised } = await cruiseWithRules(['src']);
    expect(violations).toEqual([]);
    expect(totalCruised).toBeGreaterThan(100);
    // Resolving every import of ~200 files takes seconds on a loaded 2-core machine.
  }, 60_000);

  it('the rules do fire: a domain module importing the pipeline is reported (so a green run above means something)', async () => {
    const probeDomain = path.join(ROOT, 'src/domain/.arch-probe.ts');
    try {
      writeFileSync(probeDomain, "import { processStudy } from '../pipeline/process-study.ts';\nexport const probe: unknown = processStudy;\n");
      const { violations } = await cruiseWithRules([path.relative(ROOT, probeDomain)]);
      expect(violations).toContain('domain-imports-down-only: src/domain/.arch-probe.ts → src/pipeline/process-study.ts');
    } finally {
      rmSync(probeDomain, { force: true });
    }
  }, 60_000);

  it('no source file in src/ has more than 400 lines', () => {
    const long = sources('src')
      .map((file) => ({ file, lines: readFileSync(path.join(ROOT, file), 'utf8').split('\n').length }))
      .filter((f) => f.lines > 400)
      .map((f) => `${f.file}: ${f.lines}`);
    expect(long).toEqual([]);
  });
});

describe('log events', () => {
  it('every log line in src/ goes through the catalogue (logEvent); no direct logger call names its own event', () => {
    const direct = sources('src')
      .filter((f) => f.endsWith('.ts') && !f.endsWith('domain/log-events.ts'))
      .flatMap((file) =>
        readFileSync(path.join(ROOT, file), 'utf8')
          .split('\n')
          .map((line, i) => ({ file, line: i + 1, text: line }))
          .filter((l) => /\blog\w*\??\.(info|warn|error|debug|fatal|trace)\(/.test(l.text) || /\bevent:\s*['`]/.test(l.text)),
      )
      .map((l) => `${l.file}:${l.line}: ${l.text.trim()}`);
    expect(direct).toEqual([]);
  });
});
