/** The inference stage's core: a positive finding's saliency box lands on the source pixels whatever the resize mode; no saliency, no region. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseManifest, type Manifest, type ResizeMode } from '../../../../src/config/manifest.ts';
import type { InstanceMeta } from '../../../../src/domain/types.ts';
import { findingsOf } from '../../../../src/pipeline/inference/findings.ts';

const reference = parseManifest(JSON.parse(readFileSync('models/cxr-triage/manifest.json', 'utf8')));
const imageOnly = parseManifest(JSON.parse(readFileSync('models/cxr-image-only/manifest.json', 'utf8')));
const instance = { SOPInstanceUID: '1.2.3.4' } as InstanceMeta;
/** A landscape source, 2000 columns × 1000 rows, into the 224×224 model input. */
const source = { rows: 1000, columns: 2000 };

function withMode(mode: ResizeMode): Manifest {
  return { ...reference, image: { ...reference.image, resize: { ...reference.image.resize, mode } } };
}

/** A 224×224 map that is 1 on rows 112–139, columns 56–111 (model-input pixels), 0 elsewhere. */
function map(): Float32Array {
  const m = new Float32Array(224 * 224);
  for (let r = 112; r < 140; r++) for (let c = 56; c < 112; c++) m[r * 224 + c] = 1;
  return m;
}
const output = { scores: [0.99, 0, 0, 0], probabilities: [0.99, 0, 0, 0], saliency: [map(), map(), map(), map()] };

describe('findingsOf', () => {
  it.each([
    // stretch: x × 2000/224, y × 1000/224
    ['stretch', { x0: 500, x1: 1000, y0: 500, y1: 625 }],
    // keep-aspect-pad: the image is 224 × 112 rows at offset 56; y = (v − 56) × 1000/112
    ['keep-aspect-pad', { x0: 500, x1: 1000, y0: 500, y1: 750 }],
    // center-crop: the image is 448 columns × 224 at offset −112; x = (v + 112) × 2000/448
    ['center-crop', { x0: 750, x1: 1000, y0: 500, y1: 625 }],
  ] as const)('%s: the region in source pixels', (mode, box) => {
    const [f] = findingsOf(output, withMode(mode), instance, source);
    expect(f?.positive).toBe(true);
    expect(f?.region?.sopInstanceUID).toBe('1.2.3.4');
    for (const k of ['x0', 'x1', 'y0', 'y1'] as const) expect(f?.region?.[k]).toBeCloseTo(box[k], 6);
  });

  it('a model without saliency: findings with probabilities and no region', () => {
    const findings = findingsOf({ ...output, saliency: [] }, imageOnly, instance, source);
    expect(findings.map((f) => [f.code, f.positive, f.region])).toEqual([
      ['pneumothorax', true, undefined],
      ['pleural_effusion', false, undefined],
      ['consolidation', false, undefined],
      ['lung_nodule', false, undefined],
    ]);
  });
});
