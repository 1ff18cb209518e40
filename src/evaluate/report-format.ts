/** The evaluation report as text (what `evaluate` prints without --json). */
import type { EvaluationReport } from './report.ts';

const VARIANT_LABELS: Record<string, string> = { fused: 'fused (image + text)', imageOnly: 'image only (text masked)', textOnly: 'text only (image blanked)' };

export function formatReport(r: EvaluationReport): string {
  const f3 = (x: number | null): string => (x === null || Number.isNaN(x) ? '  n/a' : x.toFixed(3));
  const lines = [`model ${r.model.id}@${r.model.version} on ${r.executionProvider}, ${r.n} cases`];
  // A model without text has its one variant only; "fused (image + text)" would misname it.
  const alone = Object.keys(r.variants).length === 1;
  for (const [name, v] of Object.entries(r.variants)) {
    lines.push(
      '',
      `${alone && name === 'fused' ? 'image (the model reads no text: no ablations)' : (VARIANT_LABELS[name] ?? name)}: macro AUROC ${f3(v.macro.auroc)} (95% CI ${f3(v.macro.aurocCi[0])}–${f3(v.macro.aurocCi[1])}), F1 ${f3(v.macro.f1)}, Brier ${f3(v.macro.brier)}, ECE ${f3(v.macro.ece)}`,
    );
    lines.push('  finding              thr    AUROC  prec   recall F1     acc    Brier  ECE    pos');
    for (const [code, m] of Object.entries(v.perFinding)) {
      lines.push(
        `  ${code.padEnd(20)} ${m.threshold.toFixed(2)}   ${f3(m.auroc)}  ${f3(m.precision)}  ${f3(m.recall)}  ${f3(m.f1)}  ${f3(m.accuracy)}  ${f3(m.brier)}  ${f3(m.ece)}  ${m.positives}`,
      );
    }
    const cal = v.calibration;
    lines.push(`  reliability (all findings pooled: Brier ${f3(cal.brier)}, ECE ${f3(cal.ece)})`);
    lines.push('    bin         n      predicted  observed');
    for (const b of cal.bins) {
      lines.push(`    ${b.lo.toFixed(1)}–${b.hi.toFixed(1)}  ${String(b.n).padStart(6)}  ${f3(b.predicted).padStart(9)}  ${f3(b.observed).padStart(8)}`);
    }
  }
  return lines.join('\n');
}
