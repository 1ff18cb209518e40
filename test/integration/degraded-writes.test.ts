/**
 * Against a real Orthanc set up from its defaults — no "UserMetadata" declaration — the optional
 * write of the triage priority is refused, and the result stands: `run-once` ends every selectable
 * study done with a warning that names the fix, one SR and one RiskAssessment each, and a second
 * run writes nothing (counted on the servers, as in faults.test.ts). The warning shows in `jobs`,
 * and in a running `serve`: /api/jobs, /api/studies/{uid} and /readyz.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli.ts';
import { PRIORITY_METADATA } from '../../src/adapters/orthanc/client.ts';
import { readPart10 } from '../../src/dicom/part10.ts';
import type { Job } from '../../src/domain/records.ts';
import { freePorts } from '../../src/sandbox/orthanc.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { RIG_API_TOKEN, startRig, type Rig } from '../harness/rig.ts';

const DEMO = 'test/fixtures/demo/dicom';
const FIX = 'declare "UserMetadata": { "PacsTriagePriority": 4100, "PacsTriageResult": 4101 } in orthanc.json';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (s) => (stdout += s + '\n'), stderr: (s) => (stderr += s + '\n') });
  return { code, stdout, stderr };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe.skipIf(!requireOrthanc())('an Orthanc without UserMetadata: the optional write degrades, the result stands', () => {
  let rig: Rig;
  let configFile: string;
  let uids: string[] = [];
  /** Orthanc's last change once the uploaded studies were stable. */
  let stableAt = 0;

  async function jobs(): Promise<Job[]> {
    const store = openSqliteStore(rig.storePath);
    try {
      return await store.jobs();
    } finally {
      await store.close();
    }
  }
  /** Per study on the servers: our SRs in Orthanc, the RiskAssessments naming them, the priority metadata. */
  async function onServers(): Promise<Record<string, { srs: number; risks: number; priority: string | undefined }>> {
    const res = await fetch(`${rig.fhir.url}/RiskAssessment?_count=1000`);
    const risks = ((await res.json()) as { entry?: { resource: { identifier?: { value: string }[] } }[] }).entry ?? [];
    const out: Record<string, { srs: number; risks: number; priority: string | undefined }> = {};
    for (const uid of uids) {
      const srs = (await rig.dicomweb.studyInstances(uid)).filter((i) => i.Modality === 'SR');
      const named = risks.filter((r) => srs.some((sr) => (r.resource.identifier ?? []).some((i) => i.value === `urn:oid:${sr.SOPInstanceUID}`)));
      const id = await rig.rest.findStudy(uid);
      out[uid] = { srs: srs.length, risks: named.length, priority: id === undefined ? undefined : await rig.rest.studyMetadata(id, PRIORITY_METADATA) };
    }
    return out;
  }

  beforeAll(async () => {
    // Orthanc's own default: no user metadata declared.
    rig = await startRig('degraded', { extraConfig: { UserMetadata: {} } });
    configFile = rig.config('config.json', { corrections: { deletedSweep: false } });
    const files = readdirSync(DEMO).filter((f) => f.endsWith('.dcm')).sort().map((f) => readFileSync(path.join(DEMO, f)));
    const studies = [...new Set(files.map((f) => readPart10(f)['StudyInstanceUID'] as string))];
    const since = (await rig.rest.changes(0, 5000)).last;
    await rig.dicomweb.store(undefined, files);
    const ids = await Promise.all(studies.map((uid) => waitFor(`study ${uid} in Orthanc`, () => rig.rest.findStudy(uid))));
    await waitFor('stable studies', async () => {
      const stable = new Set((await rig.rest.changes(since, 5000)).changes.filter((c) => c.changeType === 'StableStudy').map((c) => c.orthancId));
      return ids.every((id) => stable.has(id)) ? true : undefined;
    });
    stableAt = (await rig.rest.changes(since, 5000)).last;
  }, 120_000);

  afterAll(async () => {
    await rig?.close();
  });

  it('run-once: every selectable study done with the warning, one SR and one RiskAssessment each, no metadata', async () => {
    const first = await cli(['run-once', '--config', configFile]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const all = await jobs();
    const done = all.filter((j) => j.state === 'done');
    uids = done.map((j) => j.studyInstanceUID);
    expect(all.filter((j) => j.state === 'failed')).toEqual([]);
    expect(done.length).toBeGreaterThan(0);
    expect(first.stdout).toContain(`done ${done.length}, skipped ${all.length - done.length}, failed 0`);
    expect(first.stdout).toMatch(new RegExp(`warning \\(${done.length} stud(y|ies), pacs-metadata-undeclared\\): .*; fix: ${FIX.replace(/[{}()]/g, '\\$&')}`));
    for (const j of done) expect(j.reason).toMatch(/^warning: Orthanc does not know the study metadata PacsTriagePriority and PacsTriageResult.*; fix: declare "UserMetadata"/);
    expect(await onServers()).toEqual(Object.fromEntries(uids.map((u) => [u, { srs: 1, risks: 1, priority: undefined }])));

    const list = await cli(['jobs', '--config', configFile]);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n').filter((l) => l.startsWith('done') && l.includes(FIX))).toHaveLength(done.length);
  });

  it('a second run-once writes nothing: the same SRs and RiskAssessments, no new audit entry', async () => {
    // Our SRs made each study stable again in Orthanc: this run sees those changes and runs the
    // studies again (unchanged), and a serve started after it has nothing left to pick up.
    const ids = await Promise.all(uids.map((u) => rig.rest.findStudy(u)));
    await waitFor('the studies stable again after our SRs', async () => {
      const stable = new Set((await rig.rest.changes(stableAt, 5000)).changes.filter((c) => c.changeType === 'StableStudy').map((c) => c.orthancId));
      return ids.every((id) => id !== undefined && stable.has(id)) ? true : undefined;
    });
    const store = openSqliteStore(rig.storePath);
    const auditBefore = (await store.auditLog()).length;
    await store.close();
    const before = await onServers();
    const second = await cli(['run-once', '--config', configFile, '--json']);
    expect(second.code).toBe(0);
    const summary = JSON.parse(second.stdout) as { failed: number; outcomes: { status: string; unchanged?: boolean; warnings?: string[] }[] };
    expect(summary.failed).toBe(0);
    const done = summary.outcomes.filter((x) => x.status === 'done');
    expect(done).toHaveLength(uids.length);
    for (const o of done) expect(o).toMatchObject({ unchanged: true, warnings: ['pacs-metadata-undeclared'] });
    expect(await onServers()).toEqual(before);
    const after = openSqliteStore(rig.storePath);
    expect((await after.auditLog()).length).toBe(auditBefore);
    await after.close();
  });

  it('serve shows it: /api/jobs, /api/studies/{uid}, and /readyz details once a study met it', async () => {
    const [port] = (await freePorts(1)) as [number];
    const config = rig.config('serve.json', { api: { port }, ingest: { pollIntervalS: 60 }, corrections: { deletedSweep: false } });
    let output = '';
    const serve: ChildProcess = spawn(process.execPath, ['src/bin.mjs', 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    serve.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    serve.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const base = `http://127.0.0.1:${port}`;
      const auth = { authorization: `Bearer ${RIG_API_TOKEN}` };
      await waitFor('serve listening', async () => (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) || undefined, 60_000);
      const uid = uids[0]!;
      const jobsPage = (await (await fetch(`${base}/api/jobs?state=done`, { headers: auth })).json()) as { items: Job[] };
      expect(jobsPage.items.find((j) => j.studyInstanceUID === uid)?.reason).toContain(FIX);
      const study = (await (await fetch(`${base}/api/studies/${uid}`, { headers: auth })).json()) as { job: Job; result: { written: object; warnings: { cause: string; fix: string }[] } };
      expect(study.job.state).toBe('done');
      expect(study.result.written).toEqual({ pacs: true, fhir: true, metadata: false });
      expect(study.result.warnings).toEqual([expect.objectContaining({ write: 'metadata', cause: 'pacs-metadata-undeclared', fix: expect.stringContaining(FIX) })]);
      const worklist = (await (await fetch(`${base}/api/worklist`, { headers: auth })).json()) as { items: { studyInstanceUID: string; warnings?: { cause: string }[] }[] };
      expect(worklist.items.find((i) => i.studyInstanceUID === uid)?.warnings?.map((w) => w.cause)).toEqual(['pacs-metadata-undeclared']);

      // A study run by this process (unchanged: nothing written) tells /readyz; it stays ready.
      expect((await fetch(`${base}/api/studies/${uid}/reprocess`, { method: 'POST', headers: auth })).status).toBe(202);
      const ready = await waitFor('the warning in /readyz', async () => {
        const r = (await (await fetch(`${base}/readyz`, { headers: auth })).json()) as { status: string; checks: Record<string, { ok: boolean; warning?: boolean; detail?: string }> };
        return r.checks['warning:pacs-metadata-undeclared'] ? r : undefined;
      });
      expect(ready.status).toBe('ready');
      expect(ready.checks['warning:pacs-metadata-undeclared']).toEqual({ ok: true, warning: true, detail: expect.stringContaining(`Fix: ${FIX}`) });
      // Logged once for the cause (this process), with no patient data: the event names the study UID and the fix.
      // (The child's log reaches this pipe a moment after /readyz answers.)
      await waitFor('the warning in the log', async () => (output.includes('"event":"study.warning"') ? true : undefined));
      await sleep(200);
      expect(output.split('\n').filter((l) => l.includes('"event":"study.warning"'))).toHaveLength(1);
    } finally {
      serve.kill('SIGTERM');
      await new Promise((r) => (serve.exitCode !== null ? r(undefined) : serve.once('exit', r)));
    }
  }, 120_000);
});
