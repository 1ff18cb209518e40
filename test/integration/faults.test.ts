/**
 * Fault injection against the real servers (Orthanc + the sandbox FHIR server). Every case ends
 * by counting on the servers themselves: each study has exactly one SR in Orthanc and one
 * RiskAssessment on the FHIR server, or none and a failed job with its reason.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli.ts';
import type { DicomWebClient } from '../../src/adapters/dicomweb/client.ts';
import type { OrthancClient } from '../../src/adapters/orthanc/client.ts';
import { readPart10, writePart10 } from '../../src/dicom/part10.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import type { Job } from '../../src/domain/records.ts';
import type { RunningFhirServer } from '../../src/sandbox/fhir-server.ts';
import type { OrthancServer } from '../../src/sandbox/orthanc.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { startRig, type Rig } from '../harness/rig.ts';

const DEMO = 'test/fixtures/demo';
const ROOT = '1.2.826.0.1.3680043.10.998';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (s) => (stdout += s + '\n'), stderr: (s) => (stderr += s + '\n') });
  return { code, stdout, stderr };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

describe.skipIf(!requireOrthanc())('faults: nothing lost, nothing written twice', () => {
  let rig: Rig;
  let orthanc: OrthancServer;
  let fhir: RunningFhirServer;
  let dicomweb: DicomWebClient;
  let rest: OrthancClient;
  let configFile: string;
  let storePath: string;
  const demoFiles = readdirSync(path.join(DEMO, 'dicom')).filter((f) => f.endsWith('.dcm')).sort().map((f) => path.join(DEMO, 'dicom', f));
  let next = 0;

  /** A demo study under new UIDs (same patient and accession, so the same FHIR context). */
  function copyOf(demo: number, edit?: (ds: Record<string, unknown>) => void): { uid: string; part10: Uint8Array } {
    const n = ++next;
    const ds = readPart10(readFileSync(demoFiles[demo % demoFiles.length]!));
    ds['StudyInstanceUID'] = `${ROOT}.${n}`;
    ds['SeriesInstanceUID'] = `${ROOT}.${n}.1`;
    ds['SOPInstanceUID'] = `${ROOT}.${n}.1.1`;
    edit?.(ds);
    return { uid: `${ROOT}.${n}`, part10: writePart10(ds) };
  }
  /** STOWs the studies and waits until Orthanc calls each of them stable (not counting older studies stable again). */
  async function arrive(studies: { uid: string; part10: Uint8Array }[]): Promise<void> {
    const since = (await rest.changes(0, 5000)).last;
    await dicomweb.store(undefined, studies.map((s) => s.part10));
    const ids = await Promise.all(studies.map(async (s) => waitFor(`study ${s.uid} in Orthanc`, () => rest.findStudy(s.uid))));
    await waitFor('stable studies', async () => {
      const stable = new Set((await rest.changes(since, 5000)).changes.filter((c) => c.changeType === 'StableStudy').map((c) => c.orthancId));
      return ids.every((id) => stable.has(id)) ? true : undefined;
    });
  }
  async function jobs(): Promise<Job[]> {
    const store = openSqliteStore(storePath);
    try {
      return await store.jobs();
    } finally {
      await store.close();
    }
  }
  /** run-once until no job is queued or running (waiting out backoffs and leases). */
  async function settle(maxRuns = 20): Promise<number> {
    for (let run = 1; run <= maxRuns; run++) {
      const r = await cli(['run-once', '--config', configFile, '--json']);
      if (process.env['FAULTS_DEBUG']) console.log(r.code, r.stdout.slice(0, 2000), r.stderr.slice(0, 2000));
      const pending = (await jobs()).filter((j) => j.state === 'queued' || j.state === 'running');
      if (pending.length === 0) return run;
      const due = Math.min(...pending.map((j) => (j.state === 'running' ? (j.leaseUntil ?? 0) : j.nextAttemptAt)));
      await sleep(Math.min(3_000, Math.max(50, due - Date.now() + 30)));
    }
    throw new Error(`jobs still pending after ${maxRuns} runs: ${JSON.stringify((await jobs()).filter((j) => j.state === 'queued' || j.state === 'running'))}`);
  }
  async function riskAssessments(): Promise<{ identifier?: { value: string }[] }[]> {
    const res = await fetch(`${fhir.url}/RiskAssessment?_count=1000`);
    const bundle = (await res.json()) as { entry?: { resource: { identifier?: { value: string }[] } }[] };
    return (bundle.entry ?? []).map((e) => e.resource);
  }
  /** Per study: SRs in Orthanc and RiskAssessments naming them on the FHIR server. */
  async function count(uids: string[]): Promise<Record<string, { srs: number; risks: number; state: string | undefined }>> {
    const risks = await riskAssessments();
    const all = await jobs();
    const out: Record<string, { srs: number; risks: number; state: string | undefined }> = {};
    for (const uid of uids) {
      const srs = (await dicomweb.studyInstances(uid)).filter((i) => i.Modality === 'SR');
      const named = risks.filter((r) => srs.some((sr) => (r.identifier ?? []).some((i) => i.value === `urn:oid:${sr.SOPInstanceUID}`)));
      out[uid] = { srs: srs.length, risks: named.length, state: all.find((j) => j.studyInstanceUID === uid)?.state };
    }
    return out;
  }
  /** The failed jobs among these studies, with their reasons (printed when a count is off). */
  const failures = async (uids: string[]): Promise<string[]> => (await jobs()).filter((j) => uids.includes(j.studyInstanceUID) && j.state === 'failed').map((j) => `${j.studyInstanceUID} ${j.errorCode}: ${j.reason}`);
  const once = (uids: string[]) => Object.fromEntries(uids.map((u) => [u, { srs: 1, risks: 1, state: 'done' }]));

  beforeAll(async () => {
    rig = await startRig('faults', { stopTimeoutMs: 10_000 });
    ({ orthanc, fhir, dicomweb, rest, storePath } = rig);
    configFile = rig.config('config.json', {
      pacs: { timeoutMs: 3_000 },
      fhir: { timeoutMs: 1_000 },
      worker: { concurrency: 2, maxAttempts: 8, retryBaseDelayMs: 100, retryMaxDelayMs: 400, leaseMs: 1_500 },
      breaker: { failureThreshold: 3, openMs: 300 },
    });
  }, 60_000);

  afterAll(async () => {
    await rig?.close();
  });

  it('FHIR 500 and 429 bursts (Retry-After 1 s): retried, then each study written exactly once', async () => {
    const studies = [copyOf(0), copyOf(1)];
    await arrive(studies);
    fhir.faults.failNext(4, 500).failNext(3, 429, { retryAfterSeconds: 1 });
    const started = Date.now();
    await settle();
    expect(fhir.faults.pending).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000); // Retry-After was honoured
    const uids = studies.map((s) => s.uid);
    expect(await failures(uids)).toEqual([]);
    expect(await count(uids)).toEqual(once(uids));
  });

  it('FHIR transaction fails after the SR is stored: SR and priority are written, the FHIR write waits, the model does not run again', async () => {
    const study = copyOf(2);
    await arrive([study]);
    fhir.faults.failNext(1, 503, { match: (req) => req.method === 'POST' });
    const first = JSON.parse((await cli(['run-once', '--config', configFile, '--json'])).stdout) as { failed: number };
    expect(first.failed).toBe(1);
    const store = openSqliteStore(storePath);
    expect(await store.get(study.uid)).toMatchObject({ state: 'queued', errorCode: 'UPSTREAM_UNAVAILABLE', reason: expect.stringMatching(/^waiting for fhir: .*503/) });
    expect((await store.latestResult(study.uid))?.written).toEqual({ pacs: true, metadata: true, fhir: false });
    await store.close();
    expect(await count([study.uid])).toEqual({ [study.uid]: { srs: 1, risks: 0, state: 'queued' } });
    await settle();
    const after = openSqliteStore(storePath);
    const audit = (await after.auditLog({ studyInstanceUID: study.uid })).map((a) => `${a.target} ${a.action} ${a.outcome}`);
    const timings = (await after.get(study.uid))?.timings ?? {};
    await after.close();
    expect(audit.filter((a) => a === 'pacs store-sr ok')).toHaveLength(1);
    expect(audit).toContain('fhir transaction error');
    expect(timings['infer']).toBeUndefined(); // the run that finished it wrote the stored result
    expect(await count([study.uid])).toEqual(once([study.uid]));
  });

  it('FHIR hangs: the call times out, is retried, and the study is written once', async () => {
    const study = copyOf(3);
    await arrive([study]);
    fhir.faults.hangNext(1);
    await settle();
    fhir.faults.reset();
    expect(await count([study.uid])).toEqual(once([study.uid]));
  });

  it('malformed FHIR JSON is an upstream failure, retried; then written once', async () => {
    const study = copyOf(0);
    await arrive([study]);
    fhir.faults.failNext(2, 200, { body: '{"resourceType": "Bundle", "entry": [{' });
    await settle();
    expect(fhir.faults.pending).toBe(0);
    expect(await failures([study.uid])).toEqual([]);
    expect(await count([study.uid])).toEqual(once([study.uid]));
  });

  it('Orthanc stopped mid-run and restarted: every study written exactly once', async () => {
    const studies = [copyOf(0), copyOf(1), copyOf(2)];
    await arrive(studies);
    fhir.faults.delayNext(1000, 250); // slow enough that the run is still going when Orthanc stops
    const run = cli(['run-once', '--config', configFile, '--json']);
    await waitFor('a first SR', async () => ((await Promise.all(studies.map((s) => dicomweb.studyInstances(s.uid)))).flat().some((i) => i.Modality === 'SR') ? true : undefined));
    await orthanc.stop();
    await run;
    fhir.faults.reset();
    await orthanc.start();
    await settle();
    const uids = studies.map((s) => s.uid);
    expect(await count(uids)).toEqual(once(uids));
  }, 60_000);

  it('killed with SIGKILL during write-back, then run again: every study written exactly once', async () => {
    const studies = [copyOf(1), copyOf(2), copyOf(3)];
    await arrive(studies);
    fhir.faults.delayNext(1000, 300, (req) => req.method === 'POST'); // write-back in flight for a while
    const child = spawn(process.execPath, ['src/bin.mjs', 'run-once', '--config', configFile], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await waitFor(
      'a first SR from the child',
      async () => ((await Promise.all(studies.map((s) => dicomweb.studyInstances(s.uid)))).flat().some((i) => i.Modality === 'SR') ? true : undefined),
      30_000,
      50,
    );
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    fhir.faults.reset();
    expect((await jobs()).some((j) => j.state === 'running')).toBe(true); // left mid-flight, leased
    await settle();
    const uids = studies.map((s) => s.uid);
    expect(await count(uids)).toEqual(once(uids));
  }, 60_000);

  it('truncated and corrupt DICOM fail at once with their reasons; nothing is written for them', async () => {
    const truncated = copyOf(0, (ds) => {
      const px = ds['PixelData'] as ArrayBuffer[] | ArrayBuffer;
      const buf = Array.isArray(px) ? px[0]! : px;
      ds['PixelData'] = [buf.slice(0, Math.floor(buf.byteLength / 3))];
    });
    const corrupt = copyOf(1, (ds) => {
      ds['BitsAllocated'] = 7;
      ds['Rows'] = 0;
    });
    await arrive([truncated, corrupt]);
    await settle();
    const failed = (await jobs()).filter((j) => j.studyInstanceUID === truncated.uid || j.studyInstanceUID === corrupt.uid);
    expect(failed.map((j) => [j.state, j.attempts])).toEqual([
      ['failed', 1],
      ['failed', 1],
    ]);
    for (const j of failed) expect(j.errorCode, j.reason).toMatch(/^DICOM_/);
    expect(await count([truncated.uid, corrupt.uid])).toEqual({
      [truncated.uid]: { srs: 0, risks: 0, state: 'failed' },
      [corrupt.uid]: { srs: 0, risks: 0, state: 'failed' },
    });
  });

  it('an oversized report text is cut to the model’s length; the study is written once', async () => {
    const study = copyOf(2);
    const res = await fetch(`${fhir.url}/DiagnosticReport`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'DiagnosticReport',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '18748-4', display: 'Diagnostic imaging study' }] },
        subject: { reference: 'Patient/pat-demo03' },
        effectiveDateTime: new Date().toISOString(),
        conclusion: 'Opacity in the right lower lobe. '.repeat(15_000),
      }),
    });
    expect(res.status).toBe(201);
    await arrive([study]);
    await settle();
    expect(await count([study.uid])).toEqual(once([study.uid]));
  });
});
