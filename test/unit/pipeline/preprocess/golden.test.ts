/**
 * Golden test: the Node preprocessing against the model's own Python preprocessing
 * (models/training/preprocess.py), on the reference cases that models/training/build.py
 * writes to models/cxr-triage/reference/:
 *
 *   reference.json  { testset: "models/testset", imageShape: [224, 224], dtype: "float32-le",
 *                     cases: [{ id, dicom: "dicom/<id>.dcm", image: "<id>.image.f32", … }] }
 *   <id>.image.f32  the Python-preprocessed tensor of <testset>/<dicom>, float32 little-endian
 *
 * Each case's DICOM goes through readDicom + imageToTensor with the `image` object of
 * models/cxr-triage/manifest.json; the tensors must agree within 1e-4 (max absolute
 * difference, in normalised units). Missing reference files FAIL this test (not skip): the
 * references are part of the model artefact and must be committed with it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseManifest } from '../../../../src/config/manifest.ts';
import { readDicom } from '../../../../src/dicom/read.ts';
import { imageToTensor } from '../../../../src/pipeline/preprocess/image-tensor.ts';

const TOLERANCE = 1e-4;
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const MODEL_DIR = path.join(ROOT, 'models/cxr-triage');
const REFERENCE_DIR = path.join(MODEL_DIR, 'reference');
const REFERENCE_JSON = path.join(REFERENCE_DIR, 'reference.json');
const MANIFEST_JSON = path.join(MODEL_DIR, 'manifest.json');
const REGENERATE = 'regenerate them with models/training/build.py (see models/training) and commit them';

const referenceSchema = z.object({
  testset: z.string().min(1).default('models/testset'),
  imageShape: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
  dtype: z.literal('float32-le').optional(),
  cases: z
    .array(z.object({ id: z.string().min(1), dicom: z.string().min(1), image: z.string().min(1) }).passthrough())
    .min(1, 'reference.json lists no cases'),
});

interface Loaded {
  reference?: z.infer<typeof referenceSchema>;
  spec?: ReturnType<typeof parseManifest>['image'];
  problems: string[];
}

function load(): Loaded {
  const problems: string[] = [];
  let reference: Loaded['reference'];
  let spec: Loaded['spec'];
  if (!existsSync(REFERENCE_JSON)) {
    problems.push(`${path.relative(ROOT, REFERENCE_JSON)} is missing`);
  } else {
    const parsed = referenceSchema.safeParse(JSON.parse(readFileSync(REFERENCE_JSON, 'utf8')));
    if (parsed.success) reference = parsed.data;
    else problems.push(`${path.relative(ROOT, REFERENCE_JSON)} is not in the expected shape: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  if (!existsSync(MANIFEST_JSON)) {
    problems.push(`${path.relative(ROOT, MANIFEST_JSON)} is missing`);
  } else {
    spec = parseManifest(JSON.parse(readFileSync(MANIFEST_JSON, 'utf8')), MANIFEST_JSON).image;
  }
  return { reference, spec, problems };
}

const { reference, spec, problems } = load();

describe('golden: Node preprocessing == the model’s Python preprocessing', () => {
  it('has the reference files (reference.json, its tensors, the manifest)', () => {
    const missing = [...problems];
    for (const c of reference?.cases ?? []) {
      const image = path.join(REFERENCE_DIR, c.image);
      const dicom = path.join(ROOT, reference?.testset ?? '', c.dicom);
      if (!existsSync(image)) missing.push(`${path.relative(ROOT, image)} is missing`);
      if (!existsSync(dicom)) missing.push(`${path.relative(ROOT, dicom)} is missing`);
    }
    expect(missing, `golden reference incomplete — ${REGENERATE}:\n  ${missing.join('\n  ')}`).toEqual([]);
  });

  for (const c of reference?.cases ?? []) {
    it(`case ${c.id}: max |node - python| <= ${TOLERANCE}`, () => {
      expect(spec, 'manifest.json image spec').toBeDefined();
      if (spec === undefined || reference === undefined) return;
      const dicomPath = path.join(ROOT, reference.testset, c.dicom);
      const { tensor } = imageToTensor(readDicom(new Uint8Array(readFileSync(dicomPath))), spec);

      const bytes = readFileSync(path.join(REFERENCE_DIR, c.image));
      const expected = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      const [h, w] = reference.imageShape ?? [spec.size.height, spec.size.width];
      expect(expected.length, `${c.image} holds ${expected.length} floats, ${h}x${w} expected`).toBe(h * w);
      expect(tensor.length).toBe(expected.length);

      let worst = 0;
      let at = -1;
      for (let i = 0; i < expected.length; i++) {
        const d = Math.abs((tensor[i] as number) - (expected[i] as number));
        if (!(d <= worst)) {
          worst = d;
          at = i;
        }
      }
      const where = at < 0 ? '' : ` at (row ${Math.floor(at / w)}, col ${at % w}): node ${tensor[at]}, python ${expected[at]}`;
      expect(worst, `max abs difference ${worst}${where}`).toBeLessThanOrEqual(TOLERANCE);
    });
  }
});
