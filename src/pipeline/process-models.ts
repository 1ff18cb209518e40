/**
 * A study through every model of the service (config `models`). Each model picks its own series
 * (selection rules keyed by its manifest id), reads its own clinical text, and writes its own SR
 * (its own series: the SR series UID derives from the model id and Device UID) and RiskAssessment
 * (identifiers from its result key, which holds the model id and version). The store keeps one
 * job per study and one result per model run: a rerun finds each model's own latest result.
 *
 * One model's failure does not stop the others; the job then fails (or retries) with that model's
 * error, and a retry finds the models that finished unchanged (nothing written twice).
 */
import { logEvent } from '../domain/log-events.ts';
import { asTriageError, TriageError } from '../domain/errors.ts';
import type { PipelineDeps } from './ports.ts';
import { processStudy, type StudyOutcome } from './process-study.ts';
import { WriteBackPending } from './writeback/write-back.ts';

export type ModelRun = { modelId: string; outcome: StudyOutcome } | { modelId: string; error: TriageError };

/** Which error the job records when several models failed: a write waiting for its upstream, then a retryable one. */
function jobError(runs: readonly ModelRun[]): TriageError | undefined {
  const failed = runs.flatMap((r) => ('error' in r ? [r] : []));
  const pick = failed.find((r) => r.error instanceof WriteBackPending) ?? failed.find((r) => r.error.retryable) ?? failed[0];
  if (!pick) return undefined;
  const e = pick.error;
  if (e instanceof WriteBackPending) return e;
  return new TriageError(e.code, `model ${pick.modelId}: ${e.message}`, {
    cause: e,
    ...(e.where === undefined ? {} : { where: e.where }),
    ...(e.status === undefined ? {} : { status: e.status }),
    ...(e.retryAfterS === undefined ? {} : { retryAfterS: e.retryAfterS }),
  });
}

/** Every model in turn; the study's outcome is done when a model produced a result, skipped when none chose it. */
export async function processStudyModels(studyInstanceUID: string, deps: PipelineDeps, timings: Record<string, number> = {}): Promise<{ outcome: StudyOutcome; runs: ModelRun[] }> {
  const models = deps.models ?? [deps.model];
  const runs: ModelRun[] = [];
  for (const model of models) {
    const modelId = model.manifest.id;
    // The worklist pictures come from the first model (in config order) that chose the study.
    const pictures = !runs.some((r) => 'outcome' in r && r.outcome.status === 'done');
    try {
      runs.push({ modelId, outcome: await processStudy(studyInstanceUID, { ...deps, model }, timings, { pictures }) });
    } catch (err) {
      if (models.length === 1) throw err;
      const error = asTriageError(err, 'pipeline');
      logEvent(deps.log, 'study.model.failed', { study: studyInstanceUID, model: modelId, code: error.code, err: error.message });
      runs.push({ modelId, error });
    }
  }
  const error = jobError(runs);
  if (error) throw error;
  const outcomes = runs.flatMap((r) => ('outcome' in r ? [{ modelId: r.modelId, outcome: r.outcome }] : []));
  const done = outcomes.flatMap((r) => (r.outcome.status === 'done' ? [r.outcome] : []));
  const first = done[0];
  if (first) {
    for (const r of outcomes) if (r.outcome.status === 'skipped') logEvent(deps.log, 'study.model.skipped', { study: studyInstanceUID, model: r.modelId, reason: r.outcome.reason });
    return { outcome: { ...first, unchanged: done.every((o) => o.unchanged) }, runs };
  }
  const reasons = outcomes.map((r) => (r.outcome.status === 'skipped' ? (models.length === 1 ? r.outcome.reason : `${r.modelId}: ${r.outcome.reason}`) : ''));
  return { outcome: { status: 'skipped', reason: reasons.join('; ') }, runs };
}
