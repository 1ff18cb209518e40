/**
 * One study through the whole pipeline for one model, as a sequence of named stages:
 *
 *   select → clinical text → result key (unchanged? stop) → image + infer (or the stored
 *   findings, on a resume) → encode → record → write back (+ worklist pictures alongside)
 *
 * Throws a TriageError for failures; the worker decides from its code whether to retry. With
 * several models, process-models.ts runs this once per model.
 */
import { logEvent } from '../domain/log-events.ts';
import type { FhirResource } from '../domain/types.ts';
import type { StoredResult } from '../domain/records.ts';
import { priorityOf } from '../domain/priority.ts';
import { resultKey } from '../domain/uids.ts';
import { encodePictureSource, pictureSourceOf } from './render/picture-source.ts';
import { clinicalStage, selectStage } from './context/study-context.ts';
import { encodeStage } from './encode/result.ts';
import { findingsOf } from './inference/findings.ts';
import type { PipelineDeps } from './ports.ts';
import { imageStage } from './preprocess/stage.ts';
import { stageTimer } from './timing.ts';
import { tensorPlane, unnormalizeOf } from './preprocess/index.ts';
import type { PipelineStore } from './ports.ts';
import { fullyWritten, writeBack } from './writeback/write-back.ts';

export { WriteBackPending } from './writeback/write-back.ts';
export type { PipelineDeps, ResultSink, StudySource } from './ports.ts';

export type StudyOutcome =
  | { status: 'done'; result: StoredResult; sr: Uint8Array; fhir: FhirResource | undefined; unchanged: boolean }
  | { status: 'skipped'; reason: string };

/**
 * The latest result of this model for the study: with several models a study has results of
 * each, and a model's rerun, its Predecessor Documents and its SR Instance Number follow its own.
 */
export async function latestResultOf(store: Pick<PipelineStore, 'latestResult' | 'resultsOf'>, studyInstanceUID: string, modelId: string): Promise<StoredResult | undefined> {
  const latest = await store.latestResult(studyInstanceUID);
  if (latest === undefined || latest.modelId === modelId) return latest;
  return (await store.resultsOf(studyInstanceUID)).filter((r) => r.modelId === modelId).at(-1);
}

export interface StudyOptions {
  /** Keep what the worklist pictures are drawn from (off for all but one model of a study). */
  pictures?: boolean;
}

export async function processStudy(studyInstanceUID: string, deps: PipelineDeps, timings: Record<string, number> = {}, options: StudyOptions = {}): Promise<StudyOutcome> {
  const { model, mappings, log } = deps;
  const manifest = model.manifest;
  const timed = stageTimer(timings);

  const selection = await selectStage(studyInstanceUID, deps, timed);
  if (!selection.selected) return { status: 'skipped', reason: selection.reason };
  const { instance, study, selectedBy } = selection;

  const previous = await latestResultOf(deps.store, studyInstanceUID, manifest.id);
  // A study never processed needs its pixels whatever the FHIR server says, so they are fetched
  // while the FHIR look-ups run instead of after them. A study with a result may turn out
  // unchanged; there the retrieval would be wasted PACS load (think backfills), so it waits.
  const early = previous ? undefined : imageStage(instance, deps, timed);
  early?.catch(() => undefined); // awaited below; a failure must not surface as unhandled meanwhile

  const context = await clinicalStage(study, deps, timed, previous);
  const key = resultKey({
    studyInstanceUID,
    sourceSopInstanceUIDs: [instance.SOPInstanceUID],
    fhirResources: context.usedVersions,
    modelId: manifest.id,
    modelVersion: manifest.version,
    mappingsVersion: mappings.version,
  });
  const sameKey = previous?.resultKey === key ? previous : undefined;
  if (sameKey && fullyWritten(sameKey, deps.shadow)) {
    logEvent(log, 'study.unchanged', { study: studyInstanceUID, model: manifest.id, resultKey: key });
    // Still refused, as far as this process knows: /readyz keeps saying so (logged once per cause).
    for (const w of sameKey.warnings ?? []) deps.warnings?.report(w, studyInstanceUID);
    return { status: 'done', result: sameKey, sr: new Uint8Array(), fhir: undefined, unchanged: true };
  }

  // The same inputs already produced a stored result that is not yet fully written: write that
  // one (the SR re-encodes byte for byte from it) instead of running the model again.
  let findings = sameKey?.findings;
  let pictures: (() => Promise<void>) | undefined;
  if (findings) {
    logEvent(log, 'study.resume', { study: studyInstanceUID, resultKey: key, written: sameKey?.written });
  } else {
    const tensor = await (early ?? imageStage(instance, deps, timed));
    const text = model.encodeText(context.text);
    const output = await timed('infer', () => model.infer({ image: tensor.tensor, ...(text ? { text } : {}) }));
    const inferred = findingsOf(output, manifest, instance, tensor.source);
    findings = inferred;
    if (options.pictures !== false) {
      pictures = async () => {
        // Only what the pictures are drawn from is kept here (the first channel, taken back to the
        // window's [0, 1] with its own mean and std); the API draws them at first view.
        const spec = manifest.image;
        const which = inferred.flatMap((f, k) => (f.positive ? [k] : []));
        const plane = tensorPlane(tensor.tensor, spec, 0);
        const source = pictureSourceOf(plane, spec.size.width, spec.size.height, unnormalizeOf(spec, 0), output.saliency.length > 0 ? output.saliency : undefined, which);
        await deps.store.savePictureSource(studyInstanceUID, encodePictureSource(source), source.heat !== undefined, key);
      };
    }
  }
  const priority = priorityOf(findings, mappings.priority);
  const writesOrder = context.order !== undefined && deps.sink.writeOrderPriority !== undefined;
  const encoded = await encodeStage(
    { key, study, instance, selectedBy, findings, priority, clinical: context.clinical, usedVersions: context.usedVersions, sameKey, previous, writesOrder },
    deps,
    timed,
  );
  const { result } = encoded;
  // Stored before writing: a crash mid-write leaves a result whose flags say what is still to do.
  await deps.store.saveResult(result);
  // The pictures are for the worklist page: their source is kept while the results are written,
  // not before. A failure there must not cost the result.
  const draw = pictures;
  const drawing = draw
    ? timed('render', async () => {
        try {
          await draw();
        } catch (err) {
          logEvent(log, 'render.failed', { study: studyInstanceUID, err: (err as Error).message });
        }
      })
    : Promise.resolve();
  if (deps.shadow) {
    await drawing;
    result.notes.push('shadow mode: nothing written back');
    await deps.store.saveResult(result);
  } else {
    await writeBack({ result, instance, sr: encoded.sr, fhir: encoded.fhir, ...(writesOrder && context.order ? { order: context.order } : {}) }, deps, timed, drawing);
    logEvent(log, 'study.done', { study: studyInstanceUID, model: manifest.id, priority, provider: model.provider, timings });
  }
  return { status: 'done', result, sr: encoded.sr.part10, fhir: encoded.fhir, unchanged: false };
}
