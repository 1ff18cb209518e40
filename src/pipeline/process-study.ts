import type { Logger } from 'pino';
import type { Mappings } from '../config/mappings.ts';
import type { TriageModel } from '../adapters/model/index.ts';
import { TriageError } from '../domain/errors.ts';
import { STUDY_KEYWORDS, type ClinicalContext, type FhirResource, type Finding, type InstanceMeta, type StudyMeta } from '../domain/types.ts';
import { resultKey } from '../domain/uids.ts';
import type { AuditEntry, JobStore, StoredResult } from '../state/store.ts';
import type { Metrics } from '../observability/metrics.ts';
import { gatherClinicalContext, type ClinicalSource } from './context/fhir-context.ts';
import { selectInstance } from './context/select.ts';
import { renderClinicalText } from './context/text-template.ts';
import { encodeSr } from './encode/sr.ts';
import { encodeFhirResults } from './encode/fhir.ts';
import { imageToTensor, inverseResize, saliencyRegion } from './preprocess/index.ts';
import { readDicom } from '../dicom/index.ts';
import { priorityOf } from '../domain/priority.ts';
import { renderSaliency, renderThumbnail } from '../render/images.ts';

/** Where a study's instances come from: the PACS (QIDO + WADO-RS) or files given to `analyze`. */
export interface StudySource {
  instances(studyInstanceUID: string): Promise<InstanceMeta[]>;
  retrieve(instance: InstanceMeta): Promise<Uint8Array>;
}

/** The UIDs of an SR just stored, and the PatientID it carries. */
export interface StoredSr {
  patientId: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
}

/** Where results go: the PACS and the FHIR server, or a folder for `analyze`. */
export interface ResultSink {
  /** `sr` names the SR (for a PACS that can tell its own id of the instance from them). */
  storeSr(studyInstanceUID: string, part10: Uint8Array, sr?: StoredSr): Promise<void>;
  /** Writes the transaction Bundle; returns the RiskAssessment's reference when the server says. */
  writeFhir(studyInstanceUID: string, bundle: FhirResource): Promise<string | undefined>;
  setPriority(study: InstanceMeta, result: StoredResult): Promise<void>;
  /** Writes the priority to the order; returns the order's new versionId. Absent: the sink cannot. */
  writeOrderPriority?(order: FhirResource, priority: StoredResult['priority']): Promise<string | undefined>;
}

export interface PipelineDeps {
  model: TriageModel;
  mappings: Mappings;
  uidRoot: string;
  /** Run everything, write nothing back (results stay in the store and the API). */
  shadow: boolean;
  source: StudySource;
  /** Undefined when no FHIR server (or Bundle) is configured: the model then reads no clinical text. */
  clinical: ClinicalSource | undefined;
  sink: ResultSink;
  store: JobStore;
  log: Logger;
  /** Also write the priority to the study's ServiceRequest (fhir.writeOrderPriority). */
  writeOrderPriority?: boolean;
  now?: () => Date;
  software: { name: string; version: string };
  /** Stage timings, write counts (optional: `analyze` has none). */
  metrics?: Metrics;
}

/**
 * A retryable failure of a write after the result was stored: the job waits for the upstream
 * (it is not dead-lettered after maxAttempts) and the next attempt writes the stored result
 * without running the model again.
 */
export class WriteBackPending extends TriageError {
  constructor(
    readonly target: 'pacs' | 'fhir',
    cause: TriageError,
  ) {
    super(cause.code, `waiting for ${target}: ${cause.message}`, {
      cause,
      where: `write.${target}`,
      ...(cause.status === undefined ? {} : { status: cause.status }),
      ...(cause.retryAfterS === undefined ? {} : { retryAfterS: cause.retryAfterS }),
    });
  }
}

export type StudyOutcome =
  | { status: 'done'; result: StoredResult; sr: Uint8Array; fhir: FhirResource | undefined; unchanged: boolean }
  | { status: 'skipped'; reason: string };

/** DICOM DA and TM as PS3.5 defines them; older files carry e.g. "1997.04.24" (ACR-NEMA). */
const VALID: Partial<Record<(typeof STUDY_KEYWORDS)[number], RegExp>> = {
  StudyDate: /^\d{8}$/,
  PatientBirthDate: /^\d{8}$/,
  StudyTime: /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/,
};

/**
 * The study-level attributes the SR copies. A date or time that is not valid DICOM is left out
 * rather than copied: the SR we write must itself be valid, whatever the source carried.
 */
export function studyMetaOf(instance: InstanceMeta): StudyMeta {
  const meta: StudyMeta = { StudyInstanceUID: instance.StudyInstanceUID };
  for (const key of STUDY_KEYWORDS) {
    const value = instance[key];
    if (value === undefined) continue;
    const rule = VALID[key];
    if (rule && !rule.test(String(value).trim())) continue;
    meta[key] = value;
  }
  return meta;
}

/**
 * The FHIR resources a result used, with their versions. The version our own priority write gave
 * the order counts as the version it had before: otherwise that write would change the key and
 * the study would be processed again for nothing.
 */
function versionsOf(resources: readonly FhirResource[], ownWrite?: StoredResult['orderPriority']): { ref: string; versionId?: string }[] {
  return resources.map((r) => {
    const ref = `${r.resourceType}/${r.id ?? ''}`;
    let versionId = r.meta?.versionId;
    if (ownWrite && ownWrite.ref === ref && versionId !== undefined && versionId === ownWrite.toVersion) versionId = ownWrite.fromVersion;
    return { ref, ...(versionId ? { versionId } : {}) };
  });
}

function fullyWritten(result: StoredResult, shadow: boolean): boolean {
  if (shadow) return true;
  return (
    result.written.pacs &&
    result.written.metadata &&
    (result.written.fhir || result.notes.some((n) => n.startsWith('fhir skipped'))) &&
    result.written.order !== false
  );
}

/**
 * One study through the whole pipeline: select → clinical context → (unchanged? stop) →
 * retrieve + preprocess → infer → encode SR and FHIR → write back → record. Throws a
 * TriageError for failures; the worker decides from its code whether to retry.
 */
export async function processStudy(studyInstanceUID: string, deps: PipelineDeps, timings: Record<string, number> = {}): Promise<StudyOutcome> {
  const { model, mappings, log } = deps;
  const manifest = model.manifest;
  const now = deps.now ?? (() => new Date());
  const timed = async <T>(stage: string, run: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await run();
    } finally {
      timings[stage] = (timings[stage] ?? 0) + Math.round((performance.now() - start) * 10) / 10;
    }
  };

  const instances = await timed('context.instances', () => deps.source.instances(studyInstanceUID));
  const selection = selectInstance(instances, mappings.selection, manifest.id);
  if (!selection.selected) return { status: 'skipped', reason: selection.reason };
  const instance = selection.instance;
  const study = studyMetaOf(instance);

  const readImage = async () => {
    const bytes = await timed('retrieve', () => deps.source.retrieve(instance));
    return timed('preprocess', async () => {
      try {
        return imageToTensor(readDicom(bytes), manifest.image);
      } catch (err) {
        if (err instanceof TriageError) throw err;
        throw new TriageError('DICOM_UNREADABLE', `instance ${instance.SOPInstanceUID}: ${(err as Error).message}`, { cause: err });
      }
    });
  };
  const previous = deps.store.latestResult(studyInstanceUID);
  // A study never processed needs its pixels whatever the FHIR server says, so they are fetched
  // while the FHIR look-ups run instead of after them. A study with a result may turn out
  // unchanged; there the retrieval would be wasted PACS load (think backfills), so it waits.
  const early = previous ? undefined : readImage();
  early?.catch(() => undefined); // awaited below; a failure must not surface as unhandled meanwhile

  let clinical: ClinicalContext = { resources: [] };
  if (deps.clinical) {
    const source = deps.clinical;
    clinical = await timed('context.fhir', () => gatherClinicalContext(study, source, mappings.fhir, manifest.text, now()));
  }
  const rendered = renderClinicalText(clinical.resources, manifest.text, mappings.fhir);
  for (const hit of rendered.capsHit) log.warn({ event: 'context.cap_hit', study: studyInstanceUID, ...hit }, 'a clinical context cap was hit; the text was cut');
  // Why a report's attachment gave no text (its content type, charset or encoding): never the text.
  for (const u of rendered.unread) log.info({ event: 'context.text_unread', study: studyInstanceUID, resource: u.resource, reason: u.reason }, 'a report attachment was not read');
  const usedVersions = versionsOf(rendered.used, previous?.orderPriority);
  const key = resultKey({
    studyInstanceUID,
    sourceSopInstanceUIDs: [instance.SOPInstanceUID],
    fhirResources: usedVersions,
    modelId: manifest.id,
    modelVersion: manifest.version,
    mappingsVersion: mappings.version,
  });
  const sameKey = previous?.resultKey === key ? previous : undefined;
  if (sameKey && fullyWritten(sameKey, deps.shadow)) {
    log.info({ event: 'study.unchanged', study: studyInstanceUID, resultKey: key }, 'same inputs as the stored result; nothing new to write');
    return { status: 'done', result: sameKey, sr: new Uint8Array(), fhir: undefined, unchanged: true };
  }

  // The same inputs already produced a stored result that is not yet fully written: write that
  // one (the SR re-encodes byte for byte from it) instead of running the model again.
  let findings: Finding[];
  let pictures: (() => Promise<void>) | undefined;
  if (sameKey) {
    findings = sameKey.findings;
    log.info({ event: 'study.resume', study: studyInstanceUID, resultKey: key, written: sameKey.written }, 'writing the stored result; no inference');
  } else {
    const tensor = await (early ?? readImage());
    const output = await timed('infer', () => model.infer({ image: tensor.tensor, text: model.tokenizer.encode(rendered.text) }));

    findings = manifest.findings.map((f, k) => {
      const probability = output.probabilities[k] as number;
      const positive = probability >= f.threshold;
      const finding: Finding = { code: f.code, display: f.display, probability, threshold: f.threshold, positive };
      const minP = manifest.saliency.minProbability ?? f.threshold;
      const map = output.saliency[k];
      if (positive && probability >= minP && map) {
        const box = saliencyRegion(map, manifest.image.size, manifest.saliency.threshold);
        if (box) finding.region = { sopInstanceUID: instance.SOPInstanceUID, ...inverseResize(box, tensor.source, manifest.image.size) };
      }
      return finding;
    });
    pictures = async () => {
      const { size, normalize } = manifest.image;
      const which = findings.flatMap((f, k) => (f.positive ? [k] : []));
      deps.store.saveImage(studyInstanceUID, 'thumbnail', await renderThumbnail(tensor.tensor, size, normalize), key);
      deps.store.saveImage(studyInstanceUID, 'saliency', await renderSaliency(tensor.tensor, size, normalize, output.saliency, which), key);
    };
  }
  const priority = priorityOf(findings, mappings.priority);
  // A rerun of the same key reproduces the same SR byte for byte: its time is the stored one.
  const producedAt = sameKey ? new Date(sameKey.createdAt).toISOString() : now().toISOString();
  const predecessor = sameKey
    ? sameKey.predecessor
    : previous && previous.resultKey !== key && previous.written.pacs
      ? { seriesInstanceUID: previous.srSeriesInstanceUID, sopInstanceUID: previous.srSopInstanceUID }
      : undefined;

  const inference = { modelId: manifest.id, modelVersion: manifest.version, deviceUid: manifest.deviceUid, sourceInstance: instance, findings };
  const sr = await timed('encode', async () =>
    encodeSr({
      uidRoot: deps.uidRoot,
      resultKey: key,
      study,
      inference,
      model: { name: manifest.name, manufacturer: manifest.manufacturer },
      mappings: mappings.findings,
      producedAt,
      software: deps.software,
      ...(predecessor
        ? { predecessor: { studyInstanceUID, ...predecessor } }
        : {}),
    }),
  );
  const fhirBundle = clinical.patientRef
    ? encodeFhirResults({
        resultKey: key,
        patientRef: clinical.patientRef,
        studyInstanceUID,
        inference,
        model: { name: manifest.name, manufacturer: manifest.manufacturer, notForClinicalUse: manifest.notForClinicalUse },
        service: deps.software,
        mappings: mappings.findings,
        producedAt,
        fhirResources: usedVersions,
        srSopInstanceUID: sr.sopInstanceUID,
      })
    : undefined;
  const fhir = fhirBundle as unknown as FhirResource | undefined;

  // The study's order, when the priority is to be written there too (fhir.writeOrderPriority).
  const order = deps.writeOrderPriority && clinical.patientRef ? clinical.resources.find((r) => r.resourceType === 'ServiceRequest') : undefined;
  const result: StoredResult = {
    resultKey: key,
    studyInstanceUID,
    sourceSopInstanceUIDs: [instance.SOPInstanceUID],
    srSopInstanceUID: sr.sopInstanceUID,
    srSeriesInstanceUID: sr.seriesInstanceUID,
    priority,
    findings,
    modelId: manifest.id,
    modelVersion: manifest.version,
    executionProvider: model.provider,
    ...(instance.Modality ? { modality: instance.Modality } : {}),
    createdAt: Date.parse(producedAt),
    written: {
      ...(sameKey?.written ?? { pacs: false, fhir: false, metadata: false }),
      ...(order && deps.sink.writeOrderPriority ? { order: sameKey?.written.order ?? false } : {}),
    },
    notes: [],
    // Carried forward until we write the order again, so our last write keeps not counting as a change.
    ...(previous?.orderPriority ? { orderPriority: previous.orderPriority } : {}),
    ...(sameKey?.riskAssessmentRef ? { riskAssessmentRef: sameKey.riskAssessmentRef } : {}),
    ...(predecessor ? { predecessor } : {}),
  };
  if (!clinical.patientRef) {
    result.notes.push(`fhir skipped: ${clinical.patientProblem?.message ?? 'no FHIR server configured'}`);
  }
  // Stored before writing: a crash mid-write leaves a result whose flags say what is still to do.
  deps.store.saveResult(result);
  // The pictures are for the worklist page, and sharp draws them on libuv's threads: they are
  // drawn while the results are written, not before.
  const draw = pictures;
  const drawing = draw
    ? timed('render', async () => {
        // A failure here must not cost the study its result.
        try {
          await draw();
        } catch (err) {
          log.warn({ event: 'render.failed', study: studyInstanceUID, err: (err as Error).message }, 'images not rendered');
        }
      })
    : Promise.resolve();
  if (deps.shadow) {
    await drawing;
    result.notes.push('shadow mode: nothing written back');
    deps.store.saveResult(result);
    return { status: 'done', result, sr: sr.part10, fhir, unchanged: false };
  }
  // Each write is recorded in the audit log, and its flag saved as soon as it succeeds, so a
  // crash or an outage between writes resumes at the first write not done.
  const audited = async <T>(entry: Omit<AuditEntry, 'outcome' | 'detail' | 'studyInstanceUID' | 'resultKey' | 'modelVersion'>, run: () => Promise<T>): Promise<T> => {
    const base = { ...entry, studyInstanceUID, resultKey: key, modelVersion: `${manifest.id}@${manifest.version}` };
    try {
      const value = await run();
      deps.store.audit({ ...base, outcome: 'ok' });
      deps.metrics?.writes.inc({ target: entry.target, action: entry.action, outcome: 'ok' });
      return value;
    } catch (err) {
      const e = err instanceof TriageError ? err : new TriageError('INTERNAL', (err as Error).message, { cause: err });
      deps.store.audit({ ...base, outcome: 'error', detail: `${e.code}${e.status ? ` ${e.status}` : ''}` });
      deps.metrics?.writes.inc({ target: entry.target, action: entry.action, outcome: 'error' });
      throw e.retryable ? new WriteBackPending(entry.target as 'pacs' | 'fhir', e) : e;
    }
  };
  // The PACS writes and the FHIR writes are independent chains, run side by side: neither
  // upstream waits for the other, and one being down does not hold back the other's write.
  const pacsWrites = async (): Promise<void> => {
    await timed('write.pacs', async () => {
      if (!result.written.pacs) {
        await audited({ target: 'pacs', action: 'store-sr', resource: `SR ${sr.sopInstanceUID}` }, () =>
          deps.sink.storeSr(studyInstanceUID, sr.part10, { patientId: instance.PatientID ?? '', seriesInstanceUID: sr.seriesInstanceUID, sopInstanceUID: sr.sopInstanceUID }),
        );
        result.written.pacs = true;
        deps.store.saveResult(result);
      }
    });
    await timed('write.priority', async () => {
      if (!result.written.metadata) {
        await audited({ target: 'pacs', action: 'set-priority', resource: `priority ${priority}` }, () => deps.sink.setPriority(instance, result));
        result.written.metadata = true;
        deps.store.saveResult(result);
      }
    });
  };
  const fhirWrites = async (): Promise<void> => {
    if (fhir && !result.written.fhir) {
      await timed('write.fhir', async () => {
        const ref = await audited({ target: 'fhir', action: 'transaction', resource: `RiskAssessment for SR ${sr.sopInstanceUID}` }, () =>
          deps.sink.writeFhir(studyInstanceUID, fhir),
        );
        result.written.fhir = true;
        if (ref) result.riskAssessmentRef = ref;
        deps.store.saveResult(result);
      });
    }
    const writeOrder = deps.sink.writeOrderPriority?.bind(deps.sink);
    if (order && writeOrder && result.written.order === false) {
      await timed('write.order', async () => {
        const ref = `ServiceRequest/${order.id ?? ''}`;
        if (order['priority'] !== priority) {
          const fromVersion = versionsOf([order], previous?.orderPriority)[0]?.versionId;
          const toVersion = await audited({ target: 'fhir', action: 'order-priority', resource: `${ref} priority ${priority}` }, () => writeOrder(order, priority));
          result.orderPriority = { ref, ...(fromVersion ? { fromVersion } : {}), ...(toVersion ? { toVersion } : {}) };
        }
        result.written.order = true;
        deps.store.saveResult(result);
      });
    }
  };
  const settled = await Promise.allSettled([pacsWrites(), fhirWrites(), drawing]);
  const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) {
    // Both chains may fail (each failure is in the audit log). A write still waiting for its
    // upstream wins over a terminal one: the job waits, the next attempt writes what it can,
    // and a terminal error that persists then ends the job with its own reason.
    throw failures.find((e) => e instanceof WriteBackPending) ?? failures[0];
  }
  log.info({ event: 'study.done', study: studyInstanceUID, priority, provider: model.provider, timings }, 'study processed');
  return { status: 'done', result, sr: sr.part10, fhir, unchanged: false };
}
