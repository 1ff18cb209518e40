/**
 * The inference stage's pure core: the model's output for one study as findings — probability,
 * threshold, and, when the model gives saliency, where a positive finding's map points on the
 * source image (mapped back through the manifest's resize). A model without saliency gives
 * findings without regions: the SR then has no SCOORD, only the evaluation per finding.
 */
import type { Manifest } from '../../config/manifest.ts';
import type { Finding, InstanceMeta } from '../../domain/types.ts';
import type { ModelOutput } from '../../adapters/model/run.ts';
import { inverseResize, saliencyRegion } from '../preprocess/index.ts';

export function findingsOf(output: ModelOutput, manifest: Manifest, instance: InstanceMeta, source: { rows: number; columns: number }): Finding[] {
  const saliency = manifest.outputs.saliency;
  const { size, resize } = manifest.image;
  return manifest.findings.map((f, k) => {
    const probability = output.probabilities[k] as number;
    const positive = probability >= f.threshold;
    const finding: Finding = { code: f.code, display: f.display, probability, threshold: f.threshold, positive };
    const map = output.saliency[k];
    if (saliency && positive && probability >= (saliency.minProbability ?? f.threshold) && map) {
      const box = saliencyRegion(map, size.width, saliency.threshold, size.height);
      const mapped = box && inverseResize(box, source, size, resize.mode);
      if (mapped) finding.region = { sopInstanceUID: instance.SOPInstanceUID, ...mapped };
    }
    return finding;
  });
}
