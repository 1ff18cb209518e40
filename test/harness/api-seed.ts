/**
 * A seeded in-memory store for the API and browser tests: studies of every priority, a failed
 * and a queued job, the picture sources (thumbnail and saliency overlay) of a synthetic radiograph.
 * (Not a test file: vitest collects *.test.ts only.)
 */
import type { Store } from '../../src/state/ports.ts';
import type { Finding, Priority } from '../../src/domain/types.ts';
import { encodePictureSource, pictureSourceOf } from '../../src/pipeline/render/picture-source.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import type { StoredResult } from '../../src/domain/records.ts';

export const TOKEN = 'a-token-of-sixteen+';
export const FINDINGS = [
  { code: 'pneumothorax', display: 'Pneumothorax', threshold: 0.5 },
  { code: 'pleural_effusion', display: 'Pleural effusion', threshold: 0.45 },
  { code: 'consolidation', display: 'Consolidation', threshold: 0.5 },
  { code: 'lung_nodule', display: 'Lung nodule', threshold: 0.55 },
] as const;

const SIZE = 96;
const NORMALIZE = { mean: 0.5, std: 0.25 };

/** A synthetic chest radiograph (window values in [0,1]), normalised like the preprocess. */
export function syntheticChest(size = SIZE, seed = 1): Float32Array {
  const t = new Float32Array(size * size);
  let s = seed;
  const rand = (): number => ((s = (s * 16807) % 2147483647) / 2147483647);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x / size - 0.5;
      const v = y / size - 0.5;
      const lung = (cx: number): boolean => ((u - cx) / 0.17) ** 2 + ((v + 0.02) / 0.33) ** 2 < 1;
      let w = 0.8 - 0.25 * Math.abs(u) * 2;
      if (lung(-0.2) || lung(0.2)) w = 0.22 + 0.1 * Math.abs(v);
      if (Math.abs(u) < 0.04) w = 0.92;
      w += (rand() - 0.5) * 0.05;
      t[y * size + x] = (Math.min(1, Math.max(0, w)) - NORMALIZE.mean) / NORMALIZE.std;
    }
  }
  return t;
}

/** A Gaussian blob normalised to max 1, centred at (cx, cy) in [0,1] coordinates. */
export function blob(cx: number, cy: number, size = SIZE, radius = 0.12): Float32Array {
  const m = new Float32Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) m[y * size + x] = Math.exp(-(((x / size - cx) ** 2 + (y / size - cy) ** 2) / (2 * radius * radius)));
  return m;
}

export function findings(probabilities: readonly number[]): Finding[] {
  return FINDINGS.map((f, k) => {
    const probability = probabilities[k] ?? 0;
    return { code: f.code, display: f.display, probability, threshold: f.threshold, positive: probability >= f.threshold };
  });
}

export function storedResult(uid: string, priority: Priority, probabilities: readonly number[], extra: Partial<StoredResult> = {}): StoredResult {
  return {
    resultKey: `key-${uid}`,
    studyInstanceUID: uid,
    sourceSopInstanceUIDs: [`${uid}.1.1`],
    srSopInstanceUID: `${uid}.9.1`,
    srSeriesInstanceUID: `${uid}.9`,
    priority,
    findings: findings(probabilities),
    modelId: 'cxr-triage',
    modelVersion: '1.0.0',
    executionProvider: 'cpu',
    modality: 'CR',
    createdAt: 1_700_000_000_000,
    written: { pacs: true, fhir: true, metadata: true },
    notes: [],
    riskAssessmentRef: `RiskAssessment/ra-${uid.replace(/\./g, '-')}`,
    ...extra,
  };
}

export interface SeededStudy {
  uid: string;
  priority?: Priority;
  probabilities?: number[];
  modality?: string;
  fail?: { code: string; reason: string };
  queued?: boolean;
  images?: boolean;
  /** Where the saliency of each positive finding points (x, y in [0,1]). */
  hot?: [number, number];
  /** What the worklist shows of the study (the pipeline keeps them with the result). */
  study?: StoredResult['study'];
}

/** A patient's name and ID as a store would hold them with api.showPatientIdentity on. */
export const IDENTITY = { patientName: 'DOE^JANE', patientId: 'PID-4711' } as const;

/** The worklist order of SEED (priority, then highest probability, then oldest first). */
export const SEED: readonly SeededStudy[] = [
  { uid: '1.2.826.0.1.3680043.10.999.1', priority: 'urgent', probabilities: [0.1, 0.62, 0.3, 0.2], images: true, hot: [0.3, 0.7], study: { accessionNumber: 'ACC1001', studyDescription: 'XR Chest PA', studyDate: '20260302', studyTime: '081500', patientAge: '067Y', patientSex: 'F', ...IDENTITY } },
  { uid: '1.2.826.0.1.3680043.10.999.2', priority: 'stat', probabilities: [0.91, 0.3, 0.1, 0.05], images: true, hot: [0.72, 0.3], study: { accessionNumber: 'ACC1002', studyDescription: 'Thorax ap liegend', studyDate: '20260303', studyTime: '140000', patientAge: '081Y', patientSex: 'M' } },
  { uid: '1.2.826.0.1.3680043.10.999.3', fail: { code: 'DICOM_UNREADABLE', reason: 'instance 1.2.3: not a DICOM file' } },
  { uid: '1.2.826.0.1.3680043.10.999.4', priority: 'routine', probabilities: [0.05, 0.1, 0.2, 0.1], modality: 'DX', images: true, study: { accessionNumber: 'ACC1004', studyDescription: 'XR Chest 2 views', studyDate: '20260228', studyTime: '093000', patientAge: '034Y', patientSex: 'F' } },
  { uid: '1.2.826.0.1.3680043.10.999.5', priority: 'asap', probabilities: [0.2, 0.86, 0.4, 0.1], images: true, hot: [0.25, 0.75], study: { accessionNumber: 'ACC1005', studyDescription: 'CXR portable', studyDate: '20260303', studyTime: '091000', patientAge: '052Y', patientSex: 'M' } },
  { uid: '1.2.826.0.1.3680043.10.999.6', priority: 'urgent', probabilities: [0.1, 0.2, 0.3, 0.81], hot: [0.65, 0.45] },
  { uid: '1.2.826.0.1.3680043.10.999.7', queued: true },
];

/** SEED's UIDs in the order the worklist must show them. */
export const SEED_ORDER = ['.2', '.5', '.6', '.1', '.4', '.3', '.7'].map((s) => `1.2.826.0.1.3680043.10.999${s}`);

export async function seededStore(clockStart = 1_700_000_000_000): Promise<Store> {
  let t = clockStart;
  const store = openSqliteStore(':memory:', { clock: () => (t += 60_000) });
  for (const [i, s] of SEED.entries()) {
    await store.enqueue([{ studyInstanceUID: s.uid, source: 'orthanc-changes' }]);
    if (s.queued) continue;
    await store.claim(Number.MAX_SAFE_INTEGER);
    if (s.fail) {
      await store.fail(s.uid, s.fail.code, s.fail.reason, undefined);
      continue;
    }
    const result = storedResult(s.uid, s.priority ?? 'routine', s.probabilities ?? [], { ...(s.modality ? { modality: s.modality } : {}), ...(s.study ? { study: s.study } : {}) });
    await store.saveResult(result);
    await store.finish(s.uid, 'done', undefined, { 'context.instances': 12.5, retrieve: 40.1, preprocess: 18.2, infer: 35.7, encode: 9.9 });
    if (s.images) {
      const tensor = syntheticChest(SIZE, i + 1);
      const maps = FINDINGS.map(() => blob(s.hot?.[0] ?? 0.5, s.hot?.[1] ?? 0.5));
      const which = result.findings.flatMap((f, k) => (f.positive ? [k] : []));
      // As the pipeline keeps them: the pictures are drawn by the API at their first view.
      const source = pictureSourceOf(tensor, SIZE, SIZE, NORMALIZE, maps, which);
      await store.savePictureSource(s.uid, encodePictureSource(source), true, result.resultKey);
    }
  }
  return store;
}
