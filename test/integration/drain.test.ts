/**
 * `serve` on SIGTERM, as a child process against the real Orthanc and the sandbox FHIR server:
 *  - the job in flight (held at its FHIR write by a delayed answer) finishes — its SR and its
 *    RiskAssessment written exactly once — the process exits 0 within worker.drainTimeoutMs, and
 *    the next study, queued behind it, is not started;
 *  - a job that cannot finish within drainTimeoutMs is left behind, not lost: the process exits 0
 *    at the deadline, the job keeps its lease (nothing written to FHIR), and the next run, once the
 *    lease has expired, finishes it and the study left queued before: one SR + one RiskAssessment each.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DicomWebClient } from '../../src/adapters/dicomweb/client.ts';
import type { OrthancClient } from '../../src/adapters/orthanc/client.ts';
import { readPart10, writePart10 } from '../../src/dicom/part10.ts';
import type { RunningFhirServer } from '../../src/sandbox/fhir-server.ts';
import { freePorts } from '../../src/sandbox/orthanc.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import type { Job } from '../../src/domain/records.ts';
import { cli } from '../harness/cli.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { startRig, type Rig } from '../harness/rig.ts';

const DEMO = 'test/fixtures/demo';
const ROOT = '1.2.826.0.1.3680043.10.996';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function poll<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.skipIf(!requireOrthanc())('serve drains on SIGTERM', () => {
  let rig: Rig;
  let fhir: RunningFhirServer;
  let dicomweb: DicomWebClient;
  let rest: OrthancClient;
  let dir: string;
  let storePath: string;
  const demo = readdirSync(path.join(DEMO, 'dicom')).filter((f) => f.endsWith('.dcm')).sort().map((f) => path.join(DEMO, 'dicom', f));
  const study = (n: number): { uid: string; part10: Uint8Array } => {
    const ds = readPart10(readFileSync(demo[n % demo.length]!));
    ds['StudyInstanceUID'] = `${ROOT}.${n}`;
    ds['SeriesInstanceUID'] = `${ROOT}.${n}.1`;
    ds['SOPInstanceUID'] = `${ROOT}.${n}.1.1`;
    return { uid: `${ROOT}.${n}`, part10: writePart10(ds) };
  };

  async function jobs(): Promise<Job[]> {
    const store = openSqliteStore(storePath);
    try {
      return await store.jobs();
    } finally {
      await store.close();
    }
  }
  const job = async (uid: string): Promise<Job | undefined> => (await jobs()).find((j) => j.studyInstanceUID === uid);
  async function srCount(uid: string): Promise<number> {
    return (await dicomweb.studyInstances(uid)).filter((i) => i.Modality === 'SR').length;
  }
  async function riskCount(uid: string): Promise<number> {
    const srs = (await dicomweb.studyInstances(uid)).filter((i) => i.Modality === 'SR').map((i) => `urn:oid:${i.SOPInstanceUID}`);
    const bundle = (await (await fetch(`${fhir.url}/RiskAssessment?_count=1000`)).json()) as { entry?: { resource: { identifier?: { value: string }[] } }[] };
    return (bundle.entry ?? []).filter((e) => (e.resource.identifier ?? []).some((i) => srs.includes(i.value))).length;
  }
  async function arrive(studies: { uid: string; part10: Uint8Array }[]): Promise<void> {
    const since = (await rest.changes(0, 5000)).last;
    await dicomweb.store(undefined, studies.map((s) => s.part10));
    const ids = await Promise.all(studies.map((s) => poll(`study ${s.uid}`, () => rest.findStudy(s.uid))));
    await poll('stable studies', async () => {
      const stable = new Set((await rest.changes(since, 5000)).changes.filter((c) => c.changeType === 'StableStudy').map((c) => c.orthancId));
      return ids.every((id) => stable.has(id)) ? true : undefined;
    });
  }
  /** Starts `serve` with this worker config; resolves with the child and its exit (code, signal, when). */
  async function serve(worker: Record<string, number>): Promise<{ kill: () => number; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>; output: () => string }> {
    const [port] = await freePorts(1);
    const configFile = rig.config(`serve-${port}.json`, {
      pacs: { timeoutMs: 10_000 },
      fhir: { timeoutMs: 30_000 },
      api: { port },
      ingest: { pollIntervalS: 1 },
      worker: { concurrency: 1, retryBaseDelayMs: 100, retryMaxDelayMs: 400, ...worker },
      corrections: { deletedSweep: false },
    });
    let output = '';
    const child = spawn(process.execPath, ['src/bin.mjs', 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
    );
    return {
      kill: () => {
        child.kill('SIGTERM');
        return Date.now();
      },
      exited,
      output: () => output,
    };
  }

  beforeAll(async () => {
    rig = await startRig('drain');
    ({ fhir, dicomweb, rest, dir, storePath } = rig);
  }, 60_000);

  afterAll(async () => {
    fhir?.faults.reset();
    await rig?.close();
  });

  let leftQueued: string;

  it('the job in flight finishes (one SR, one RiskAssessment), the next one is not started, exit 0 within drainTimeoutMs', async () => {
    const [a, b] = [study(1), study(2)];
    await arrive([a, b]);
    // The first FHIR write is held 2.5 s: the job is in flight at write-back when SIGTERM comes.
    fhir.faults.delayNext(1, 2_500, (req) => req.method === 'POST');
    const drainTimeoutMs = 15_000;
    const proc = await serve({ drainTimeoutMs, leaseMs: 60_000 });
    const first = await poll('a first SR from serve', async () => ((await srCount(a.uid)) > 0 ? a : (await srCount(b.uid)) > 0 ? b : undefined));
    const second = first === a ? b : a;
    const sentAt = proc.kill();
    const exit = await proc.exited;
    expect(exit, proc.output().slice(-2_000)).toMatchObject({ code: 0, signal: null });
    expect(exit.at - sentAt).toBeLessThan(drainTimeoutMs);
    expect(exit.at - sentAt).toBeGreaterThan(500); // it waited for the held FHIR write
    expect(fhir.faults.pending).toBe(0);
    expect([await srCount(first.uid), await riskCount(first.uid)]).toEqual([1, 1]);
    expect((await job(first.uid))?.state).toBe('done');
    // Nothing was started after SIGTERM: the second study is still queued, untried, unwritten.
    expect(await job(second.uid)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await srCount(second.uid)).toBe(0);
    expect(proc.output()).toContain('"event":"service.drained"');
    leftQueued = second.uid;
  }, 120_000);

  it('a job that cannot finish in time is left leased, not lost; exit 0 at the deadline; the next run finishes it and the queued one, once each', async () => {
    const c = study(3);
    await arrive([c]);
    // The FHIR write is held far past the drain timeout.
    fhir.faults.delayNext(1, 60_000, (req) => req.method === 'POST');
    const drainTimeoutMs = 1_500;
    const leaseMs = 4_000;
    const proc = await serve({ drainTimeoutMs, leaseMs });
    const inFlight = await poll('an SR written by the second serve', async () => {
      for (const uid of [c.uid, leftQueued]) if ((await srCount(uid)) > 0) return uid;
      return undefined;
    });
    const sentAt = proc.kill();
    const exit = await proc.exited;
    expect(exit, proc.output().slice(-2_000)).toMatchObject({ code: 0, signal: null });
    expect(exit.at - sentAt).toBeGreaterThanOrEqual(drainTimeoutMs - 100);
    expect(exit.at - sentAt).toBeLessThan(drainTimeoutMs + 5_000);
    expect(proc.output()).toContain('"event":"service.drain.timeout"');
    fhir.faults.reset();
    // Left mid-flight: running under the dead process's lease (not failed, not done), nothing on FHIR.
    const left = (await job(inFlight))!;
    expect(left.state).toBe('running');
    expect(left.leaseUntil).toBeGreaterThan(sentAt);
    expect(await riskCount(inFlight)).toBe(0);
    const other = [c.uid, leftQueued].find((u) => u !== inFlight)!;
    expect((await job(other))?.state).toBe('queued');
    // Once the lease has expired, any worker takes it again; only the missing writes are done.
    await sleep(Math.max(0, (left.leaseUntil ?? 0) - Date.now() + 50));
    const run = await cli(['run-once', '--config', path.join(dir, readdirSync(dir).filter((f) => f.startsWith('serve-')).sort()[0]!), '--json']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    for (const uid of [c.uid, leftQueued]) {
      expect([await srCount(uid), await riskCount(uid)], uid).toEqual([1, 1]);
      expect((await job(uid))?.state).toBe('done');
    }
  }, 120_000);
});
