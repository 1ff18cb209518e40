import type { AnalyzedStudy } from '../compose/analyze.ts';
import { analyze } from '../compose/analyze.ts';
import { configFor, loggerFor, type Command } from './command.ts';

export const analyzeCommand: Command = {
  name: 'analyze',
  synopsis: 'analyze <files|dirs…> [--fhir bundle.json] [--out DIR] [--json] [--no-select]',
  description: `No servers: DICOM files (+ a FHIR Bundle for the clinical text) in; SR files and RiskAssessment
JSON into DIR (nothing written without --out); prints a ranked worklist.
  --fhir FILE     a FHIR Bundle (collection, transaction or searchset) with the clinical resources
  --out DIR       write <DIR>/<StudyInstanceUID>/sr.dcm and risk-assessment.json
  --json          print the results as JSON
  --no-select     read every image (the series selection rules are not applied)`,
  options: {
    fhir: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
    'no-select': { type: 'boolean', default: false },
  },
  async run(values, positionals, out) {
    const outDir = values['out'] as string | undefined;
    const fhir = values['fhir'] as string | undefined;
    const results = await analyze(
      configFor(values),
      { inputs: positionals, select: !values['no-select'], ...(fhir === undefined ? {} : { fhirBundle: fhir }), ...(outDir === undefined ? {} : { outDir }) },
      loggerFor(values),
    );
    const studies = results.filter((r) => r.studyInstanceUID !== '');
    if (values['json']) {
      out.stdout(JSON.stringify({ studies: results }));
    } else if (studies.length > 0) {
      out.stdout(formatWorklist(results));
      if (outDir !== undefined) out.stdout(`\n${writtenLine(results, outDir)}`);
    }
    for (const r of results) if (r.status === 'failed') out.stderr(`pacs-triage analyze: ${r.file ?? r.studyInstanceUID}: ${r.reason ?? 'failed'}`);
    if (studies.length === 0) {
      const unread = results.length;
      out.stderr(`pacs-triage analyze: no DICOM files in ${positionals.join(', ')}${unread > 0 ? ` (${unread} file${unread === 1 ? ' was' : 's were'} not readable DICOM)` : ''}`);
      return 1;
    }
    return results.some((r) => r.status === 'failed') ? 1 : 0;
  },
};

/** The ranked worklist as a terminal table. */
export function formatWorklist(results: readonly AnalyzedStudy[]): string {
  const lines = ['#  priority  study                                                          findings'];
  results.forEach((r, i) => {
    const what =
      r.status === 'done'
        ? (r.findings ?? [])
            .filter((f) => f.positive)
            .map((f) => `${f.display} ${(f.probability * 100).toFixed(0)}%`)
            .join(', ') || 'no finding above threshold'
        : `${r.status.toUpperCase()}: ${r.reason ?? ''}`;
    const id = r.studyInstanceUID || r.file || '';
    lines.push(`${String(i + 1).padEnd(2)} ${(r.priority ?? '-').padEnd(9)} ${id.padEnd(64).slice(0, 64)} ${what}`);
    if (r.status === 'done' && r.reason) lines.push(`   note: ${r.reason}`);
  });
  return lines.join('\n');
}

/** What --out received, counted from the results: never a claim for files that were not written. */
export function writtenLine(results: readonly AnalyzedStudy[], outDir: string): string {
  const srs = results.filter((r) => r.outputs?.sr !== undefined).length;
  const risks = results.filter((r) => r.outputs?.riskAssessment !== undefined).length;
  if (srs + risks === 0) return `Nothing written under ${outDir}/ (no study gave a result).`;
  const n = (k: number, what: string): string => `${k} ${what}${k === 1 ? '' : 's'}`;
  return `${n(srs, 'SR file')} and ${n(risks, 'RiskAssessment file')} written under ${outDir}/<StudyInstanceUID>/`;
}
