/** Manifest schema 1 (still read) and 2, normalised to one shape; every problem listed with its path. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { manifestIssues, parseManifest } from '../../../src/config/manifest.ts';
import { TriageError } from '../../../src/domain/errors.ts';

const raw = (dir: string): Record<string, unknown> => JSON.parse(readFileSync(`models/${dir}/manifest.json`, 'utf8')) as Record<string, unknown>;

describe('manifest schema 1 (the reference model)', () => {
  it('reads as one grey NCHW float32 input, stretch bilinear, probabilities and saliency', () => {
    const m = parseManifest(raw('cxr-triage'));
    expect(m.schemaVersion).toBe(1);
    expect(m.image.input).toEqual({ name: 'image', dtype: 'float32', layout: 'NCHW', channels: 1, color: 'replicate-grey' });
    expect(m.image.resize).toEqual({ mode: 'stretch', interpolation: 'bilinear', pad: 0 });
    expect(m.image.normalize.mean).toHaveLength(1);
    expect(m.text?.inputs).toEqual({ inputIds: 'input_ids', attentionMask: 'attention_mask' });
    expect(m.outputs.scores).toEqual({ name: 'probabilities', kind: 'probabilities', activation: 'none' });
    expect(m.outputs.saliency?.name).toBe('saliency');
  });
});

describe('manifest schema 2', () => {
  it('the ResNet + BERT model: 3 channels, ImageNet mean/std per channel, token_type_ids, logits through a sigmoid, no saliency', () => {
    const m = parseManifest(raw('cxr-resnet-bert'));
    expect(m.image.input.channels).toBe(3);
    expect(m.image.normalize).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(m.text?.inputs.tokenTypeIds).toBe('token_type_ids');
    expect(m.outputs.scores).toEqual({ name: 'logits', kind: 'logits', activation: 'sigmoid' });
    expect(m.outputs.saliency).toBeUndefined();
  });

  it('the image-only model has no text', () => {
    expect(parseManifest(raw('cxr-image-only')).text).toBeUndefined();
  });

  it('one mean and std for all channels is spread over them; defaults fill layout, dtype, resize and range', () => {
    const base = raw('cxr-image-only');
    const image = base['image'] as Record<string, unknown>;
    const m = parseManifest({ ...base, image: { ...image, input: { name: 'x', channels: 3 }, resize: undefined, range: undefined, normalize: { mean: 0.5, std: 0.25 } } });
    expect(m.image.normalize).toEqual({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    expect(m.image.input).toEqual({ name: 'x', dtype: 'float32', layout: 'NCHW', channels: 3, color: 'replicate-grey' });
    expect(m.image.resize).toEqual({ mode: 'stretch', interpolation: 'bilinear', pad: 0 });
    expect(m.image.range).toEqual([0, 1]);
  });

  it('logits with no activation named default to sigmoid', () => {
    const base = raw('cxr-image-only');
    expect(parseManifest({ ...base, outputs: { scores: { name: 'logits', kind: 'logits' } } }).outputs.scores.activation).toBe('sigmoid');
  });

  it('lists every problem at once, each with its path: misspelt key, wrong mean count, fixed window without width, logits without activation', () => {
    const base = raw('cxr-image-only');
    const image = base['image'] as Record<string, unknown>;
    const bad = {
      ...base,
      image: { ...image, resise: { mode: 'stretch' }, normalize: { mean: [0.5, 0.5], std: 0.2 }, window: { source: 'fixed', center: 40 } },
      outputs: { scores: { name: 'logits', kind: 'logits', activation: 'none' } },
    };
    const { issues } = manifestIssues(bad);
    const text = issues.join('\n');
    expect(text).toContain('image: Unrecognized key: "resise"');
    expect(text).toContain('image.normalize.mean: has 2 values; image.input.channels is 3');
    expect(text).toContain('image.window.center: a fixed window needs center and width');
    expect(text).toContain('outputs.scores.activation: thresholds apply to probabilities');
    expect(issues.length).toBeGreaterThanOrEqual(4);
    expect(() => parseManifest(bad, 'x/manifest.json')).toThrow(TriageError);
  });

  it('an unknown schemaVersion names the two it reads', () => {
    expect(manifestIssues({ schemaVersion: 3 }).issues).toEqual(['  - schemaVersion: is 3; must be 1 (the reference model\'s shape) or 2 (models/README.md)']);
  });
});
