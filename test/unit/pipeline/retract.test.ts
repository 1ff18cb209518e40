/**
 * The retraction core against fake ports: its pure parts, what it writes and in which order,
 * how it resumes after a failure (only what is missing), how it waits for a job still writing,
 * and the deleted-study sweep (bounded, paged, and refusing to act on a PACS that answers empty).
 */
import type { Store } from '../../../src/state/ports.ts';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { TriageError } from '../../../src/domain/errors.ts';
import type { FhirResource, InstanceMeta } from '../../../src/domain/types.ts';
import { readPart10 } from '../../../src/dicom/part10.ts';
import {
  SUSPICIOUS_MIN_CHECKED,
  SWEEP_CURSOR,
  drainRetractions,
  pendingWrite,
  rejectedSrs,
  requestMarkedWrong,
  runRetractionJob,
  studyInstanceFor,
  sweepDeletedStudies,
  sweepIfDue,
  type RetractionDeps,
  type RetractionPorts,
} from '../../../src/pipeline/retract.ts';
import { openSqliteStore } from '../../../src/state/sqlite/index.ts';
import type { StoredResult } from '../../../src/domain/records.ts';

const log = pino({ level: 'silent' });
const ROOT = '1.2.826.0.1.3680043.10.999';
const UID = `${ROOT}.1`;
const policy = { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 400 };
const lease = { owner: 'w', leaseMs: 5_000 };

function result(key: string, sop: string, extra: Partial<StoredResult> = {}): StoredResult {
  return {
    resultKey: key,
    studyInstanceUID: UID,
    sourceSopInstanceUIDs: [`${UID}.1.1`],
    srSopInstanceUID: sop,
    srSeriesInstanceUID: `${UID}.9`,
    priority: 'stat',
    findings: [{ code: 'pneumothorax', display: 'Pneumothorax', probability: 0.9, threshold: 0.5, positive: true }],
    modelId: 'm',
    modelVersion: '1',
    executionProvider: 'cpu',
    createdAt: 1,
    written: { pacs: true, fhir: true, metadata: true },
    notes: [],
    ...extra,
  };
}

const image: InstanceMeta = { StudyInstanceUID: UID, SeriesInstanceUID: `${UID}.1`, SOPInstanceUID: `${UID}.1.1`, SOPClassUID: '1.2.840.10008.5.1.4.1.1.1', Modality: 'CR', PatientID: 'P1', PatientName: 'A^B' };
const srOf = (sop: string): InstanceMeta => ({ StudyInstanceUID: UID, SeriesInstanceUID: `${UID}.9`, SOPInstanceUID: sop, SOPClassUID: '1.2.840.10008.5.1.4.1.1.88.34', Modality: 'SR' });

/** Fake servers: a PACS (instances, stored notes, metadata) and a FHIR server (RiskAssessments by key, provenances by tag). */
class FakeServers implements RetractionPorts {
  instances: InstanceMeta[] = [image, srOf(`${UID}.9.1`), srOf(`${UID}.9.2`)];
  notes: Uint8Array[] = [];
  marks: unknown[] = [];
  ras = new Map<string, FhirResource>();
  provenances = new Map<string, FhirResource>();
  updates = 0;
  fail: { fhirUpdate: number; stow: number; fhirTerminal: number } = { fhirUpdate: 0, stow: 0, fhirTerminal: 0 };
  calls: string[] = [];

  async studyInstances(): Promise<InstanceMeta[]> {
    this.calls.push('instances');
    return this.instances;
  }
  async studyExists(uid: string): Promise<boolean> {
    return this.instances.some((i) => i.StudyInstanceUID === uid);
  }
  async storeRejectionNote(_uid: string, part10: Uint8Array): Promise<void> {
    this.calls.push('stow');
    if (this.fail.stow-- > 0) throw new TriageError('UPSTREAM_UNAVAILABLE', 'pacs 503', { status: 503 });
    this.notes.push(part10);
  }
  async markRetracted(_uid: string, detail: unknown): Promise<void> {
    this.calls.push('mark');
    this.marks.push(detail);
  }
  fhir = {
    findRiskAssessments: async (key: string): Promise<FhirResource[]> => {
      this.calls.push(`find ${key}`);
      const ra = this.ras.get(key);
      return ra ? [ra] : [];
    },
    update: async (resource: FhirResource): Promise<FhirResource> => {
      this.calls.push(`update ${resource.id}`);
      if (this.fail.fhirTerminal-- > 0) throw new TriageError('UPSTREAM_REJECTED', 'fhir 422', { status: 422 });
      if (this.fail.fhirUpdate-- > 0) throw new TriageError('UPSTREAM_UNAVAILABLE', 'fhir 503', { status: 503, retryAfterS: 0 });
      const key = [...this.ras.entries()].find(([, r]) => r.id === resource.id)![0];
      const next = { ...resource, meta: { versionId: String(Number(resource.meta?.versionId ?? '1') + 1) } };
      this.ras.set(key, next);
      this.updates++;
      return next;
    },
    transaction: async (bundle: FhirResource): Promise<FhirResource> => {
      const entry = (bundle['entry'] as { resource: FhirResource; request: { ifNoneExist: string } }[])[0]!;
      this.calls.push(`provenance ${entry.request.ifNoneExist}`);
      if (!this.provenances.has(entry.request.ifNoneExist)) this.provenances.set(entry.request.ifNoneExist, entry.resource);
      return { resourceType: 'Bundle' };
    },
  };
}

async function setup(options: { jobState?: 'done' | 'queued'; results?: StoredResult[] } = {}): Promise<{ store: Store; servers: FakeServers; deps: RetractionDeps }> {
  const store = openSqliteStore(':memory:');
  await store.enqueue([{ studyInstanceUID: UID, source: 'cli' }]);
  await store.claim(Number.MAX_SAFE_INTEGER, lease, UID);
  const results = options.results ?? [result('k1', `${UID}.9.1`), result('k2', `${UID}.9.2`, { createdAt: 2 })];
  for (const r of results) await store.saveResult(r);
  if ((options.jobState ?? 'done') === 'done') await store.finish(UID, 'done', undefined);
  else await store.fail(UID, 'UPSTREAM_UNAVAILABLE', 'waiting for fhir', Date.now() + 60_000);
  const servers = new FakeServers();
  servers.ras.set('k1', { resourceType: 'RiskAssessment', id: 'ra1', meta: { versionId: '1' }, status: 'final' });
  servers.ras.set('k2', { resourceType: 'RiskAssessment', id: 'ra2', meta: { versionId: '3' }, status: 'final' });
  const deps: RetractionDeps = { store, ports: servers, uidRoot: ROOT, shadow: false, software: { name: 'pacs-triage', version: '0.1.0' }, log };
  return { store, servers, deps };
}

describe('retraction: pure parts', () => {
  it('rejects only our SRs that the study still holds, once each', () => {
    const results = [result('k1', `${UID}.9.1`), result('k2', `${UID}.9.2`), result('k3', `${UID}.9.3`)];
    expect(rejectedSrs(results, [image, srOf(`${UID}.9.2`), srOf(`${UID}.9.1`)]).map((r) => r.sopInstanceUID)).toEqual([`${UID}.9.1`, `${UID}.9.2`]);
    expect(rejectedSrs(results, [])).toEqual([]);
  });
  it('copies the study from a source image, else any instance that is not ours', () => {
    expect(studyInstanceFor([result('k1', 'x')], [srOf('x'), image])).toBe(image);
    const other = { ...image, SOPInstanceUID: `${UID}.2.2` };
    expect(studyInstanceFor([result('k1', 'x')], [srOf('x'), other])).toBe(other);
  });
  it('waits only while the job is queued or running with a result not fully written', () => {
    const written = result('k1', 'x');
    const waiting = result('k1', 'x', { written: { pacs: true, metadata: true, fhir: false } });
    expect(pendingWrite('queued', [waiting])).toBe(true);
    expect(pendingWrite('running', [waiting])).toBe(true);
    expect(pendingWrite('done', [waiting])).toBe(false);
    expect(pendingWrite('queued', [written])).toBe(false);
    expect(pendingWrite('queued', [{ ...waiting, notes: ['fhir skipped: no Patient'] }])).toBe(false);
    // Metadata refused for a configuration reason is not pending: the job will not write it.
    const refused = result('k1', 'x', { written: { pacs: true, metadata: false, fhir: true }, warnings: [{ write: 'metadata', cause: 'pacs-metadata-undeclared', message: 'm', fix: 'f' }] });
    expect(pendingWrite('queued', [refused])).toBe(false);
  });
});

describe('retraction: what is written', () => {
  it('marked wrong: one rejection note naming both SRs, the Orthanc mark, each RiskAssessment entered-in-error with one Provenance; audited', async () => {
    const { store, servers, deps } = await setup();
    await requestMarkedWrong(store, UID, 'wrong', 'dr a');
    const outcomes = await drainRetractions(deps, policy, lease);
    expect(outcomes).toEqual([{ status: 'done' }]);
    expect(servers.notes).toHaveLength(1);
    const note = readPart10(servers.notes[0]!);
    expect(note['Modality']).toBe('KO');
    expect(note['PatientID']).toBe('P1');
    expect((note['ContentSequence'] as { ValueType: string }[]).filter((i) => i.ValueType === 'COMPOSITE')).toHaveLength(2);
    expect(servers.marks).toEqual([{ rejectionNote: note['SOPInstanceUID'], srs: [`${UID}.9.1`, `${UID}.9.2`], cause: 'marked-wrong' }]);
    expect([...servers.ras.values()].map((r) => [r.id, r['status'], r.meta?.versionId])).toEqual([
      ['ra1', 'entered-in-error', '2'],
      ['ra2', 'entered-in-error', '4'],
    ]);
    expect([...servers.provenances.keys()]).toEqual(['_tag=urn:pacs-triage:retraction|k1', '_tag=urn:pacs-triage:retraction|k2']);
    expect(servers.provenances.get('_tag=urn:pacs-triage:retraction|k2')!['target']).toEqual([{ reference: 'RiskAssessment/ra2/_history/4' }]);
    expect(servers.provenances.get('_tag=urn:pacs-triage:retraction|k1')!['reason']).toEqual([{ text: 'The AI result was marked wrong. wrong' }]);
    expect(await store.getRetraction(UID)).toMatchObject({ state: 'done', written: { pacs: true, metadata: true, fhir: true }, notes: [] });
    expect((await store.auditLog({ studyInstanceUID: UID })).map((a) => `${a.target} ${a.action} ${a.resultKey} ${a.outcome}`)).toEqual([
      'pacs store-rejection-note k2 ok',
      'pacs mark-retracted k2 ok',
      'fhir retract-risk-assessment k1 ok',
      'fhir retraction-provenance k1 ok',
      'fhir retract-risk-assessment k2 ok',
      'fhir retraction-provenance k2 ok',
    ]);
  });

  it('FHIR down: PACS written once, the retraction waits (pending, retryAt), the retry does only the FHIR part; run again: nothing new', async () => {
    const { store, servers, deps } = await setup();
    servers.fail.fhirUpdate = 1;
    await requestMarkedWrong(store, UID, 'wrong');
    const [first] = await drainRetractions(deps, policy, lease);
    expect(first).toMatchObject({ status: 'failed', code: 'UPSTREAM_UNAVAILABLE', retryAt: expect.any(Number) });
    expect(await store.getRetraction(UID)).toMatchObject({ state: 'pending', errorCode: 'UPSTREAM_UNAVAILABLE', written: { pacs: true, metadata: true, fhir: false } });
    servers.calls.length = 0;
    const claimed = (await store.claimRetraction(Number.MAX_SAFE_INTEGER - lease.leaseMs, lease))!;
    expect(await runRetractionJob(claimed, deps, policy, lease)).toEqual({ status: 'done' });
    expect(servers.calls).toEqual(['find k1', 'update ra1', 'provenance _tag=urn:pacs-triage:retraction|k1', 'find k2', 'update ra2', 'provenance _tag=urn:pacs-triage:retraction|k2']);
    expect(servers.notes).toHaveLength(1);
    // A crash after the writes, before "done": the rerun finds everything entered-in-error and the provenances there.
    await store.requestRetraction({ studyInstanceUID: UID, cause: 'marked-wrong' }); // covered: nothing queued
    expect(await store.claimRetraction(Number.MAX_SAFE_INTEGER - lease.leaseMs, lease)).toBeUndefined();
    servers.calls.length = 0;
    const updates = servers.updates;
    await runRetractionJob({ ...(await store.getRetraction(UID))!, written: { pacs: true, metadata: true, fhir: false } }, deps, policy);
    expect(servers.updates).toBe(updates);
    expect(servers.provenances.size).toBe(2);
    expect(servers.calls.filter((c) => c.startsWith('update'))).toEqual([]);
  });

  it('a terminal FHIR answer fails the retraction with its reason; asking again queues it again', async () => {
    const { store, servers, deps } = await setup();
    servers.fail.fhirTerminal = 1;
    await requestMarkedWrong(store, UID, 'wrong');
    const [outcome] = await drainRetractions(deps, policy, lease);
    expect(outcome).toEqual({ status: 'failed', code: 'UPSTREAM_REJECTED', reason: 'fhir 422' });
    expect(await store.getRetraction(UID)).toMatchObject({ state: 'failed', errorCode: 'UPSTREAM_REJECTED', lastError: 'fhir 422' });
    expect((await requestMarkedWrong(store, UID, 'again')).created).toBe(true);
    expect(await drainRetractions(deps, policy, lease)).toEqual([{ status: 'done' }]);
  });

  it('Orthanc without our UserMetadata: the rejection note and FHIR are written; the mark is skipped with a note naming the fix', async () => {
    const { store, servers, deps } = await setup();
    servers.markRetracted = async () => {
      servers.calls.push('mark');
      throw new TriageError('CONFIG_INVALID', 'Orthanc refused the study metadata', { where: 'pacs.userMetadata', status: 404 });
    };
    await requestMarkedWrong(store, UID, 'wrong');
    expect(await drainRetractions(deps, policy, lease)).toEqual([{ status: 'done' }]);
    expect(servers.notes).toHaveLength(1);
    expect([...servers.ras.values()].map((r) => r['status'])).toEqual(['entered-in-error', 'entered-in-error']);
    expect(await store.getRetraction(UID)).toMatchObject({ state: 'done', written: { pacs: true, metadata: true, fhir: true } });
    expect((await store.getRetraction(UID))?.notes).toEqual([expect.stringMatching(/^metadata not marked: Orthanc does not know .*; fix: declare "UserMetadata"/)]);
  });

  it('the study was deleted: no PACS write, a note; only FHIR and the store change', async () => {
    const { store, servers, deps } = await setup();
    servers.instances = [];
    await store.requestRetraction({ studyInstanceUID: UID, cause: 'study-deleted' });
    expect(await drainRetractions(deps, policy, lease)).toEqual([{ status: 'done' }]);
    expect(servers.notes).toEqual([]);
    expect(servers.marks).toEqual([]);
    expect([...servers.ras.values()].map((r) => r['status'])).toEqual(['entered-in-error', 'entered-in-error']);
    expect(servers.provenances.get('_tag=urn:pacs-triage:retraction|k1')!['reason']).toEqual([{ text: 'The imaging study was deleted from the PACS.' }]);
    expect((await store.getRetraction(UID))?.notes).toEqual(['the study is no longer in the PACS: its SRs went with it']);
  });

  it('waits (without counting an attempt) while the study’s job still has a result to write', async () => {
    const { store, servers, deps } = await setup({ jobState: 'queued', results: [result('k1', `${UID}.9.1`, { written: { pacs: true, metadata: true, fhir: false } })] });
    await requestMarkedWrong(store, UID, 'wrong');
    const [outcome] = await drainRetractions(deps, policy, lease);
    expect(outcome).toMatchObject({ status: 'failed', code: 'CONFLICT', retryAt: expect.any(Number) });
    expect(await store.getRetraction(UID)).toMatchObject({ state: 'pending', attempts: 0 });
    expect(servers.calls).toEqual([]);
  });

  it('shadow mode: nothing was written back, nothing is retracted outside the store', async () => {
    const { store, servers, deps } = await setup();
    await requestMarkedWrong(store, UID, 'wrong');
    expect(await drainRetractions({ ...deps, shadow: true }, policy, lease)).toEqual([{ status: 'done' }]);
    expect(servers.calls).toEqual([]);
    expect((await store.getRetraction(UID))?.notes).toEqual(['shadow mode: nothing was written back, so nothing is retracted outside the store']);
  });

  it('requestMarkedWrong refuses an unknown study, a running one, one without a result, and an empty reason', async () => {
    const { store } = await setup();
    await expect(requestMarkedWrong(store, '1.2.3', 'x')).rejects.toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    await expect(requestMarkedWrong(store, UID, '   ')).rejects.toThrow(expect.objectContaining({ code: 'USAGE' }));
    await store.enqueue([{ studyInstanceUID: '1.2.4', source: 'cli' }]);
    await expect(requestMarkedWrong(store, '1.2.4', 'x')).rejects.toThrow(expect.objectContaining({ code: 'NOT_FOUND', message: 'study 1.2.4 has no result to retract' }));
    await store.claim(Number.MAX_SAFE_INTEGER, lease, '1.2.4');
    await expect(requestMarkedWrong(store, '1.2.4', 'x')).rejects.toThrow(expect.objectContaining({ code: 'CONFLICT' }));
  });
});

describe('deleted-study sweep', () => {
  async function doneStudies(n: number): Promise<Store> {
    const store = openSqliteStore(':memory:');
    for (let i = 1; i <= n; i++) {
      const uid = `${ROOT}.${100 + i}`;
      await store.enqueue([{ studyInstanceUID: uid, source: 'cli' }]);
      await store.claim(Number.MAX_SAFE_INTEGER, lease, uid);
      await store.saveResult({ ...result(`k${i}`, `${uid}.9`), studyInstanceUID: uid });
      await store.finish(uid, 'done', undefined);
    }
    return store;
  }
  const uid = (i: number): string => `${ROOT}.${100 + i}`;
  const window = { now: Date.now(), lookbackMs: 86_400_000 };

  it('a missing study gets a study-deleted retraction; pages of maxStudies go on from the cursor and wrap', async () => {
    const store = await doneStudies(5);
    const checked: string[] = [];
    const exists = async (u: string): Promise<boolean> => {
      checked.push(u);
      return u !== uid(2) && u !== uid(5);
    };
    const a = await sweepDeletedStudies(store, exists, { ...window, maxStudies: 3 }, log);
    expect(a).toEqual({ checked: 3, missing: [uid(2)], retracted: [uid(2)], suspicious: false });
    expect(await store.getCursor(SWEEP_CURSOR)).toBe(uid(3));
    const b = await sweepDeletedStudies(store, exists, { ...window, maxStudies: 3 }, log);
    expect(b).toEqual({ checked: 2, missing: [uid(5)], retracted: [uid(5)], suspicious: false });
    expect(await store.getCursor(SWEEP_CURSOR)).toBe('');
    expect(checked).toEqual([uid(1), uid(2), uid(3), uid(4), uid(5)]);
    expect((await store.retractions()).map((r) => [r.studyInstanceUID, r.cause, r.state]).sort()).toEqual([
      [uid(2), 'study-deleted', 'pending'],
      [uid(5), 'study-deleted', 'pending'],
    ]);
    const c = await sweepDeletedStudies(store, exists, { ...window, maxStudies: 10 }, log);
    expect(c.checked).toBe(3); // retracted studies are not checked again
  });

  it('most studies missing at once looks like a PACS answering empty: nothing is retracted', async () => {
    const store = await doneStudies(SUSPICIOUS_MIN_CHECKED);
    const out = await sweepDeletedStudies(store, async () => false, { ...window, maxStudies: 100 }, log);
    expect(out).toMatchObject({ checked: SUSPICIOUS_MIN_CHECKED, suspicious: true, retracted: [] });
    expect(await store.retractions()).toEqual([]);
  });

  it('a PACS error ends the pass: nothing retracted, the cursor unchanged', async () => {
    const store = await doneStudies(3);
    const failing = async (u: string): Promise<boolean> => {
      if (u === uid(2)) throw new TriageError('UPSTREAM_UNAVAILABLE', 'down');
      return false;
    };
    await expect(sweepDeletedStudies(store, failing, { ...window, maxStudies: 10 }, log)).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(await store.retractions()).toEqual([]);
    expect(await store.getCursor(SWEEP_CURSOR)).toBeUndefined();
  });

  it('runs when its interval has passed since the last pass (kept in the store)', async () => {
    const store = await doneStudies(1);
    const exists = async (): Promise<boolean> => true;
    expect(await sweepIfDue(store, exists, 60_000, { now: 100_000, lookbackMs: 1e12, maxStudies: 10 }, log)).toMatchObject({ checked: 1 });
    expect(await sweepIfDue(store, exists, 60_000, { now: 159_999, lookbackMs: 1e12, maxStudies: 10 }, log)).toBeUndefined();
    expect(await sweepIfDue(store, exists, 60_000, { now: 160_000, lookbackMs: 1e12, maxStudies: 10 }, log)).toMatchObject({ checked: 1 });
  });
});
