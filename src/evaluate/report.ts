/** What `evaluate` reports (its --json output), shared by the evaluation and the text and plot renderings. */
import type { BinaryMetrics } from './metrics.ts';
import type { Calibration } from './calibration.ts';

/** fused: image and text; imageOnly: text masked; textOnly: image blanked (the manifest's ablations). */
export type VariantName = 'fused' | 'imageOnly' | 'textOnly';

export type Calibrated = { brier: number; ece: number };

export interface VariantReport {
  macro: BinaryMetrics & Calibrated & { aurocCi: [number, number] };
  perFinding: Record<string, BinaryMetrics & Calibrated & { threshold: number; positives: number }>;
  /** All findings' probabilities pooled: Brier, ECE and the reliability table (10 bins). */
  calibration: Calibration;
}

export interface EvaluationReport {
  model: { id: string; version: string };
  executionProvider: string;
  n: number;
  /** An image-only model has the fused variant only: blanking its one input or masking text it does not read measures nothing. */
  variants: Partial<Record<VariantName, VariantReport>>;
}
