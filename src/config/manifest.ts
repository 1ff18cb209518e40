/**
 * A model folder's manifest.json, read in either schema (manifest-schema.ts) and normalised to
 * one shape, so the rest of the service never asks which version it was given: schema 1 is the
 * special case of schema 2 with one grey NCHW float32 input, a stretch bilinear resize, range
 * [0, 1], probabilities out and a saliency output.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TriageError } from '../domain/errors.ts';
import { manifestV1Schema, manifestV2Schema, type ManifestV1, type ManifestV2, type TextSection } from './manifest-schema.ts';
import { formatZodIssues } from './zod-issues.ts';

export { textSectionSchema, type TextSection } from './manifest-schema.ts';

export type WindowSource = 'dataset-then-percentile' | 'dataset' | 'percentile' | 'fixed';
export type ResizeMode = 'stretch' | 'keep-aspect-pad' | 'center-crop';
export type Interpolation = 'bilinear' | 'area';

/** How DICOM pixels become the model's image tensor (models/MANIFEST.md "Image preprocessing"). */
export interface ImageSpec {
  input: { name: string; dtype: 'float32' | 'float16'; layout: 'NCHW' | 'NHWC'; channels: 1 | 3; color: 'replicate-grey' | 'rgb' };
  size: { width: number; height: number };
  /** Apply RescaleSlope/RescaleIntercept when present. */
  modalityLut: boolean;
  window: {
    source: WindowSource;
    /** [lo, hi] percentiles (0..100) for a computed window. */
    percentiles: readonly [number, number];
    /** A fixed window (modality units). */
    center?: number;
    width?: number;
  };
  /** Per Photometric Interpretation; one absent from the map is kept, as in the Python preprocessing. */
  photometric: Readonly<Record<string, 'invert' | 'keep'>>;
  /** `pad`: the padding's value on the window's [0, 1] scale (keep-aspect-pad). */
  resize: { mode: ResizeMode; interpolation: Interpolation; pad: number };
  /** The window's [0, 1] is mapped linearly onto this before normalising (e.g. [0, 255]). */
  range: readonly [number, number];
  /** One mean and std per channel. */
  normalize: { mean: readonly number[]; std: readonly number[] };
}

export interface TextSpec {
  inputs: { inputIds: string; attentionMask: string; tokenTypeIds?: string };
  tokenizer: string;
  maxLength: number;
  /** Which end of an over-long text is cut (the special tokens are kept). */
  truncation: 'left' | 'right';
  joiner: string;
  empty: string;
  sections: TextSection[];
  padToken?: string;
}

export interface OutputSpec {
  scores: { name: string; kind: 'probabilities' | 'logits'; activation: 'sigmoid' | 'softmax' | 'none' };
  /** Absent: the model gives no saliency (no region in the SR, no saliency picture). */
  saliency?: { name: string; threshold: number; minProbability?: number };
}

/** A manifest of either schema, normalised. */
export interface Manifest {
  schemaVersion: 1 | 2;
  id: string;
  version: string;
  deviceUid: string;
  name: string;
  manufacturer: string;
  intendedUse: string;
  notForClinicalUse: string;
  onnx: { file: string; sha256: string; opset?: number };
  image: ImageSpec;
  /** Absent for an image-only model. */
  text?: TextSpec;
  outputs: OutputSpec;
  ablations?: Record<string, string>;
  findings: { code: string; display: string; threshold: number }[];
}

export interface LoadedManifest {
  manifest: Manifest;
  dir: string;
  onnxPath: string;
  /** Absent for an image-only model. */
  tokenizerPath?: string;
}

/** A text template with no sections: an image-only model reads no clinical text (the patient is still found). */
export const NO_TEXT: Pick<TextSpec, 'sections' | 'joiner' | 'empty'> = { sections: [], joiner: '', empty: '' };

/** The image spec of a schema-1 manifest (also what tests and tools that describe the reference model use). */
export function imageSpecV1(image: ManifestV1['image'], inputName = 'image'): ImageSpec {
  return {
    input: { name: inputName, dtype: 'float32', layout: 'NCHW', channels: 1, color: 'replicate-grey' },
    size: { width: image.size, height: image.size },
    modalityLut: image.modalityLut,
    window: { source: image.window.source, percentiles: image.window.percentiles },
    photometric: image.photometric,
    resize: { mode: 'stretch', interpolation: 'bilinear', pad: 0 },
    range: [0, 1],
    normalize: { mean: [image.normalize.mean], std: [image.normalize.std] },
  };
}

function fromV1(m: ManifestV1): Manifest {
  return {
    schemaVersion: 1,
    ...identityOf(m),
    image: imageSpecV1(m.image, m.inputs.image.name),
    text: {
      inputs: { inputIds: m.inputs.inputIds.name, attentionMask: m.inputs.attentionMask.name },
      tokenizer: m.text.tokenizer,
      maxLength: m.text.maxLength,
      truncation: 'right',
      joiner: m.text.joiner,
      empty: m.text.empty,
      sections: m.text.sections,
    },
    outputs: {
      scores: { name: m.outputs.probabilities.name, kind: 'probabilities', activation: 'none' },
      saliency: {
        name: m.outputs.saliency.name,
        threshold: m.saliency.threshold,
        ...(m.saliency.minProbability === undefined ? {} : { minProbability: m.saliency.minProbability }),
      },
    },
  };
}

function fromV2(m: ManifestV2): Manifest {
  const { image } = m;
  const channels = image.input.channels;
  const perChannel = (v: number | number[]): number[] => (Array.isArray(v) ? v : Array.from({ length: channels }, () => v));
  const scores = m.outputs.scores;
  const saliency = m.outputs.saliency;
  return {
    schemaVersion: 2,
    ...identityOf(m),
    image: {
      input: image.input,
      size: image.size,
      modalityLut: image.modalityLut,
      window: image.window,
      photometric: image.photometric,
      resize: image.resize,
      range: image.range,
      normalize: { mean: perChannel(image.normalize.mean), std: perChannel(image.normalize.std) },
    },
    ...(m.text ? { text: m.text } : {}),
    outputs: {
      scores: { name: scores.name, kind: scores.kind, activation: scores.activation ?? (scores.kind === 'logits' ? 'sigmoid' : 'none') },
      ...(saliency
        ? { saliency: { name: saliency.name, threshold: saliency.threshold, ...(saliency.minProbability === undefined ? {} : { minProbability: saliency.minProbability }) } }
        : {}),
    },
  };
}

function identityOf(m: ManifestV1 | ManifestV2): Omit<Manifest, 'schemaVersion' | 'image' | 'text' | 'outputs'> {
  return {
    id: m.id,
    version: m.version,
    deviceUid: m.deviceUid,
    name: m.name,
    manufacturer: m.manufacturer,
    intendedUse: m.intendedUse,
    notForClinicalUse: m.notForClinicalUse,
    onnx: m.onnx,
    ...(m.ablations ? { ablations: m.ablations } : {}),
    findings: m.findings,
  };
}

/** Every problem of a manifest object, one line each with its path; a manifest when there is none. */
export function manifestIssues(raw: unknown): { manifest: Manifest; issues: [] } | { manifest?: undefined; issues: string[] } {
  const version = (raw as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (version !== 1 && version !== 2) {
    return { issues: [`  - schemaVersion: is ${JSON.stringify(version)}; must be 1 (the reference model's shape) or 2 (models/README.md)`] };
  }
  const parsed = version === 1 ? manifestV1Schema.safeParse(raw) : manifestV2Schema.safeParse(raw);
  if (!parsed.success) return { issues: formatZodIssues(parsed.error.issues).split('\n') };
  return { manifest: parsed.data.schemaVersion === 1 ? fromV1(parsed.data) : fromV2(parsed.data as ManifestV2), issues: [] };
}

/** Parses a manifest object of either schema; every problem is listed with its path in one error. */
export function parseManifest(raw: unknown, where = 'manifest.json'): Manifest {
  const result = manifestIssues(raw);
  if (!result.manifest) throw new TriageError('MANIFEST_INVALID', `${where} is invalid:\n${result.issues.join('\n')}`, { where });
  return result.manifest;
}

/** The SHA-256 of a model file, or why it cannot be read. */
export async function fileSha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

/** The fix for a model file that does not match its manifest. */
export function hashMismatchFix(actual: string): string {
  return `if this .onnx is the model you mean to run, set onnx.sha256 to ${actual} (and, for a retrained model, a new version and deviceUid); otherwise restore the .onnx the manifest was written for`;
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
  let actual: string;
  try {
    actual = await fileSha256(onnxPath);
  } catch (err) {
    throw new TriageError('MANIFEST_INVALID', `model file ${onnxPath} named by ${file} cannot be read: ${(err as Error).message}`, {
      cause: err,
      where: file,
    });
  }
  if (actual !== manifest.onnx.sha256) {
    throw new TriageError(
      'MANIFEST_INVALID',
      `model file ${manifest.onnx.file} does not match its manifest: sha256 is ${actual}, manifest says ${manifest.onnx.sha256}; ${hashMismatchFix(actual)}`,
      { where: file },
    );
  }
  return { manifest, dir, onnxPath, ...(manifest.text ? { tokenizerPath: path.resolve(dir, manifest.text.tokenizer) } : {}) };
}

/** Values per item of the image input: channels × height × width. */
export function imageValues(spec: Pick<ImageSpec, 'input' | 'size'>): number {
  return spec.input.channels * spec.size.width * spec.size.height;
}
