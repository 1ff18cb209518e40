/**
 * `npm run bench` — end-to-end throughput and latency against a real Orthanc and the sandbox
 * FHIR server, each stage's own ceiling measured alone in the same run, and the same pipeline run
 * sequentially. Not part of the tests (CI has 90 minutes); run it on an otherwise idle machine.
 *
 *   npm run bench -- [--n 200] [--trickle 20] [--concurrency 8] [--backlog 0] [--out out/bench]
 *                    [--stable-age 1] [--burst-stable own|orthanc] [--e2e-only]
 *   npm run bench -- --live-under-backlog 10000 | --store postgres --replicas 1,3   (scale.ts)
 *
 * Orthanc listens on every interface, so the npm script runs this inside `unshare --net` with
 * only loopback (root needed, as for the tests).
 *
 * What is measured, and how:
 * - end to end: `pacs-triage serve` runs as a child process; Orthanc's StableAge is 1 s and
 *   pacs-triage's own ingest.stableAgeS is --stable-age. Latency, one study at a time, for each
 *   ingest in a serve of its own — the webhook per instance (Lua OnStoredInstance) with
 *   stableAgeS; the changes feed polled every 1 s with stableAgeS (NewInstance); the changes
 *   feed on Orthanc's StableStudy (the default ingest) — as SR stored − the study's STOW
 *   response (the SR's arrival is seen on Orthanc's /changes, polled every 50 ms). "burst":
 *   all N studies STOWed at once; studies/s from the first STOW to the last SR; the same
 *   latency per study (includes queueing). Stage shares come from the job store's timings.
 *   --e2e-only stops here (for trying changes; the report needs the rest).
 * - ceilings: retrieval (WADO-RS), context (QIDO + FHIR searches), preprocessing, inference and
 *   write-back (STOW of an SR + the FHIR transaction), each alone at its best concurrency/batch.
 * - sequential: `run-once` with worker.concurrency 1 and model.maxBatch 1 over a fresh store,
 *   timed from its first enqueue to its last job's end (the process start and model load apart).
 * - preprocessing against Python (pydicom + numpy + Pillow) on the same files, when present.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { DicomWebClient } from '../../src/adapters/dicomweb/client.ts';
import { FhirClient } from '../../src/adapters/fhir/client.ts';
import { FhirServerSource } from '../../src/adapters/fhir/clinical-source.ts';
import { TriageModel, type ModelInput } from '../../src/adapters/model/index.ts';
import { OrthancClient } from '../../src/adapters/orthanc/client.ts';
import { loadMappings } from '../../src/config/mappings.ts';
import type { InstanceMeta } from '../../src/domain/types.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { gatherClinicalContext } from '../../src/pipeline/context/fhir-context.ts';
import { encodeFhirResults } from '../../src/pipeline/encode/fhir.ts';
import { encodeSr } from '../../src/pipeline/encode/sr.ts';
import { imageToTensor } from '../../src/pipeline/preprocess/index.ts';
import { readDicom } from '../../src/dicom/index.ts';
import { studyMetaOf } from '../../src/pipeline/encode/study-modules.ts';
import { startFhirServer } from '../../src/sandbox/fhir-server.ts';
import { cpuMs, peakRssMb, quantile, round, SrWatcher, studyMaker } from './kit.ts';
import { freePorts, startOrthanc } from '../../src/sandbox/orthanc.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '200' },
    trickle: { type: 'string', default: '20' },
    backlog: { type: 'string', default: '0' },
    out: { type: 'string', default: 'out/bench' },
    concurrency: { type: 'string', default: '8' },
    /** ingest.stableAgeS of the latency phases and the burst: pacs-triage's own stable age. */
    'stable-age': { type: 'string', default: '1' },
    /** The burst's ingest: "own" (ingest.stableAgeS, NewInstance changes) or "orthanc" (StableStudy). */
    'burst-stable': { type: 'string', default: 'own' },
    'e2e-only': { type: 'boolean', default: false },
    /** The scale phases (test/bench/scale.ts) instead of the pipeline's: live studies' latency with this many queued as backfill. */
    'live-under-backlog': { type: 'string', default: '0' },
    /** The scale phases: a burst on each of these numbers of serve replicas (e.g. 1,3). */
    replicas: { type: 'string', default: '' },
    store: { type: 'string', default: 'sqlite' },
  },
});
if (Number(values['live-under-backlog']) > 0 || values.replicas !== '') {
  const { runScale } = await import('./scale.ts');
  if (values.store !== 'sqlite' && values.store !== 'postgres') throw new Error(`--store sqlite|postgres, not ${values.store}`);
  await runScale({
    liveUnderBacklog: Number(values['live-under-backlog']),
    store: values.store,
    replicas: values.replicas === '' ? [] : values.replicas.split(',').map(Number),
    n: Number(values.n),
    trickle: Number(values.trickle),
    concurrency: Number(values.concurrency),
    stableAgeS: Number(values['stable-age']),
    out: values.out,
  });
  process.exit(0);
}
const N = Number(values.n);
const TRICKLE = Number(values.trickle);
const BACKLOG = Number(values.backlog);
const DEMO = 'test/fixtures/demo';
const log = createLogger('warn');
const say = (line: string): void => void process.stderr.write(`${line}\n`);

const makeStudy = studyMaker(DEMO);

// ---------------------------------------------------------------- servers
// The webhook phase needs Orthanc's Lua script to know where to post before Orthanc starts.
const apiPort = (await freePorts(1))[0]!;
const WEBHOOK_SECRET = 'bench-webhook-secret-0123456789';
const orthanc = await startOrthanc({
  dicomServer: false,
  extraConfig: {
    LuaScripts: [path.resolve('docker/orthanc/on-stable-study.lua')],
    // Per instance: the webhook phase measures ingest.stableAgeS (Orthanc's StableStudy is
    // measured on the changes feed, where both can be told apart).
    PacsTriage: { WebhookUrl: `http://127.0.0.1:${apiPort}/webhooks/orthanc`, WebhookSecret: WEBHOOK_SECRET, WebhookEvent: 'instance' },
  },
});
const fhir = await startFhirServer();
await fhir.seed(JSON.parse(readFileSync(path.join(DEMO, 'fhir-bundle.json'), 'utf8')));
const dicomweb = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, auth: orthanc.auth, timeoutMs: 30_000 });
const rest = new OrthancClient({ baseUrl: orthanc.baseUrl, auth: orthanc.auth, timeoutMs: 30_000 });
const work = mkdtempSync(path.join(tmpdir(), 'pacs-triage-bench-'));
say(`Orthanc ${orthanc.baseUrl}, FHIR ${fhir.url}, work dir ${work}`);

const BENCH_API_TOKEN = 'bench-api-token-0123456789abcdef';

function config(name: string, over: Record<string, unknown>): string {
  const file = path.join(work, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      pacs: { baseUrl: orthanc.baseUrl, auth: orthanc.auth },
      fhir: { baseUrl: fhir.url },
      store: { path: path.join(work, `${name}.sqlite`) },
      ingest: { pollIntervalS: 1 },
      ...over,
      // serve refuses to start without an API token.
      api: { token: BENCH_API_TOKEN, ...(over['api'] as Record<string, unknown> | undefined) },
    }),
  );
  return file;
}

const children = new Set<ChildProcess>();
// A bench that dies must not leave a `serve` behind, polling on and skewing the next run.
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
function startServe(cfg: string): ChildProcess {
  // BENCH_CPU_PROF=<dir>: each serve writes a V8 CPU profile there when it exits.
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, 'src/bin.mjs', 'serve', '--config', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.stderr?.on('data', () => undefined);
  return child;
}
function stageShares(storeFile: string): Record<string, number> {
  const db = new Database(storeFile, { readonly: true });
  const rows = db.prepare(`SELECT timings FROM jobs WHERE state = 'done' AND timings IS NOT NULL`).all() as { timings: string }[];
  db.close();
  const sums: Record<string, number> = {};
  for (const r of rows) for (const [k, v] of Object.entries(JSON.parse(r.timings) as Record<string, number>)) sums[k] = (sums[k] ?? 0) + v;
  const total = sums['total'] ?? Object.values(sums).reduce((a, b) => a + b, 0);
  delete sums['total'];
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, round((100 * v) / total)]));
}

// ---------------------------------------------------------------- end to end
const CONCURRENCY = Number(values.concurrency);
const STABLE_AGE_S = Number(values['stable-age']);
const BURST_OWN = values['burst-stable'] !== 'orthanc';
const e2eConfig = config('e2e', {
  api: { port: apiPort },
  ingest: { pollIntervalS: 1, modes: ['orthanc-changes'], ...(BURST_OWN ? { stableAgeS: STABLE_AGE_S } : {}) },
  worker: { concurrency: CONCURRENCY },
  model: { maxBatch: 8, maxWaitMs: 10 },
});
async function ready(port: number): Promise<void> {
  for (const end = Date.now() + 60_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) return;
  }
  throw new Error('serve did not come up in 60 s');
}
const watcher = new SrWatcher(rest);
await watcher.start();

/** One study at a time, each waited for: latency = SR seen in Orthanc − the study's STOW response. */
const stableDelay: number[] = [];
async function trickle(tag: string): Promise<number[]> {
  const latency: number[] = [];
  for (let i = 0; i < TRICKLE; i++) {
    const s = makeStudy(tag, i);
    await dicomweb.store(undefined, [s.part10]);
    const stored = performance.now();
    await watcher.waitFor([s.uid], 60_000);
    latency.push(watcher.arrived.get(s.uid)! - stored);
    const stable = watcher.stable.get(s.uid);
    if (stable !== undefined) stableDelay.push(stable - stored);
  }
  return latency;
}

/**
 * Waits until a serve with a fresh store has caught up with what Orthanc already holds (the
 * studies of the earlier phases, which its changes feed reads from the start): measured from
 * before, a phase would pay for the previous phases' studies.
 */
async function caughtUp(name: string): Promise<void> {
  const file = path.join(work, `${name}.sqlite`);
  for (const end = Date.now() + 10 * 60_000; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
    try {
      const db = new Database(file, { readonly: true });
      const cursor = db.prepare(`SELECT value FROM cursors WHERE name = 'orthanc.changes'`).get() as { value: string } | undefined;
      const open = (db.prepare(`SELECT count(*) AS n FROM jobs WHERE state IN ('queued', 'running')`).get() as { n: number }).n;
      db.close();
      if (cursor !== undefined && open === 0) return;
    } catch {
      /* store not created yet */
    }
  }
  throw new Error(`serve ${name} did not catch up in 10 minutes`);
}

/** A serve of its own for one trickle (with two modes running, whichever enqueued first would be measured). */
async function trickleIn(tag: string, cfg: string, polls: boolean): Promise<number[]> {
  const child = startServe(cfg);
  await ready(apiPort);
  if (polls) await caughtUp(tag);
  const latency = await trickle(tag);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return latency;
}

say(`webhook, per instance (ingest.stableAgeS ${STABLE_AGE_S}): ${TRICKLE} studies, one at a time`);
const webhookLatency = await trickleIn(
  'webhook',
  config('webhook', {
    api: { port: apiPort },
    ingest: { modes: ['webhook'], webhook: { secret: WEBHOOK_SECRET }, stableAgeS: STABLE_AGE_S },
    worker: { concurrency: CONCURRENCY },
  }),
  false,
);
say(`changes poll, Orthanc's StableStudy (StableAge 1): ${TRICKLE} studies, one at a time`);
const orthancStableLatency = await trickleIn(
  'orthanc-stable',
  config('orthanc-stable', { api: { port: apiPort }, ingest: { pollIntervalS: 1, modes: ['orthanc-changes'] }, worker: { concurrency: CONCURRENCY } }),
  true,
);
say(`changes poll, per instance (ingest.stableAgeS ${STABLE_AGE_S}): ${TRICKLE} studies, one at a time`);
const trickleLatency = await trickleIn(
  'trickle',
  config('trickle', { api: { port: apiPort }, ingest: { pollIntervalS: 1, modes: ['orthanc-changes'], stableAgeS: STABLE_AGE_S }, worker: { concurrency: CONCURRENCY } }),
  true,
);

const serve = startServe(e2eConfig);
await ready(apiPort);
await caughtUp('e2e');
say(`burst: ${N} studies at once`);
const burst = Array.from({ length: N }, (_, i) => makeStudy('burst', i));
const storedAt = new Map<string, number>();
watcher.intervalMs = 250;
// Where the two cores go during the burst: serve, Orthanc, and this process (the FHIR server,
// the STOWs and the SR watcher).
const cpuBefore = { serve: cpuMs(serve.pid!), orthanc: cpuMs(orthanc.pid!), bench: process.cpuUsage() };
const burstStart = performance.now();
for (let i = 0; i < burst.length; i += 10) {
  const chunk = burst.slice(i, i + 10);
  await Promise.all(chunk.map(async (s) => {
    await dicomweb.store(undefined, [s.part10]);
    storedAt.set(s.uid, performance.now());
  }));
}
await watcher.waitFor(burst.map((s) => s.uid), 30 * 60_000);
const burstEnd = Math.max(...burst.map((s) => watcher.arrived.get(s.uid)!));
const burstLatency = burst.map((s) => watcher.arrived.get(s.uid)! - storedAt.get(s.uid)!);
const benchCpu = process.cpuUsage(cpuBefore.bench);
const cpuPerStudyMs = {
  serve: round((cpuMs(serve.pid!) - cpuBefore.serve) / N),
  orthanc: round((cpuMs(orthanc.pid!) - cpuBefore.orthanc) / N),
  fhirServerAndBench: round((benchCpu.user + benchCpu.system) / 1000 / N),
  wallMs: round((burstEnd - burstStart) / N),
};
say(`  CPU per study during the burst: ${JSON.stringify(cpuPerStudyMs)}`);
const e2eRss = peakRssMb(serve.pid!);
serve.kill('SIGTERM');
await new Promise((r) => serve.once('exit', r));
watcher.stop();
const e2e = {
  studiesPerS: round((N / (burstEnd - burstStart)) * 1000, 2),
  concurrency: CONCURRENCY,
  stableAgeS: STABLE_AGE_S,
  burstIngest: BURST_OWN ? `orthanc-changes per instance, ingest.stableAgeS ${STABLE_AGE_S}` : "orthanc-changes, Orthanc's StableStudy",
  /** Changes feed polled every 1 s, ingest.stableAgeS. */
  trickle: { n: TRICKLE, p50Ms: round(quantile(trickleLatency, 0.5)), p95Ms: round(quantile(trickleLatency, 0.95)) },
  /** Webhook per instance (Lua OnStoredInstance), ingest.stableAgeS. */
  webhook: { n: TRICKLE, p50Ms: round(quantile(webhookLatency, 0.5)), p95Ms: round(quantile(webhookLatency, 0.95)) },
  /** Changes feed polled every 1 s, Orthanc's StableStudy (StableAge 1): the default ingest. */
  trickleOrthancStable: { n: TRICKLE, p50Ms: round(quantile(orthancStableLatency, 0.5)), p95Ms: round(quantile(orthancStableLatency, 0.95)) },
  /** STOW response → StableStudy on Orthanc's changes feed (seen within 50 ms): Orthanc's part. */
  orthancStable: { n: stableDelay.length, p50Ms: round(quantile(stableDelay, 0.5)), p95Ms: round(quantile(stableDelay, 0.95)) },
  burst: { n: N, p50Ms: round(quantile(burstLatency, 0.5)), p95Ms: round(quantile(burstLatency, 0.95)) },
  stageSharePct: stageShares(path.join(work, 'e2e.sqlite')),
  cpuPerStudyMs,
  peakRssMb: e2eRss,
};
say(JSON.stringify(e2e));
if (values['e2e-only']) {
  dicomweb.close();
  rest.close();
  await fhir.close();
  await orthanc.cleanup();
  process.exit(0);
}

// ---------------------------------------------------------------- ceilings, each alone
async function bestOf<T>(label: string, items: T[], concurrencies: number[], run: (item: T) => Promise<unknown>): Promise<{ perS: number; concurrency: number }> {
  let best = { perS: 0, concurrency: 0 };
  for (const c of concurrencies) {
    const queue = [...items];
    const start = performance.now();
    await Promise.all(Array.from({ length: c }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await run(item);
    }));
    const perS = round((items.length / (performance.now() - start)) * 1000, 1);
    say(`  ${label} concurrency ${c}: ${perS}/s`);
    if (perS > best.perS) best = { perS, concurrency: c };
  }
  return best;
}

const metas: InstanceMeta[] = [];
for (const s of burst) metas.push(...(await dicomweb.studyInstances(s.uid)).filter((m) => m.Modality !== 'SR'));
const retrieval = await bestOf('retrieval', metas, [1, 4, 8], (m) => dicomweb.retrieveInstance(m.StudyInstanceUID, m.SeriesInstanceUID, m.SOPInstanceUID));

const model = await TriageModel.load({ dir: 'models/cxr-triage', executionProviders: ['cpu'], maxBatch: 64, maxWaitMs: 0 }, log);
const mappings = loadMappings('mappings', model.manifest.findings.map((f) => f.code));
const clinical = new FhirServerSource(new FhirClient({ baseUrl: fhir.url, timeoutMs: 30_000 }));
const context = await bestOf('context', burst.map((s) => s.uid), [1, 4, 8], async (uid) => {
  const inst = (await dicomweb.studyInstances(uid)).filter((m) => m.Modality !== 'SR');
  await gatherClinicalContext(studyMetaOf(inst[0]!), clinical, mappings.fhir, model.manifest.text!);
});

const buffers = burst.map((s) => s.part10);
for (const b of buffers.slice(0, 5)) imageToTensor(readDicom(b), model.manifest.image); // warm-up (JIT)
let t = performance.now();
const tensors = buffers.map((b) => imageToTensor(readDicom(b), model.manifest.image).tensor);
const preprocessMs = (performance.now() - t) / buffers.length;
const preprocessing = { perS: round(1000 / preprocessMs, 1), msPerImage: round(preprocessMs, 2) };
say(`  preprocessing: ${preprocessing.msPerImage} ms/image`);

const text = model.encodeText('indication: chest pain | spo2 94 %');
const inference: Record<string, number> = {};
for (const batch of [1, 8, 16, 32]) {
  const items: ModelInput[] = Array.from({ length: batch }, (_, i) => ({ image: tensors[i % tensors.length]!, text }));
  await model.runBatch(items);
  const runs = Math.max(3, Math.ceil(64 / batch));
  t = performance.now();
  for (let r = 0; r < runs; r++) await model.runBatch(items);
  inference[`batch${batch}`] = round(((batch * runs) / (performance.now() - t)) * 1000, 1);
  say(`  inference batch ${batch}: ${inference[`batch${batch}`]}/s`);
}

const writeItems = metas.slice(0, Math.min(100, metas.length)).map((m, i) => {
  const findings = model.manifest.findings.map((f) => ({ code: f.code, display: f.display, probability: 0.3, threshold: f.threshold, positive: false }));
  const inferenceResult = { modelId: 'bench', modelVersion: String(i), deviceUid: model.manifest.deviceUid, sourceInstance: m, findings };
  const key = `write-ceiling ${i}`;
  const sr = encodeSr({ uidRoot: '2.25', resultKey: key, study: studyMetaOf(m), inference: inferenceResult, model: { name: 'bench', manufacturer: 'bench' }, mappings: mappings.findings, producedAt: new Date().toISOString() });
  const bundle = encodeFhirResults({
    resultKey: key, patientRef: 'Patient/bench', studyInstanceUID: m.StudyInstanceUID, inference: inferenceResult,
    model: { name: 'bench', manufacturer: 'bench' }, service: { name: 'bench', version: '0' }, mappings: mappings.findings,
    producedAt: new Date().toISOString(), fhirResources: [], srSopInstanceUID: sr.sopInstanceUID,
  });
  return { study: m.StudyInstanceUID, part10: sr.part10, bundle };
});
const fhirWriter = new FhirClient({ baseUrl: fhir.url, timeoutMs: 30_000 });
const writeBack = await bestOf('write-back', writeItems, [1, 4, 8], async (w) => {
  await dicomweb.store(w.study, [w.part10]);
  await fhirWriter.transaction(w.bundle as never);
});

// ---------------------------------------------------------------- sequential pipeline
say('sequential: run-once, concurrency 1, batch 1, fresh store');
const seqConfig = config('sequential', { worker: { concurrency: 1 }, model: { maxBatch: 1, maxWaitMs: 0 } });
t = performance.now();
// Exit 1 only says some study failed (counted below from the store), not that the run broke.
// Not spawnSync: the FHIR server lives in this process and must keep answering.
const seqStatus = await new Promise<number | null>((resolve) => {
  const child = spawn(process.execPath, ['src/bin.mjs', 'run-once', '--config', seqConfig], { stdio: 'ignore' });
  child.once('exit', resolve);
});
if (seqStatus !== 0) say(`  run-once exited ${seqStatus} (some study failed; see the count below)`);
const seqDb = new Database(path.join(work, 'sequential.sqlite'), { readonly: true });
const seqWallMs = performance.now() - t;
// From the first enqueue to the last job's end, as the burst is timed from the first STOW to
// the last SR with serve already running: the process start and model load are not the pipeline.
const seqSpan = seqDb.prepare(`SELECT count(*) AS n, MAX(updated_at) - MIN(enqueued_at) AS ms FROM jobs WHERE state = 'done'`).get() as { n: number; ms: number };
seqDb.close();
const seqDone = seqSpan.n;
const sequential = {
  studies: seqDone,
  studiesPerS: round((seqDone / seqSpan.ms) * 1000, 2),
  /** The same, counting the process start and model load (~2-3 s). */
  studiesPerSWithStart: round((seqDone / seqWallMs) * 1000, 2),
};
say(`  ${JSON.stringify(sequential)}`);

// ---------------------------------------------------------------- preprocessing against Python
const pyDir = path.join(work, 'py');
mkdirSync(pyDir);
buffers.slice(0, 100).forEach((b, i) => writeFileSync(path.join(pyDir, `${i}.dcm`), b));
// Node in a process of its own too, on the same files: the same conditions on both sides.
const nodeMs = Number(
  execFileSync(process.execPath, ['--import', 'tsx', 'test/bench/preprocess-files.ts', pyDir, 'models/cxr-triage/manifest.json'], { encoding: 'utf8' }).trim(),
);
let python: { msPerImage: number; ratio: number } | { skipped: string };
try {
  const script = `
import sys, time, glob, numpy as np, pydicom
from PIL import Image
files = sorted(glob.glob(sys.argv[1] + '/*.dcm'))
def once(f):
    ds = pydicom.dcmread(f)
    a = ds.pixel_array.astype(np.float32) * float(getattr(ds, 'RescaleSlope', 1)) + float(getattr(ds, 'RescaleIntercept', 0))
    lo, hi = np.percentile(a, [0.5, 99.5]); c, w = (lo + hi) / 2, max(hi - lo, 1)
    y = np.clip((a - (c - 0.5)) / (w - 1) + 0.5, 0, 1)
    if ds.PhotometricInterpretation == 'MONOCHROME1': y = 1 - y
    y = np.asarray(Image.fromarray(y).resize((224, 224), Image.BILINEAR), dtype=np.float32)
    return (y - 0.5) / 0.25
passes = []
for _ in range(5):
    t = time.perf_counter()
    for f in files: once(f)
    passes.append((time.perf_counter() - t) * 1000 / len(files))
print(min(passes))
`;
  // Best of 5 passes on each side, read from the same files on disk: one pass is at the mercy
  // of whatever else the two cores are doing at that moment.
  const ms = Number(execFileSync('python3', ['-c', script, pyDir], { encoding: 'utf8' }).trim());
  const pyFiles = readdirSync(pyDir);
  python = { msPerImage: round(ms, 2), ratio: round(ms / nodeMs, 2) };
  say(`  preprocessing, best of 5 passes over ${pyFiles.length} files: Node ${round(nodeMs, 2)} ms, Python ${round(ms, 2)} ms per image`);
} catch (err) {
  python = { skipped: `python3 with pydicom, numpy and Pillow not usable: ${(err as Error).message.split('\n')[0]}` };
}
await model.close();

// ---------------------------------------------------------------- backlog (optional)
let backlog: unknown;
if (BACKLOG > 0) {
  say(`backlog: ${BACKLOG} studies queued, RSS sampled`);
  for (let i = 0; i < BACKLOG; i += 50) {
    await dicomweb.store(undefined, Array.from({ length: Math.min(50, BACKLOG - i) }, (_, j) => makeStudy('backlog', i + j).part10));
  }
  const [port] = await freePorts(1);
  // A fresh store reading the changes feed from the start: every study in Orthanc is a job.
  const child = startServe(config('backlog', { api: { port }, ingest: { pollIntervalS: 1, modes: ['orthanc-changes'] }, worker: { concurrency: CONCURRENCY } }));
  const samples: { done: number; rssMb: number }[] = [];
  const dbFile = path.join(work, 'backlog.sqlite');
  const target = BACKLOG + N + 3 * TRICKLE;
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    const rssMb = round(Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
    // Studies with a result (or ended without one), not jobs in state done: Orthanc repeats
    // StableStudy when our SR arrives, so every done job is queued once more for an
    // "unchanged" check, and the done count never reaches the total while that wave runs.
    let done = 0;
    try {
      const db = new Database(dbFile, { readonly: true });
      done = (
        db
          .prepare(
            `SELECT count(*) AS n FROM jobs j WHERE j.state IN ('skipped','failed') OR EXISTS (SELECT 1 FROM results r WHERE r.study_uid = j.study_uid)`,
          )
          .get() as { n: number }
      ).n;
      db.close();
    } catch {
      /* store not created yet */
    }
    samples.push({ done, rssMb });
    if (samples.length % 15 === 0) say(`  backlog: ${done} of ${target} studies, serve RSS ${rssMb} MB`);
    if (done >= target) break;
  }
  child.kill('SIGTERM');
  const after = samples.filter((s) => s.done >= 500);
  const first = after[0]?.rssMb;
  const last = samples.at(-1)?.rssMb;
  backlog = {
    jobs: target,
    rssAtWarmupMb: first,
    rssEndMb: last,
    growthPct: first && last ? round((100 * (last - first)) / first) : undefined,
    rssAfterWarmupMb: after.length ? { min: Math.min(...after.map((s) => s.rssMb)), max: Math.max(...after.map((s) => s.rssMb)) } : undefined,
    samples,
  };
}

const nodePreprocessMs = round(nodeMs, 2);
const backlogRss = backlog as { rssAfterWarmupMb?: { min: number; max: number }; samples: { rssMb: number }[] } | undefined;
const report = {
  // The shape issue 8 asks for (throughputs in studies/s); details follow.
  studies: N,
  throughput: { e2e: e2e.studiesPerS, sequential: sequential.studiesPerS },
  ceilings: {
    retrieval: retrieval.perS,
    context: context.perS,
    preprocess: preprocessing.perS,
    inference: Math.max(...Object.values(inference)),
    writeback: writeBack.perS,
  },
  latencyMs: {
    webhook: { p50: e2e.webhook.p50Ms, p95: e2e.webhook.p95Ms },
    poll: { p50: e2e.trickle.p50Ms, p95: e2e.trickle.p95Ms },
  },
  preprocessMsPerImage: { node: nodePreprocessMs, python: 'ratio' in python ? python.msPerImage : null },
  rssMb: {
    afterWarmup: (backlog as { rssAtWarmupMb?: number } | undefined)?.rssAtWarmupMb ?? null,
    end: backlogRss?.samples.at(-1)?.rssMb ?? e2e.peakRssMb,
  },
  date: new Date().toISOString(),
  machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  n: N,
  endToEnd: e2e,
  ceilingDetails: { retrievalPerS: retrieval, contextPerS: context, preprocessing, inferencePerS: inference, writeBackPerS: writeBack },
  sequential,
  preprocessingVsPython: python,
  ...(backlog ? { backlog } : {}),
};
mkdirSync(values.out, { recursive: true });
const outFile = path.join(values.out, `pipeline-${report.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(outFile, JSON.stringify(report, null, 2));

const rows: [string, string][] = [
  ['end to end (burst)', `${e2e.studiesPerS} studies/s; latency p50 ${e2e.burst.p50Ms} ms, p95 ${e2e.burst.p95Ms} ms (${e2e.burstIngest})`],
  ['latency, changes poll', `p50 ${e2e.trickle.p50Ms} ms, p95 ${e2e.trickle.p95Ms} ms (one at a time; stableAgeS ${STABLE_AGE_S}, poll 1 s)`],
  ['latency, webhook', `p50 ${e2e.webhook.p50Ms} ms, p95 ${e2e.webhook.p95Ms} ms (one at a time, per instance; stableAgeS ${STABLE_AGE_S})`],
  ['latency, poll on StableStudy', `p50 ${e2e.trickleOrthancStable.p50Ms} ms, p95 ${e2e.trickleOrthancStable.p95Ms} ms (Orthanc's StableAge 1, poll 1 s)`],
  ['Orthanc: STOW → StableStudy', `p50 ${e2e.orthancStable.p50Ms} ms, p95 ${e2e.orthancStable.p95Ms} ms (the floor under StableStudy ingest)`],
  ['retrieval only (WADO-RS)', `${retrieval.perS}/s at concurrency ${retrieval.concurrency}`],
  ['context only (QIDO + FHIR)', `${context.perS}/s at concurrency ${context.concurrency}`],
  ['preprocessing only', `${preprocessing.perS}/s (${preprocessing.msPerImage} ms/image, one thread)`],
  ['inference only', Object.entries(inference).map(([k, v]) => `${k} ${v}/s`).join(', ')],
  ['write-back only (STOW + FHIR tx)', `${writeBack.perS}/s at concurrency ${writeBack.concurrency}`],
  ['sequential pipeline', `${sequential.studiesPerS} studies/s`],
  ['preprocessing vs Python', 'ratio' in python ? `Python ${python.msPerImage} ms/image, ${python.ratio}× Node's time` : python.skipped],
  ['stage share (e2e)', Object.entries(e2e.stageSharePct).map(([k, v]) => `${k} ${v}%`).join(', ')],
  ['peak RSS (serve)', `${e2e.peakRssMb} MB`],
];
console.log(rows.map(([k, v]) => `${k.padEnd(34)} ${v}`).join('\n'));
console.log(`\nJSON: ${outFile}`);

dicomweb.close();
rest.close();
await fhir.close();
await orthanc.cleanup();
process.exit(0);
