/**
 * `analyze`: the embedded default — DICOM files (+ an optional FHIR Bundle) in, SR files and
 * RiskAssessment JSON out, no servers; the pipeline wired to files and an in-memory store.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { BundleSource } from '../adapters/fhir/clinical-source.ts';
import { FileStudySource, FolderSink } from '../adapters/files/folder-io.ts';
import { asTriageError, TriageError } from '../domain/errors.ts';
import type { Priority } from '../domain/types.ts';
import { PRIORITY_ORDER } from '../domain/priority.ts';
import { resourcesOf } from '../evaluate/evalset.ts';
import { processStudy } from '../pipeline/process-study.ts';
import { openRuntime } from './runtime.ts';
import { SOFTWARE } from './software.ts';

export interface AnalyzeOptions {
  inputs: string[];
  fhirBundle?: string;
  outDir?: string;
  select: boolean;
}

export interface AnalyzedStudy {
  studyInstanceUID: string;
  status: 'done' | 'skipped' | 'failed';
  reason?: string;
  priority?: Priority;
  findings?: { code: string; display: string; probability: number; positive: boolean }[];
  outputs?: { sr?: string; riskAssessment?: string };
  /** For inputs that could not be read at all. */
  file?: string;
}

/**
 * The embedded default: DICOM files (+ an optional FHIR Bundle for the text) in, SR files and
 * RiskAssessment JSON out, no servers. Every input ends as a result, a skip with its reason, or
 * a failure with its reason.
 */
export async function analyze(config: Config, options: AnalyzeOptions, log: Logger): Promise<AnalyzedStudy[]> {
  if (options.inputs.length === 0) throw new TriageError('USAGE', 'analyze needs at least one DICOM file or folder');
  let clinical: BundleSource | undefined;
  if (options.fhirBundle !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(options.fhirBundle, 'utf8'));
    } catch (err) {
      throw new TriageError('USAGE', `cannot read FHIR bundle ${options.fhirBundle}: ${(err as Error).message}`);
    }
    clinical = new BundleSource(resourcesOf(json));
  }
  const source = await FileStudySource.open(options.inputs, config.limits.dicom);
  // Checked before the model loads: an output folder that cannot be written is a usage error.
  const sink = options.outDir === undefined ? new FolderSink('.') : await FolderSink.open(options.outDir);
  const unreadable: AnalyzedStudy[] = source.problems.map((p) => ({ studyInstanceUID: '', status: 'failed', reason: `${p.code}: ${p.message}`, file: p.file }));
  // No study, no model to load: the caller says there was no DICOM.
  if (source.studies().length === 0) return unreadable;
  const runtime = await openRuntime(config, log, ':memory:');
  try {
    const mappings = options.select
      ? runtime.mappings
      : { ...runtime.mappings, selection: { version: 1 as const, rules: [{ name: 'any image (--no-select)', match: {}, exclude: { SOPClassUID: ['/^1\\.2\\.840\\.10008\\.5\\.1\\.4\\.1\\.1\\.88\\./'] } }] } };
    const results: AnalyzedStudy[] = [...unreadable];
    for (const uid of source.studies()) {
      try {
        const outcome = await processStudy(uid, {
          model: runtime.model,
          mappings,
          uidRoot: config.uidRoot,
          shadow: options.outDir === undefined,
          source,
          clinical,
          sink,
          store: runtime.store,
          log,
          software: SOFTWARE,
        });
        if (outcome.status === 'skipped') {
          results.push({ studyInstanceUID: uid, status: 'skipped', reason: outcome.reason });
          continue;
        }
        const r = outcome.result;
        const notes = r.notes.filter((n) => !n.startsWith('shadow mode'));
        results.push({
          studyInstanceUID: uid,
          status: 'done',
          ...(notes.length > 0 ? { reason: notes.join('; ') } : {}),
          priority: r.priority,
          findings: r.findings.map((f) => ({ code: f.code, display: f.display, probability: f.probability, positive: f.positive })),
          outputs: { ...sink.written.get(uid) },
        });
      } catch (err) {
        const e = asTriageError(err, 'analyze');
        results.push({ studyInstanceUID: uid, status: 'failed', reason: `${e.code}: ${e.message}` });
      }
    }
    return rank(results);
  } finally {
    await runtime.close();
  }
}

function rank(results: AnalyzedStudy[]): AnalyzedStudy[] {
  const order = (r: AnalyzedStudy): number => (r.priority ? PRIORITY_ORDER.indexOf(r.priority) : r.status === 'skipped' ? 5 : 6);
  const top = (r: AnalyzedStudy): number => Math.max(0, ...(r.findings ?? []).map((f) => f.probability));
  return [...results].sort((a, b) => order(a) - order(b) || top(b) - top(a));
}

