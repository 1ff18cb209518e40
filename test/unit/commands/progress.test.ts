import { describe, expect, it } from 'vitest';
import { progressReporter } from '../../../src/commands/service.ts';

describe('progressReporter', () => {
  it('on a terminal redraws one line with rate and ETA, ending with a newline', () => {
    const out: string[] = [];
    let t = 0;
    const report = progressReporter((s) => out.push(s), true, () => t);
    t = 2000;
    report(4, 10);
    t = 5000;
    report(10, 10);
    expect(out[0]).toBe('\r[############------------------] 4/10  2.0 studies/s  ETA 3s');
    expect(out[1]).toBe('\r[##############################] 10/10  2.0 studies/s  ETA 0s\n');
  });

  it('in a log (no terminal) prints a line only every 10%', () => {
    const out: string[] = [];
    const report = progressReporter((s) => out.push(s), false, () => 1000);
    for (let i = 0; i <= 100; i++) report(i, 100);
    expect(out).toHaveLength(11);
    expect(out.every((l) => l.endsWith('\n'))).toBe(true);
  });
});
