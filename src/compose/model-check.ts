/**
 * `pacs-triage model check DIR` (and doctor's model check): a model folder against everything
 * that will read it — the manifest schema, the .onnx's hash, the tokenizer, the ONNX graph's own
 * inputs and outputs, the mappings (findings coded, selection rules) — and one synthetic batch
 * through every declared input path. Every problem is collected with its fix instead of stopping
 * at the first, so a team adding its model fixes them all in one round. Nothing is written.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { fileSha256, hashMismatchFix, manifestIssues, type Manifest } from '../config/manifest.ts';
import { loadMappings, type Mappings } from '../config/mappings.ts';
import { asTriageError } from '../domain/errors.ts';
import { contractProblems, idsTypeOf, type Graph, type Problem } from '../adapters/model/contract.ts';
import { runModel } from '../adapters/model/run.ts';
import { graphOf, openSession, sessionFactoryFor, type ExecutionProvider, type SessionLogger } from '../adapters/model/session.ts';
import { TextTokenizer } from '../adapters/model/tokenizer.ts';
import { modelMappingChecks } from './doctor/model.ts';
import { outputProblems, syntheticBatch } from './model-check/synthetic.ts';

export type { Problem } from '../adapters/model/contract.ts';

export interface ModelCheckOptions {
  /** The mappings folder to check the model against; absent: no mapping checks (doctor does its own). */
  mappingsDir?: string;
  executionProviders?: readonly ExecutionProvider[];
}

export interface ModelCheckReport {
  dir: string;
  ok: boolean;
  problems: Problem[];
  /** Worth knowing, not wrong (a finding that never raises the priority…). */
  notes: string[];
  /** What the model needs and produces, one line per topic; empty when the manifest did not parse. */
  summary: string[];
  manifest?: Manifest;
}

/** Summary lines: a topic, then what it says, aligned. */
const label = (topic: string): string => topic.padEnd(17);

/** The provider events are not what `model check` reports. */
const quiet: SessionLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

export async function checkModel(dir: string, options: ModelCheckOptions, log: SessionLogger = quiet): Promise<ModelCheckReport> {
  const problems: Problem[] = [];
  const notes: string[] = [];
  const summary: string[] = [];
  const report = (manifest?: Manifest): ModelCheckReport => ({ dir, ok: problems.length === 0, problems, notes, summary, ...(manifest ? { manifest } : {}) });

  // 1. The manifest: every schema problem, each its own line.
  const file = path.join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    problems.push({
      where: file,
      problem: missing ? 'there is no manifest.json' : `cannot be read as JSON: ${(err as Error).message}`,
      fix: missing ? 'write a manifest.json (models/README.md walks through its fields; copy one of the bundled models\' as a start)' : 'correct the JSON syntax',
    });
    return report();
  }
  const parsed = manifestIssues(raw);
  if (!parsed.manifest) {
    for (const line of parsed.issues) {
      const m = /^\s*- ([^:]+): (.*)$/.exec(line);
      problems.push({ where: `manifest.json ${m?.[1] ?? ''}`.trim(), problem: m?.[2] ?? line.trim(), fix: 'correct this field (models/README.md lists the fields and their values)' });
    }
    return report();
  }
  const manifest = parsed.manifest;
  summary.push(`${label('model')}${manifest.id}@${manifest.version} (manifest schema ${manifest.schemaVersion}), Device UID ${manifest.deviceUid}`);

  // 2. The .onnx against its hash (a mismatch is reported, and the graph still checked).
  const onnxPath = path.resolve(dir, manifest.onnx.file);
  let onnxReadable = true;
  try {
    const actual = await fileSha256(onnxPath);
    if (actual !== manifest.onnx.sha256) {
      problems.push({ where: 'onnx.sha256', problem: `is ${manifest.onnx.sha256}; ${manifest.onnx.file} has ${actual}`, fix: hashMismatchFix(actual) });
    }
  } catch (err) {
    onnxReadable = false;
    problems.push({ where: 'onnx.file', problem: `${onnxPath} cannot be read: ${(err as Error).message}`, fix: 'put the .onnx beside manifest.json, or correct onnx.file' });
  }

  // 3. The tokenizer.
  let tokenizer: TextTokenizer | undefined;
  if (manifest.text) {
    const tokPath = path.resolve(dir, manifest.text.tokenizer);
    if (!existsSync(tokPath)) {
      problems.push({
        where: 'text.tokenizer',
        problem: `${tokPath} does not exist`,
        fix: `save the tokenizer the model was trained with as ${manifest.text.tokenizer} in ${dir} (Hugging Face: AutoTokenizer.from_pretrained(...).backend_tokenizer.save("tokenizer.json")), or correct text.tokenizer`,
      });
    } else {
      try {
        tokenizer = await TextTokenizer.load(tokPath, manifest.text);
      } catch (err) {
        problems.push({ where: 'text.tokenizer', problem: asTriageError(err).message, fix: 'give a Hugging Face tokenizer.json (WordPiece, BPE or Unigram), and text.padToken when it names no padding token' });
      }
    }
  }

  // 4. The graph, then the synthetic batch when the contract holds.
  let session: InferenceSession | undefined;
  if (onnxReadable) {
    try {
      session = (await openSession(onnxPath, options.executionProviders ?? ['cpu'], log, sessionFactoryFor())).session;
    } catch (err) {
      problems.push({ where: 'onnx.file', problem: `onnxruntime cannot load it: ${asTriageError(err).message}`, fix: 'export again with an opset onnxruntime supports (≤ 21), and check the file is complete' });
    }
  }
  try {
    if (session) {
      const graph = graphOf(session);
      const contract = contractProblems(graph, manifest);
      problems.push(...contract);
      summary.push(...describe(manifest, graph, tokenizer));
      const textReady = !manifest.text || tokenizer !== undefined;
      if (contract.length === 0 && textReady) await syntheticRun(session, manifest, graph, tokenizer, problems, summary);
      else summary.push(`${label('synthetic batch')}not run: fix the problems above first`);
    }
  } finally {
    await session?.release();
  }

  // 5. The mappings.
  if (options.mappingsDir !== undefined) mappingProblems(manifest, options.mappingsDir, problems, notes, summary);
  return report(manifest);
}

async function syntheticRun(session: InferenceSession, manifest: Manifest, graph: Graph, tokenizer: TextTokenizer | undefined, problems: Problem[], summary: string[]): Promise<void> {
  try {
    const batch = syntheticBatch(manifest, (text) => tokenizer?.encode(text));
    const padId = tokenizer?.padId ?? 0;
    const idsType = idsTypeOf(graph, manifest);
    const start = performance.now();
    const outputs = await runModel(session, manifest, batch, padId, idsType);
    const ms = performance.now() - start;
    const [alone] = await runModel(session, manifest, batch.slice(0, 1), padId, idsType);
    const found = outputProblems(manifest, outputs, alone);
    problems.push(...found);
    const range = (xs: number[]): string => `${Math.min(...xs).toFixed(3)}…${Math.max(...xs).toFixed(3)}`;
    const paths = manifest.text ? 'image + short text, image + long (truncated) text, blank image' : 'image, blank image';
    summary.push(
      `${label('synthetic batch')}${batch.length} items (${paths}) in ${ms.toFixed(0)} ms, then 1 alone: scores ${range(outputs.flatMap((o) => o.scores))}, probabilities ${range(outputs.flatMap((o) => o.probabilities))}${found.length === 0 ? '; all as the manifest says' : ''}`,
    );
  } catch (err) {
    problems.push({ where: 'synthetic batch', problem: asTriageError(err).message, fix: 'the graph takes what the manifest declares but fails to run it: check the export (dynamic axes for batch and sequence)' });
  }
}

function mappingProblems(manifest: Manifest, mappingsDir: string, problems: Problem[], notes: string[], summary: string[]): void {
  let mappings: Mappings;
  try {
    mappings = loadMappings(mappingsDir);
  } catch (err) {
    problems.push({ where: mappingsDir, problem: asTriageError(err).message, fix: `correct the files in ${mappingsDir} as listed` });
    return;
  }
  for (const c of modelMappingChecks(manifest, mappings, mappingsDir)) {
    if (c.status === 'fail') problems.push({ where: c.name, problem: c.detail, fix: c.fix ?? '' });
    else if (c.status === 'warn') notes.push(`${c.name}: ${c.detail}${c.fix ? ` (${c.fix})` : ''}`);
    else summary.push(`${label(c.name)}${c.detail}`);
  }
}

/** What the model takes and gives, as the summary prints it. */
function describe(manifest: Manifest, graph: Graph, tokenizer: TextTokenizer | undefined): string[] {
  const { image, text, outputs } = manifest;
  const shape = image.input.layout === 'NCHW' ? `[N, ${image.input.channels}, ${image.size.height}, ${image.size.width}]` : `[N, ${image.size.height}, ${image.size.width}, ${image.input.channels}]`;
  const fmt = (xs: readonly number[]): string => `[${xs.join(', ')}]`;
  const window = image.window.source === 'fixed' ? `fixed ${String(image.window.center)}/${String(image.window.width)}` : `${image.window.source} (percentiles ${image.window.percentiles.join('–')})`;
  const lines = [
    `${label('image')}${image.input.name} ${image.input.dtype} ${shape} (${image.input.channels === 3 ? image.input.color : 'grey'}); window ${window}; resize ${image.resize.mode} ${image.resize.interpolation}; range ${fmt(image.range)}; mean ${fmt(image.normalize.mean)} std ${fmt(image.normalize.std)}`,
  ];
  if (text) {
    const names = [text.inputs.inputIds, text.inputs.attentionMask, ...(text.inputs.tokenTypeIds === undefined ? [] : [text.inputs.tokenTypeIds])];
    const tok = tokenizer ? `${tokenizer.kind}, ${tokenizer.vocabSize} tokens, pad id ${tokenizer.padId}` : 'not loaded';
    lines.push(`${label('text')}${names.join(', ')} (${idsTypeOf(graph, manifest)}); ${text.tokenizer}: ${tok}; max ${text.maxLength} tokens, truncation ${text.truncation}; sections ${text.sections.map((s) => s.kind).join(', ')}`);
  } else {
    lines.push(`${label('text')}none: an image-only model (no clinical text is read; the patient is still looked up for the RiskAssessment)`);
  }
  const scores = outputs.scores.kind === 'logits' ? `logits through ${outputs.scores.activation}` : 'probabilities';
  const saliency = outputs.saliency ? `saliency "${outputs.saliency.name}" (regions above ${outputs.saliency.threshold} of each map's maximum become the SR's SCOORD)` : 'no saliency: the SR has no image region and the worklist no heat map';
  lines.push(`${label('outputs')}"${outputs.scores.name}" ${scores}; ${saliency}`);
  lines.push(`${label('findings')}${manifest.findings.map((f) => `${f.code} ≥ ${f.threshold}`).join(', ')}`);
  return lines;
}

/** The report as text: the problems with their fixes, or the summary. */
export function formatModelCheck(r: ModelCheckReport): string {
  if (!r.ok) {
    const lines = [`model check ${r.dir}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`];
    for (const p of r.problems) lines.push(`  - ${p.where}: ${p.problem}`, `    fix: ${p.fix}`);
    return lines.join('\n');
  }
  return [`model check ${r.dir}: ok`, ...r.summary.map((l) => `  ${l}`), ...r.notes.map((n) => `  note: ${n}`)].join('\n');
}
