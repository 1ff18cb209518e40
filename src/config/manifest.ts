import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { TriageError } from '../domain/errors.ts';
import { formatZodIssues } from './zod-issues.ts';

const tensorSpec = z.object({
  name: z.string().min(1),
  dtype: z.enum(['float32', 'int64']).optional(),
  shape: z.array(z.union([z.string(), z.number().int().positive()])),
});

const sectionBase = { template: z.string().min(1), max: z.number().int().positive().optional() };

export const textSectionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('orderReason'), resourceType: z.literal('ServiceRequest'), ...sectionBase }),
  z.object({
    kind: z.literal('priorReports'),
    resourceType: z.literal('DiagnosticReport'),
    order: z.enum(['newest-first', 'oldest-first']).default('newest-first'),
    ...sectionBase,
  }),
  z.object({
    kind: z.literal('observations'),
    resourceType: z.literal('Observation'),
    latestPerCode: z.boolean().default(true),
    codes: z.array(z.object({ system: z.string().min(1), code: z.string().min(1), label: z.string().min(1) })).min(1),
    ...sectionBase,
  }),
]);

export const manifestSchema = z.object({
  schemaVersion: z.literal(1),
  id: z.string().min(1),
  version: z.string().min(1),
  deviceUid: z.string().regex(/^[0-2](\.(0|[1-9][0-9]*))+$/, 'must be a DICOM UID').max(64),
  name: z.string().min(1),
  manufacturer: z.string().min(1),
  intendedUse: z.string().min(1),
  notForClinicalUse: z.string().min(1),
  onnx: z.object({ file: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/), opset: z.number().int().optional() }),
  inputs: z.object({ image: tensorSpec, inputIds: tensorSpec, attentionMask: tensorSpec }),
  outputs: z.object({ probabilities: tensorSpec, saliency: tensorSpec }),
  image: z.object({
    size: z.number().int().positive(),
    modalityLut: z.boolean(),
    window: z.object({
      source: z.enum(['dataset-then-percentile', 'dataset', 'percentile']),
      percentiles: z.tuple([z.number().min(0).max(100), z.number().min(0).max(100)]),
    }),
    photometric: z.record(z.string(), z.enum(['invert', 'keep'])),
    resize: z.literal('bilinear-half-pixel'),
    normalize: z.object({ mean: z.number(), std: z.number().positive() }),
  }),
  text: z.object({
    tokenizer: z.string().min(1),
    maxLength: z.number().int().min(3),
    joiner: z.string(),
    empty: z.string().min(1),
    sections: z.array(textSectionSchema).min(1),
  }),
  ablations: z.record(z.string(), z.string()).optional(),
  findings: z
    .array(z.object({ code: z.string().min(1), display: z.string().min(1), threshold: z.number().min(0).max(1) }))
    .min(1),
  saliency: z.object({
    threshold: z.number().min(0).max(1),
    space: z.literal('model-input'),
    minProbability: z.number().min(0).max(1).optional(),
  }),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type TextSection = z.infer<typeof textSectionSchema>;

export interface LoadedManifest {
  manifest: Manifest;
  dir: string;
  onnxPath: string;
  tokenizerPath: string;
}

/** Parses a manifest object; every problem is listed with its path in one error. */
export function parseManifest(raw: unknown, where = 'manifest.json'): Manifest {
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new TriageError('MANIFEST_INVALID', `${where} is invalid:\n${formatZodIssues(parsed.error.issues)}`, { where });
  }
  return parsed.data;
}

/**
 * Reads manifest.json from a model folder and checks the .onnx against its SHA-256, so a model
 * swapped without its manifest (or a truncated copy) is refused before it can produce results.
 */
export async function loadManifest(dir: string): Promise<LoadedManifest> {
  const file = path.join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new TriageError('MANIFEST_INVALID', `cannot read model manifest ${file}: ${(err as Error).message}`, { cause: err, where: file });
  }
  const manifest = parseManifest(raw, file);
  const onnxPath = path.resolve(dir, manifest.onnx.file);
  let bytes: Buffer;
  try {
    bytes = await readFile(onnxPath);
  } catch (err) {
    throw new TriageError('MANIFEST_INVALID', `model file ${onnxPath} named by ${file} cannot be read: ${(err as Error).message}`, {
      cause: err,
      where: file,
    });
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== manifest.onnx.sha256) {
    throw new TriageError(
      'MANIFEST_INVALID',
      `model file ${manifest.onnx.file} does not match its manifest: sha256 is ${actual}, manifest says ${manifest.onnx.sha256}`,
      { where: file },
    );
  }
  return { manifest, dir, onnxPath, tokenizerPath: path.resolve(dir, manifest.text.tokenizer) };
}
