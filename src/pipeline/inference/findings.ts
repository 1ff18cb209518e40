/**
 * The inference stage's pure core: the model's output for one study as findings — probability,
 * threshold, and where a positive finding's saliency points on the source image.
 */
import type { Manifest } from '../../config/manifest.ts';
import type { Finding, InstanceMeta } from '../../domain/types.ts';
import type { ModelOutput } from '../../adapters/model/run.ts';
import { inverseResize, saliencyRegion } from '../preprocess/index.ts';

export function findingsOf(output: ModelOutput, manifest: Manifest, instance: InstanceMeta, source: { rows: number; columns: number }): Finding[] {
  return manifest.findings.map((f, k) => {
    const probability = output.probabilities[k] as number;
    const positive = probability >= f.threshold;
    const finding: Finding = { code: f.code, display: f.display, probability, threshold: f.threshold, positive };
    const minP = manifest.saliency.minProbability ?? f.threshold;
    const map = output.saliency[k];
    if (positive && probability >= minP && map) {
      const box = saliencyRegion(map, manifest.image.size, manifest.saliency.threshold);
      if (box) finding.region = { sopInstanceUID: instance.SOPInstanceUID, ...inverseResize(box, source, manifest.image.size) };
    }
    return finding;
  });
}
