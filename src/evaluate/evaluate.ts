import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TriageModel, ModelInput } from '../adapters/model/index.ts';
import { imageValues } from '../config/manifest.ts';
import { renderClinicalText } from '../pipeline/context/text-template.ts';
import { readDicom } from '../dicom/read.ts';
import { imageToTensor } from '../pipeline/preprocess/image-tensor.ts';
import { asTriageError, TriageError, type ErrorCode } from '../domain/errors.ts';
import { auroc, bootstrapMacroAurocCi, thresholdMetrics, type BinaryMetrics } from './metrics.ts';
import { calibration } from './calibration.ts';
import type { Calibrated, EvaluationReport, VariantName, VariantReport } from './report.ts';
import { readEvalIndex, resourcesOf, type EvalCase } from './evalset.ts';

export type { EvaluationReport, VariantName, VariantReport } from './report.ts';

interface PreparedCase {
  id: string;
  image: Float32Array;
  text: ModelInput['text'];
  labels: number[];
}

/** At most this many broken cases are named in the error; the rest are counted. */
const MAX_NAMED = 20;

/**
 * Runs an evaluation set through the production path — DICOM decoding and preprocessing, FHIR
 * text rendering, tokenizer, model — and the manifest's two ablations in the same run. Every
 * broken case is named (id, file, what is wrong) before anything runs.
 */
export async function evaluate(model: TriageModel, dataDir: string, batchSize = 16): Promise<EvaluationReport> {
  const index = await readEvalIndex(dataDir);
  const manifest = model.manifest;
  const codes = manifest.findings.map((f) => f.code);
  const missing = codes.filter((c) => !index.findings.includes(c));
  if (missing.length > 0) {
    throw new TriageError('USAGE', `evaluation set ${dataDir} has no labels for the model's findings ${missing.join(', ')}`);
  }
  const cases: PreparedCase[] = [];
  const broken: { code: ErrorCode; line: string }[] = [];
  for (const c of index.cases) {
    try {
      cases.push(await prepareCase(model, dataDir, c, codes));
    } catch (err) {
      const e = asTriageError(err, 'evaluate');
      broken.push({ code: e.code, line: `  - ${e.message}` });
    }
  }
  if (broken.length > 0) {
    const named = broken.slice(0, MAX_NAMED).map((b) => b.line);
    if (broken.length > MAX_NAMED) named.push(`  … and ${broken.length - MAX_NAMED} more`);
    throw new TriageError(broken[0]?.code ?? 'USAGE', `${broken.length} of ${index.cases.length} cases of ${dataDir} cannot be evaluated:\n${named.join('\n')}`, { where: 'evaluate' });
  }

  const blank = new Float32Array(imageValues(manifest.image));
  const masked = model.tokenizer?.masked();
  const inputsFor: Partial<Record<VariantName, (c: PreparedCase) => ModelInput>> = {
    fused: (c) => ({ image: c.image, ...(c.text ? { text: c.text } : {}) }),
    ...(masked
      ? {
          imageOnly: (c: PreparedCase): ModelInput => ({ image: c.image, text: masked }),
          textOnly: (c: PreparedCase): ModelInput => ({ image: blank, ...(c.text ? { text: c.text } : {}) }),
        }
      : {}),
  };
  const labels = cases.map((c) => c.labels);
  const variants: EvaluationReport['variants'] = {};
  for (const [name, inputOf] of Object.entries(inputsFor) as [VariantName, (c: PreparedCase) => ModelInput][]) {
    const scores: number[][] = [];
    for (let i = 0; i < cases.length; i += batchSize) {
      const outputs = await model.runBatch(cases.slice(i, i + batchSize).map(inputOf));
      for (const o of outputs) scores.push(o.probabilities);
    }
    variants[name] = report(scores, labels, manifest.findings);
  }
  return { model: { id: manifest.id, version: manifest.version }, executionProvider: model.provider, n: cases.length, variants };
}

async function prepareCase(model: TriageModel, dir: string, c: EvalCase, codes: string[]): Promise<PreparedCase> {
  const fail = (code: ErrorCode, file: string, what: string, cause?: unknown): TriageError =>
    new TriageError(code, `case ${c.id} (${file}): ${what}`, cause === undefined ? {} : { cause });
  const labels = codes.map((code) => {
    const label = c.labels[code];
    if (label === undefined) throw fail('USAGE', 'index.json', `has no label for ${code}`);
    return label;
  });
  let image: Float32Array;
  try {
    image = imageToTensor(readDicom(await readFile(path.join(dir, c.dicom))), model.manifest.image).tensor;
  } catch (err) {
    const e = asTriageError(err);
    throw fail(e.code === 'INTERNAL' ? 'DICOM_UNREADABLE' : e.code, c.dicom, e.message, err);
  }
  const template = model.manifest.text;
  let text = template?.empty ?? '';
  if (template && c.fhir !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path.join(dir, c.fhir), 'utf8'));
    } catch (err) {
      const why = err instanceof SyntaxError ? `is not JSON (${err.message})` : `cannot be read (${(err as Error).message})`;
      throw fail('FHIR_INVALID', c.fhir, why, err);
    }
    try {
      text = renderClinicalText(resourcesOf(json), template).text;
    } catch (err) {
      throw fail('FHIR_INVALID', c.fhir, asTriageError(err).message, err);
    }
  }
  const encoded = model.encodeText(text);
  return { id: c.id, image, ...(encoded ? { text: encoded } : { text: undefined }), labels };
}

function report(scores: number[][], labels: number[][], findings: readonly { code: string; threshold: number }[]): VariantReport {
  const perFinding: VariantReport['perFinding'] = {};
  findings.forEach((f, k) => {
    const s = scores.map((row) => row[k] as number);
    const l = labels.map((row) => row[k] as number);
    const cal = calibration(s, l);
    perFinding[f.code] = {
      auroc: auroc(s, l),
      ...thresholdMetrics(s, l, f.threshold),
      brier: cal.brier,
      ece: cal.ece,
      threshold: f.threshold,
      positives: l.reduce((a, b) => a + b, 0),
    };
  });
  const rows = Object.values(perFinding);
  const mean = (key: keyof BinaryMetrics | keyof Calibrated): number => rows.reduce((a, r) => a + r[key], 0) / rows.length;
  return {
    macro: {
      auroc: mean('auroc'),
      aurocCi: bootstrapMacroAurocCi(scores, labels),
      f1: mean('f1'),
      precision: mean('precision'),
      recall: mean('recall'),
      accuracy: mean('accuracy'),
      brier: mean('brier'),
      ece: mean('ece'),
    },
    perFinding,
    calibration: calibration(scores.flat(), labels.flat()),
  };
}
