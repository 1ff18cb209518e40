/**
 * Corrections against the real servers (Orthanc 1.10 + the sandbox FHIR server), counted on the
 * servers themselves:
 *  - a result marked wrong through the API: the RiskAssessment is entered-in-error on the FHIR
 *    server with one Provenance (NULLIFY), one IOCM rejection note (KO) naming our SR is in
 *    Orthanc beside the SR, Orthanc's priority metadata says `retracted`, the worklist shows the
 *    study retracted; a second retract (the CLI) writes nothing new;
 *  - a study deleted in Orthanc: the sweep finds it gone and its RiskAssessment becomes
 *    entered-in-error; nothing is written to the PACS.
 */
import type { Store } from '../../src/state/ports.ts';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DicomWebClient } from '../../src/adapters/dicomweb/client.ts';
import type { OrthancClient } from '../../src/adapters/orthanc/client.ts';
import { createApp } from '../../src/api/app.ts';
import { readPart10, writePart10 } from '../../src/dicom/part10.ts';
import type { RunningFhirServer } from '../../src/sandbox/fhir-server.ts';
import type { OrthancServer } from '../../src/sandbox/orthanc.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import { cli, waitFor } from '../harness/cli.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { dciodvfy, fhirProblems } from '../harness/validators.ts';
import { startRig, type Rig } from '../harness/rig.ts';

const DEMO = 'test/fixtures/demo';
const ROOT = '1.2.826.0.1.3680043.10.997';
const TOKEN = 'corrections-token-16+';

type Resource = Record<string, unknown> & { resourceType: string; id: string; status?: string; meta?: { versionId?: string; tag?: { system: string; code: string }[] }; identifier?: { value: string }[] };

describe.skipIf(!requireOrthanc())('corrections: retracted where written, once', () => {
  let rig: Rig;
  let orthanc: OrthancServer;
  let fhir: RunningFhirServer;
  let dicomweb: DicomWebClient;
  let rest: OrthancClient;
  let dir: string;
  let configFile: string;
  let storePath: string;
  let api: Server;
  let apiBase: string;
  let apiStore: Store;
  const demo = readdirSync(path.join(DEMO, 'dicom')).filter((f) => f.endsWith('.dcm')).sort().map((f) => path.join(DEMO, 'dicom', f));
  const studies = [1, 2].map((n) => {
    const ds = readPart10(readFileSync(demo[0]!));
    ds['StudyInstanceUID'] = `${ROOT}.${n}`;
    ds['SeriesInstanceUID'] = `${ROOT}.${n}.1`;
    ds['SOPInstanceUID'] = `${ROOT}.${n}.1.1`;
    return { uid: `${ROOT}.${n}`, part10: writePart10(ds) };
  });
  const [wrong, deleted] = studies as [(typeof studies)[0], (typeof studies)[0]];

  async function search(type: string): Promise<Resource[]> {
    const res = await fetch(`${fhir.url}/${type}?_count=1000`);
    const bundle = (await res.json()) as { entry?: { resource: Resource }[] };
    return (bundle.entry ?? []).map((e) => e.resource);
  }
  /** How many versions the server holds of a RiskAssessment (its history). */
  async function versionCount(id: string): Promise<number> {
    const bundle = (await (await fetch(`${fhir.url}/RiskAssessment/${id}/_history`)).json()) as { entry?: unknown[] };
    return bundle.entry?.length ?? 0;
  }
  /** Per study: our SRs and rejection notes in Orthanc, its RiskAssessments (by the SR's UID) with their status and version, retraction Provenances. */
  async function onServers(uid: string): Promise<{ sr: number; ko: number; risks: string[]; versions: number[]; retractionProvenances: number }> {
    const instances = await dicomweb.studyInstances(uid);
    const srs = instances.filter((i) => i.Modality === 'SR');
    const risks = (await search('RiskAssessment')).filter((r) => srs.length > 0 ? srs.some((s) => (r.identifier ?? []).some((i) => i.value === `urn:oid:${s.SOPInstanceUID}`)) : false);
    const keys = new Set(risks.flatMap((r) => (r.identifier ?? []).map((i) => i.value)));
    const provenances = (await search('Provenance')).filter((p) => (p.meta?.tag ?? []).some((t) => t.system === 'urn:pacs-triage:retraction' && keys.has(t.code)));
    return { sr: srs.length, ko: instances.filter((i) => i.Modality === 'KO').length, risks: risks.map((r) => r.status ?? ''), versions: await Promise.all(risks.map((r) => versionCount(r.id))), retractionProvenances: provenances.length };
  }
  async function runOnce(): Promise<{ done: number; failed: number }> {
    const run = await cli(['run-once', '--config', configFile, '--json']);
    expect(run.stderr).toBe('');
    return JSON.parse(run.stdout) as { done: number; failed: number };
  }
  async function worklistEntry(uid: string): Promise<{ priority?: string; retracted?: { cause: string; state: string } } | undefined> {
    const res = await fetch(`${apiBase}/api/worklist`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return ((await res.json()) as { items: { studyInstanceUID: string; priority?: string; retracted?: { cause: string; state: string } }[] }).items.find((i) => i.studyInstanceUID === uid);
  }

  beforeAll(async () => {
    rig = await startRig('corrections');
    ({ orthanc, fhir, dicomweb, rest, dir, storePath } = rig);
    configFile = rig.config('config.json', { corrections: { deletedSweepIntervalMin: 0 } });
    await dicomweb.store(undefined, studies.map((s) => s.part10));
    await waitFor('both studies stable', async () => {
      const stable = (await rest.changes(0, 1000)).changes.filter((c) => c.changeType === 'StableStudy').length;
      return stable >= 2 ? true : undefined;
    });
    expect(await runOnce()).toMatchObject({ done: 2, failed: 0 });
    // The API on the same store, as `serve` runs it.
    apiStore = openSqliteStore(storePath);
    const app = createApp({ store: apiStore, token: TOKEN, shadow: false, status: () => ({ provider: 'cpu', model: 'm' }) });
    api = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    apiBase = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  }, 180_000);

  afterAll(async () => {
    await new Promise<void>((resolve) => (api ? api.close(() => resolve()) : resolve()));
    await apiStore?.close();
    await rig?.close();
  });

  it('before: one SR and one preliminary RiskAssessment per study (unverified, as the SR says), ranked with a priority', async () => {
    for (const s of studies) expect(await onServers(s.uid)).toEqual({ sr: 1, ko: 0, risks: ['preliminary'], versions: [1], retractionProvenances: 0 });
    expect((await worklistEntry(wrong.uid))?.priority).toBeDefined();
  });

  it('marked wrong (API), run by the next pass: entered-in-error + one Provenance, one rejection note beside the SR, Orthanc says retracted, the worklist too', async () => {
    const res = await fetch(`${apiBase}/api/studies/${wrong.uid}/retract`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'the pneumothorax is a skin fold', by: 'dr test' }),
    });
    expect(res.status).toBe(202);
    expect(await worklistEntry(wrong.uid)).toMatchObject({ retracted: { cause: 'marked-wrong', state: 'pending' } });
    await runOnce();
    expect(await onServers(wrong.uid)).toEqual({ sr: 1, ko: 1, risks: ['entered-in-error'], versions: [2], retractionProvenances: 1 });
    expect(await onServers(deleted.uid)).toEqual({ sr: 1, ko: 0, risks: ['preliminary'], versions: [1], retractionProvenances: 0 });
    const entry = await worklistEntry(wrong.uid);
    expect(entry).toMatchObject({ retracted: { cause: 'marked-wrong', state: 'done' } });
    expect(entry?.priority).toBeUndefined();
    const id = (await rest.findStudy(wrong.uid))!;
    expect(await rest.studyMetadata(id, 'PacsTriagePriority')).toBe('retracted');

    // The note is valid DICOM and names the SR; the Provenance is valid R4.
    const instances = await dicomweb.studyInstances(wrong.uid);
    const ko = instances.find((i) => i.Modality === 'KO')!;
    const sr = instances.find((i) => i.Modality === 'SR')!;
    const bytes = await dicomweb.retrieveInstance(wrong.uid, ko.SeriesInstanceUID, ko.SOPInstanceUID);
    const file = path.join(dir, 'note.dcm');
    writeFileSync(file, bytes);
    expect(dciodvfy(file).errors).toEqual([]);
    const note = readPart10(new Uint8Array(bytes));
    expect((note['ContentSequence'] as { ValueType: string; ReferencedSOPSequence?: { ReferencedSOPInstanceUID: string }[] }[]).filter((c) => c.ValueType === 'COMPOSITE').map((c) => c.ReferencedSOPSequence![0]!.ReferencedSOPInstanceUID)).toEqual([sr.SOPInstanceUID]);
    const provenance = (await search('Provenance')).find((p) => (p.meta?.tag ?? []).some((t) => t.system === 'urn:pacs-triage:retraction'))!;
    expect(provenance['reason']).toEqual([{ text: 'The AI result was marked wrong. the pneumothorax is a skin fold' }]);
    expect(fhirProblems(provenance)).toEqual([]);
    // It targets the version the server gave the entered-in-error update, whose narrative says so.
    const retracted = (await search('RiskAssessment')).find((r) => (r.identifier ?? []).some((i) => i.value === `urn:oid:${sr.SOPInstanceUID}`))!;
    expect(retracted.meta?.versionId).toBeDefined();
    expect(provenance['target']).toEqual([{ reference: `RiskAssessment/${retracted.id}/_history/${retracted.meta!.versionId!}` }]);
    expect((retracted['text'] as { div: string }).div).toContain('ENTERED IN ERROR');
    expect(fhirProblems(retracted)).toEqual([]);
    const audit = (await apiStore.auditLog({ studyInstanceUID: wrong.uid })).map((a) => `${a.target} ${a.action} ${a.outcome}`);
    expect(audit.filter((a) => a.includes('retract') || a.includes('rejection') || a.includes('provenance'))).toEqual([
      'pacs store-rejection-note ok',
      'pacs mark-retracted ok',
      'fhir retract-risk-assessment ok',
      'fhir retraction-provenance ok',
    ]);
  }, 60_000);

  it('a second retract (CLI) and more passes write nothing new: same counts, same versions, one note', async () => {
    const again = await cli(['retract', wrong.uid, '--reason', 'still wrong', '--config', configFile, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ study: wrong.uid, created: false, state: 'done' });
    // Our rejection note made Orthanc call the study stable again: the rerun finds the same inputs and writes nothing.
    await waitFor('the rejection note seen stable', async () => ((await rest.changes(0, 1000)).changes.filter((c) => c.changeType === 'StableStudy').length >= 3 ? true : undefined));
    await runOnce();
    await runOnce();
    expect(await onServers(wrong.uid)).toEqual({ sr: 1, ko: 1, risks: ['entered-in-error'], versions: [2], retractionProvenances: 1 });
    expect(await worklistEntry(wrong.uid)).toMatchObject({ retracted: { cause: 'marked-wrong', state: 'done' } });
    expect((await apiStore.auditLog({ studyInstanceUID: wrong.uid })).filter((a) => a.action === 'store-rejection-note' || a.action === 'retract-risk-assessment')).toHaveLength(2);
  }, 60_000);

  it('a study deleted in Orthanc: the sweep finds it gone; its RiskAssessment becomes entered-in-error; nothing written to the PACS', async () => {
    const srSop = (await dicomweb.studyInstances(deleted.uid)).find((i) => i.Modality === 'SR')!.SOPInstanceUID;
    const id = (await rest.findStudy(deleted.uid))!;
    expect((await orthanc.request(`/studies/${id}`, { method: 'DELETE' })).status).toBe(200);
    expect(await dicomweb.studyInstances(deleted.uid)).toEqual([]);
    await runOnce();
    const risks = (await search('RiskAssessment')).filter((r) => (r.identifier ?? []).some((i) => i.value === `urn:oid:${srSop}`));
    expect(await Promise.all(risks.map(async (r) => [r.status, await versionCount(r.id)]))).toEqual([['entered-in-error', 2]]);
    const keys = new Set(risks.flatMap((r) => (r.identifier ?? []).map((i) => i.value)));
    const provenances = (await search('Provenance')).filter((p) => (p.meta?.tag ?? []).some((t) => t.system === 'urn:pacs-triage:retraction' && keys.has(t.code)));
    expect(provenances.map((p) => p['reason'])).toEqual([[{ text: 'The imaging study was deleted from the PACS.' }]]);
    expect(await dicomweb.studyInstances(deleted.uid)).toEqual([]); // nothing written to the PACS
    expect(await apiStore.getRetraction(deleted.uid)).toMatchObject({ cause: 'study-deleted', state: 'done', notes: ['the study is no longer in the PACS: its SRs went with it'] });
    expect(await worklistEntry(deleted.uid)).toMatchObject({ retracted: { cause: 'study-deleted', state: 'done' } });
    expect((await apiStore.auditLog({ studyInstanceUID: deleted.uid })).filter((a) => a.target === 'pacs' && a.action !== 'store-sr' && a.action !== 'set-priority')).toEqual([]);
    // The still-present study was not touched by the sweep.
    expect((await onServers(wrong.uid)).risks).toEqual(['entered-in-error']);
  }, 60_000);
});
