import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TriageModel, ModelInput } from '../adapters/model/index.ts';
import { renderClinicalText } from '../pipeline/context/text-template.ts';
import { readDicom } from '../dicom/read.ts';
import { imageToTensor } from '../pipeline/preprocess/image-tensor.ts';
import { TriageError } from '../domain/errors.ts';
import { auroc, bootstrapMacroAurocCi, thresholdMetrics, type BinaryMetrics } from './metrics.ts';
import { readEvalIndex, resourcesOf, type EvalCase } from './evalset.ts';

export type VariantName = 'fused' | 'imageOnly' | 'textOnly';

export interface VariantReport {
  macro: BinaryMetrics & { aurocCi: [number, number] };
  perFinding: Record<string, BinaryMetrics & { threshold: number; positives: number }>;
}

export interface EvaluationReport {
  model: { id: string; version: string };
  executionProvider: string;
  n: number;
  variants: Record<VariantName, VariantReport>;
}

interface PreparedCase {
  id: string;
  image: Float32Array;
  text: ModelInput['text'];
  labels: number[];
}

/**
 * Runs an evaluation set through the production path — DICOM decoding and preprocessing, FHIR
 * text rendering, tokenizer, model — and the manifest's two ablations in the same run.
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
  for (const c of index.cases) cases.push(await prepareCase(model, dataDir, c, codes));

  const blank = new Float32Array(manifest.image.size * manifest.image.size);
  const masked = model.tokenizer.masked();
  const inputsFor: Record<VariantName, (c: PreparedCase) => ModelInput> = {
    fused: (c) => ({ image: c.image, text: c.text }),
    imageOnly: (c) => ({ image: c.image, text: masked }),
    textOnly: (c) => ({ image: blank, text: c.text }),
  };
  const labels = cases.map((c) => c.labels);
  const variants = {} as Record<VariantName, VariantReport>;
  for (const name of Object.keys(inputsFor) as VariantName[]) {
    const scores: number[][] = [];
    for (let i = 0; i < cases.length; i += batchSize) {
      const outputs = await model.runBatch(cases.slice(i, i + batchSize).map(inputsFor[name]));
      for (const o of outputs) scores.push(o.probabilities);
    }
    variants[name] = report(scores, labels, manifest.findings);
  }
  return { model: { id: manifest.id, version: manifest.version }, executionProvider: model.provider, n: cases.length, variants };
}

async function prepareCase(model: TriageModel, dir: string, c: EvalCase, codes: string[]): Promise<PreparedCase> {
  const where = `case ${c.id}`;
  let image: Float32Array;
  try {
    image = imageToTensor(readDicom(await readFile(path.join(dir, c.dicom))), model.manifest.image).tensor;
  } catch (err) {
    throw new TriageError('USAGE', `${where}: ${(err as Error).message}`, { cause: err });
  }
  let text = model.manifest.text.empty;
  if (c.fhir !== undefined) {
    const json: unknown = JSON.parse(await readFile(path.join(dir, c.fhir), 'utf8'));
    text = renderClinicalText(resourcesOf(json), model.manifest.text).text;
  }
  return {
    id: c.id,
    image,
    text: model.tokenizer.encode(text),
    labels: codes.map((code) => {
      const label = c.labels[code];
      if (label === undefined) throw new TriageError('USAGE', `${where} has no label for ${code}`);
      return label;
    }),
  };
}

function report(scores: number[][], labels: number[][], findings: readonly { code: string; threshold: number }[]): VariantReport {
  const perFinding: VariantReport['perFinding'] = {};
  findings.forEach((f, k) => {
    const s = scores.map((row) => row[k] as number);
    const l = labels.map((row) => row[k] as number);
    perFinding[f.code] = {
      auroc: auroc(s, l),
      ...thresholdMetrics(s, l, f.threshold),
      threshold: f.threshold,
      positives: l.reduce((a, b) => a + b, 0),
    };
  });
  const rows = Object.values(perFinding);
  const mean = (key: keyof BinaryMetrics): number => rows.reduce((a, r) => a + r[key], 0) / rows.length;
  return {
    macro: {
      auroc: mean('auroc'),
      aurocCi: bootstrapMacroAurocCi(scores, labels),
      f1: mean('f1'),
      precision: mean('precision'),
      recall: mean('recall'),
      accuracy: mean('accuracy'),
    },
    perFinding,
  };
}

/** The human-readable table printed without --json. */
export function formatReport(r: EvaluationReport): string {
  const f3 = (x: number): string => (Number.isNaN(x) ? '  n/a' : x.toFixed(3));
  const lines = [`model ${r.model.id}@${r.model.version} on ${r.executionProvider}, ${r.n} cases`];
  for (const [name, v] of Object.entries(r.variants)) {
    lines.push('', `${name}: macro AUROC ${f3(v.macro.auroc)} (95% CI ${f3(v.macro.aurocCi[0])}–${f3(v.macro.aurocCi[1])}), F1 ${f3(v.macro.f1)}`);
    lines.push('  finding              thr    AUROC  prec   recall F1     acc    pos');
    for (const [code, m] of Object.entries(v.perFinding)) {
      lines.push(
        `  ${code.padEnd(20)} ${m.threshold.toFixed(2)}   ${f3(m.auroc)}  ${f3(m.precision)}  ${f3(m.recall)}  ${f3(m.f1)}  ${f3(m.accuracy)}  ${m.positives}`,
      );
    }
  }
  return lines.join('\n');
}
