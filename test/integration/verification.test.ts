/**
 * A reader's accept against the real servers (Orthanc 1.10 + the sandbox FHIR server): the
 * accept through the API records the verification; the next `run-once` pass writes it — the
 * RiskAssessment `final` as a second version and one Provenance naming the reader, targeting that
 * version — and a further pass writes nothing more. The other studies stay preliminary.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { main } from '../../src/cli.ts';
import { readPart10 } from '../../src/dicom/part10.ts';
import type { Store } from '../../src/state/ports.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { startRig, type Rig } from '../harness/rig.ts';
import { fhirProblems } from '../harness/validators.ts';

const DEMO = 'test/fixtures/demo/dicom';
const TOKEN = 'verification-token-16+';
const READER = 'Dr. Verifier';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Resource = Record<string, unknown> & { id: string; status?: string; meta?: { versionId?: string; tag?: { system: string; code: string }[] }; identifier?: { system?: string; value: string }[] };

async function runOnce(configFile: string): Promise<{ done: number; failed: number }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['run-once', '--config', configFile, '--json'], { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return JSON.parse(stdout) as { done: number; failed: number };
}

describe.skipIf(!requireOrthanc())("a reader's accept: the RiskAssessment final and a Provenance, written once", () => {
  let rig: Rig;
  let configFile: string;

  async function search(type: string): Promise<Resource[]> {
    const bundle = (await (await fetch(`${rig.fhir.url}/${type}?_count=1000`)).json()) as { entry?: { resource: Resource }[] };
    return (bundle.entry ?? []).map((e) => e.resource);
  }
  /** How many versions the server holds of a RiskAssessment (its history). */
  async function versionCount(id: string): Promise<number> {
    const bundle = (await (await fetch(`${rig.fhir.url}/RiskAssessment/${id}/_history`)).json()) as { entry?: unknown[] };
    return bundle.entry?.length ?? 0;
  }
  const ourKey = (r: Resource): string | undefined => (r.identifier ?? []).find((i) => i.system === 'urn:pacs-triage:result')?.value;
  const verifications = async (key: string): Promise<Resource[]> =>
    (await search('Provenance')).filter((p) => (p.meta?.tag ?? []).some((t) => t.system === 'urn:pacs-triage:verification' && t.code === key));

  beforeAll(async () => {
    rig = await startRig('verification');
    configFile = rig.config('config.json', { corrections: { deletedSweep: false } });
    const files = readdirSync(DEMO).filter((f) => f.endsWith('.dcm')).sort().map((f) => readFileSync(path.join(DEMO, f)));
    const studies = [...new Set(files.map((f) => readPart10(f)['StudyInstanceUID'] as string))];
    const since = (await rig.rest.changes(0, 5000)).last;
    await rig.dicomweb.store(undefined, files);
    const ids: string[] = [];
    for (const uid of studies) {
      for (let id = await rig.rest.findStudy(uid); ; id = await rig.rest.findStudy(uid)) {
        if (id !== undefined) {
          ids.push(id);
          break;
        }
        await sleep(100);
      }
    }
    for (const end = Date.now() + 30_000; ; ) {
      const stable = new Set((await rig.rest.changes(since, 5000)).changes.filter((c) => c.changeType === 'StableStudy').map((c) => c.orthancId));
      if (ids.every((id) => stable.has(id))) break;
      if (Date.now() > end) throw new Error('studies not stable');
      await sleep(100);
    }
  }, 120_000);

  afterAll(async () => {
    await rig?.close();
  });

  it('accept → the next pass writes it; the pass after writes nothing', async () => {
    const first = await runOnce(configFile);
    expect(first.failed).toBe(0);
    expect(first.done).toBeGreaterThan(0);
    const before = await search('RiskAssessment');
    expect(before.length).toBeGreaterThan(1);
    expect(new Set(before.map((r) => r.status))).toEqual(new Set(['preliminary']));

    // The accept, through the API as the page sends it.
    const store: Store = openSqliteStore(rig.storePath);
    const done = (await store.jobs()).filter((j) => j.state === 'done');
    const uid = done[0]!.studyInstanceUID;
    const result = (await store.latestResult(uid))!;
    const app = createApp({ store, token: TOKEN, shadow: false, status: () => ({ provider: 'cpu', model: 'm' }) });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const res = await fetch(`${base}/api/studies/${uid}/feedback`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ findingCode: result.findings[0]!.code, verdict: 'accept', by: READER }),
      });
      expect(res.status).toBe(201);
      // Recorded, not written yet: the request does no FHIR write.
      expect((await store.getVerification(result.resultKey))?.state).toBe('pending');
      expect(await verifications(result.resultKey)).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    }

    await runOnce(configFile);
    const ra = (await search('RiskAssessment')).find((r) => ourKey(r) === result.resultKey)!;
    const read = before.find((r) => r.id === ra.id)!;
    expect(ra.status).toBe('final');
    // A new version: the preliminary one stays in the history.
    expect(ra.meta?.versionId).not.toBe(read.meta?.versionId);
    expect(await versionCount(ra.id)).toBe(2);
    const version = ra.meta!.versionId!;
    const provenances = await verifications(result.resultKey);
    expect(provenances).toHaveLength(1);
    expect(provenances[0]!['target']).toEqual([{ reference: `RiskAssessment/${ra.id}/_history/${version}` }]);
    expect(provenances[0]!['entity']).toEqual([{ role: 'revision', what: { reference: `RiskAssessment/${ra.id}/_history/${read.meta!.versionId!}` } }]);
    expect(JSON.stringify(provenances[0]!['agent'])).toContain(`"display":"${READER}"`);
    // Both as the server keeps them pass R4 validation.
    expect(fhirProblems(ra)).toEqual([]);
    expect(fhirProblems(provenances[0]!)).toEqual([]);
    expect((await search('RiskAssessment')).filter((r) => ourKey(r) !== result.resultKey).map((r) => r.status)).toEqual(before.slice(1).map(() => 'preliminary'));
    const after = openSqliteStore(rig.storePath);
    expect(await after.getVerification(result.resultKey)).toMatchObject({ state: 'done', outcome: `RiskAssessment/${ra.id}/_history/${version}`, reader: READER });
    const audit = (await after.auditLog()).length;
    await after.close();

    // Another pass: nothing more is written.
    await runOnce(configFile);
    expect((await search('RiskAssessment')).find((r) => r.id === ra.id)?.meta?.versionId).toBe(version);
    expect(await versionCount(ra.id)).toBe(2);
    expect(await verifications(result.resultKey)).toHaveLength(1);
    const last = openSqliteStore(rig.storePath);
    expect((await last.auditLog()).length).toBe(audit);
    await last.close();
  }, 180_000);
});
