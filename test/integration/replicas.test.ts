/**
 * Three `serve` replicas on one PostgreSQL and one Orthanc. 100 studies arrive while they run;
 * one replica — the one reading the changes feed, so leadership must move too — is SIGKILLed
 * while it holds studies. At the end every study has exactly one SR in Orthanc and one
 * RiskAssessment naming it; each study was processed to the end once (the dead replica's by
 * another once its lease ran out); the audit shows one write of each kind per study; and the
 * changes cursor is where Orthanc's feed ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPart10, writePart10 } from '../../src/dicom/part10.ts';
import type { Job } from '../../src/domain/records.ts';
import { CHANGES_CURSOR } from '../../src/pipeline/ingest/orthanc-changes.ts';
import { freePorts } from '../../src/sandbox/orthanc.ts';
import type { Store } from '../../src/state/ports.ts';
import { openPostgresStore } from '../../src/state/postgres/index.ts';
import { startPostgres, type PostgresServer } from '../harness/postgres.ts';
import { requireOrthanc, requirePostgres } from '../harness/require-servers.ts';
import { startRig, type Rig } from '../harness/rig.ts';

const ROOT = '1.2.826.0.1.3680043.10.993';
const STUDIES = 100;
const REPLICAS = 3;
const LEASE_MS = 5_000;
const SCHEMA = 'replicas';
const DEMO = 'test/fixtures/demo/dicom';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Replica {
  name: string;
  child: ChildProcess;
  output: string;
  port: number;
}

describe.skipIf(!requireOrthanc() || !requirePostgres())(`${REPLICAS} serve replicas on one PostgreSQL and one Orthanc`, () => {
  let rig: Rig;
  let pg: PostgresServer;
  let store: Store;
  let config: string;
  const replicas: Replica[] = [];
  const demos = readdirSync(DEMO).filter((f) => f.endsWith('.dcm')).sort().map((f) => readFileSync(path.join(DEMO, f)));
  const uid = (n: number): string => `${ROOT}.${n}`;

  function study(n: number): Uint8Array {
    const ds = readPart10(demos[n % demos.length]!);
    ds['StudyInstanceUID'] = uid(n);
    ds['SeriesInstanceUID'] = `${uid(n)}.1`;
    ds['SOPInstanceUID'] = `${uid(n)}.1.1`;
    return writePart10(ds);
  }
  async function within<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms; the replicas said:\n${replicas.map((r) => `--- ${r.name}\n${r.output.slice(-1_500)}`).join('\n')}`);
      await sleep(250);
    }
  }
  const mine = async (): Promise<Job[]> => (await store.jobs({ limit: 1_000 })).filter((j) => j.studyInstanceUID.startsWith(`${ROOT}.`));
  const start = (name: string, port: number): Replica => {
    const child = spawn(process.execPath, ['src/bin.mjs', 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PACS_TRIAGE_API__PORT: String(port) } });
    const r: Replica = { name, child, output: '', port };
    child.stdout?.on('data', (d: Buffer) => (r.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (r.output += d.toString()));
    return r;
  };
  const leads = (r: Replica, name: string): boolean => {
    const events = r.output.split('\n').filter((l) => l.includes('"service.leadership"') && l.includes(`"${name}"`));
    return events.length > 0 && events.at(-1)!.includes('"held":true');
  };

  beforeAll(async () => {
    pg = await startPostgres();
    rig = await startRig('replicas');
    config = rig.config('serve.json', {
      store: { kind: 'postgres', url: pg.url, schema: SCHEMA, poolSize: 4 },
      ingest: { pollIntervalS: 1, modes: ['orthanc-changes'] },
      worker: { concurrency: 2, maxAttempts: 5, leaseMs: LEASE_MS, retryBaseDelayMs: 200, retryMaxDelayMs: 1_000, decodeThreads: 1 },
      model: { maxBatch: 4, cpu: { threads: 1 } },
      corrections: { deletedSweep: false },
    });
    store = await openPostgresStore({ url: pg.url, schema: SCHEMA, poolSize: 2 });
    const ports = await freePorts(REPLICAS);
    for (let i = 0; i < REPLICAS; i++) replicas.push(start(`replica-${i + 1}`, ports[i]!));
    for (const r of replicas) {
      await within(`${r.name} listening`, 90_000, async () => (await fetch(`http://127.0.0.1:${r.port}/healthz`).then((x) => x.ok, () => false)) || undefined);
    }
  }, 180_000);

  afterAll(async () => {
    for (const r of replicas) {
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
    }
    await Promise.all(replicas.map((r) => (r.child.exitCode !== null || r.child.signalCode !== null ? Promise.resolve() : new Promise((res) => r.child.once('exit', res)))));
    await store?.close();
    await rig?.close();
    await pg?.stop();
  });

  it('100 studies arrive while they run; the changes-feed leader is killed holding studies; each study is written once', async () => {
    // Arrivals: ten bursts of ten, a second apart, while the replicas work.
    const arriving = (async () => {
      for (let b = 0; b < STUDIES / 10; b++) {
        await rig.dicomweb.store(undefined, Array.from({ length: 10 }, (_, i) => study(b * 10 + i + 1)));
        await sleep(1_000);
      }
    })();

    // The victim: the replica reading the changes feed, once it holds at least one study and a
    // quarter of the studies are done.
    const victim = await within('the leader holding a study', 120_000, async () => {
      const leader = replicas.find((r) => leads(r, 'ingest:orthanc-changes'));
      if (!leader) return undefined;
      const jobs = await mine();
      if (jobs.filter((j) => j.state === 'done').length < STUDIES / 4) return undefined;
      const held = jobs.filter((j) => j.state === 'running' && j.leaseOwner?.includes(`:${leader.child.pid}:`));
      return held.length > 0 ? { leader } : undefined;
    });
    victim.leader.child.kill('SIGKILL');
    await new Promise((r) => victim.leader.child.once('exit', r));
    const killedAt = Date.now();
    // What it still held when it died (it may have finished one between the look and the kill);
    // nobody else may take these before their lease runs out.
    const held = (await mine()).filter((j) => j.state === 'running' && j.leaseOwner?.includes(`:${victim.leader.child.pid}:`)).map((j) => j.studyInstanceUID);
    expect(held.length).toBeGreaterThan(0);
    await arriving;
    const survivors = replicas.filter((r) => r !== victim.leader);

    // Every study done; a survivor leads the changes feed now.
    const jobs = await within(`all ${STUDIES} studies done`, 240_000, async () => {
      const all = await mine();
      return all.length === STUDIES && all.every((j) => j.state === 'done' || j.state === 'failed') ? all : undefined;
    });
    expect(jobs.filter((j) => j.state !== 'done').map((j) => `${j.studyInstanceUID} ${j.errorCode}: ${j.reason}`)).toEqual([]);
    expect(survivors.some((r) => leads(r, 'ingest:orthanc-changes'))).toBe(true);

    // One SR per study in Orthanc, and one RiskAssessment naming it on the FHIR server.
    const bundle = (await (await fetch(`${rig.fhir.url}/RiskAssessment?_count=1000`)).json()) as { entry?: { resource: { identifier?: { value: string }[] } }[] };
    const risks = (bundle.entry ?? []).map((e) => e.resource);
    const counts: Record<string, string> = {};
    for (let n = 1; n <= STUDIES; n++) {
      const srs = (await rig.dicomweb.studyInstances(uid(n))).filter((i) => i.Modality === 'SR');
      const named = risks.filter((r) => srs.some((sr) => (r.identifier ?? []).some((i) => i.value === `urn:oid:${sr.SOPInstanceUID}`)));
      if (srs.length !== 1 || named.length !== 1) counts[uid(n)] = `${srs.length} SR, ${named.length} RiskAssessment`;
    }
    expect(counts).toEqual({});

    // Claimed once each; twice only where the dead replica held the study. One write of each
    // kind per study in the audit (a study the dead replica was writing may show its first
    // attempt's write too, but never two writes before the kill).
    const interrupted = new Set(held);
    const audit = (await store.auditLog()).filter((a) => a.studyInstanceUID.startsWith(`${ROOT}.`) && a.outcome === 'ok');
    const twice: string[] = [];
    for (const j of jobs) {
      const writes = (action: string): number[] => audit.filter((a) => a.studyInstanceUID === j.studyInstanceUID && a.action === action).map((a) => a.at);
      for (const action of ['store-sr', 'transaction']) {
        const at = writes(action);
        if (interrupted.has(j.studyInstanceUID)) {
          expect(at.length, `${j.studyInstanceUID} ${action}`).toBeGreaterThanOrEqual(1);
          expect(at.filter((t) => t < killedAt).length, `${j.studyInstanceUID} ${action} before the kill`).toBeLessThanOrEqual(1);
        } else if (at.length !== 1) {
          twice.push(`${j.studyInstanceUID} ${action} ×${at.length}`);
        }
      }
    }
    expect(twice).toEqual([]);
    // Processed to the end once: one study.done per study over all replicas' logs (the dead
    // one's included). A run again after that finds the result written and ends "unchanged".
    const done = new Map<string, number>();
    for (const r of replicas) {
      for (const line of r.output.split('\n')) {
        const m = /"event":"study\.done","study":"([0-9.]+)"/.exec(line);
        if (m) done.set(m[1]!, (done.get(m[1]!) ?? 0) + 1);
      }
    }
    expect(jobs.filter((j) => done.get(j.studyInstanceUID) !== 1).map((j) => `${j.studyInstanceUID} done ×${done.get(j.studyInstanceUID) ?? 0}`)).toEqual([]);
    // The dead replica's studies were taken up by the others (processed, or found fully written
    // when it died after its writes; a later rerun of Orthanc's repeated StableStudy may add an
    // "unchanged" on another replica), after its lease ran out.
    const finishers = held.map((u): [string, number] => [u, survivors.filter((r) => new RegExp(`"event":"study\\.(done|unchanged)","study":"${u.replaceAll('.', '\\.')}"`).test(r.output)).length]);
    expect(finishers.filter(([, n]) => n < 1)).toEqual([]);
    expect(Math.min(...jobs.filter((j) => interrupted.has(j.studyInstanceUID)).map((j) => j.updatedAt))).toBeGreaterThanOrEqual(killedAt + LEASE_MS - 1_000);

    // The cursor: where Orthanc's changes feed ends, once the leader has caught up.
    const last = await within('the cursor at the end of the feed', 30_000, async () => {
      const res = await fetch(`${rig.orthanc.baseUrl}/changes?last`, { headers: { authorization: rig.orthanc.authorization } });
      const end = ((await res.json()) as { Last: number }).Last;
      return (await store.getCursor(CHANGES_CURSOR)) === String(end) ? end : undefined;
    });
    console.info(
      `[replicas] ${STUDIES} studies on ${REPLICAS} replicas; killed ${victim.leader.name} holding ${held.length} (taken over after the ${LEASE_MS} ms lease); ` +
        `leader now ${survivors.find((r) => leads(r, 'ingest:orthanc-changes'))?.name}; cursor ${last}`,
    );
  }, 420_000);
});
