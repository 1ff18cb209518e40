/** The model folders shipped under models/ (each with a manifest.json), and inputs for them from an evaluation set. */
import { readdirSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelInput, TriageModel } from '../../src/adapters/model/index.ts';
import { readEvalIndex, resourcesOf } from '../../src/evaluate/evalset.ts';
import { renderClinicalText } from '../../src/pipeline/context/text-template.ts';
import { imageToTensor } from '../../src/pipeline/preprocess/index.ts';
import { readDicom } from '../../src/dicom/index.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** models/<name> for every folder with a manifest.json, sorted (relative to the repository root). */
export function bundledModelDirs(): string[] {
  return readdirSync(path.join(ROOT, 'models'), { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(path.join(ROOT, 'models', e.name, 'manifest.json')))
    .map((e) => `models/${e.name}`)
    .sort();
}

/** The first `count` cases of an evaluation set as the model's inputs (preprocessed and tokenised as the pipeline does). */
export async function evalInputs(model: TriageModel, dataDir: string, count: number): Promise<ModelInput[]> {
  const index = await readEvalIndex(dataDir);
  const inputs: ModelInput[] = [];
  for (const c of index.cases.slice(0, count)) {
    const image = imageToTensor(readDicom(await readFile(path.join(dataDir, c.dicom))), model.manifest.image).tensor;
    const template = model.manifest.text;
    const text = template && c.fhir ? renderClinicalText(resourcesOf(JSON.parse(await readFile(path.join(dataDir, c.fhir), 'utf8'))), template).text : (template?.empty ?? '');
    const encoded = model.encodeText(text);
    inputs.push({ image, ...(encoded ? { text: encoded } : {}) });
  }
  return inputs;
}
