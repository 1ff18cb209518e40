import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Finding, Priority } from '../../../src/domain/types.ts';
import { SqliteJobStore } from '../../../src/state/sqlite-store.ts';
import type { StoredResult } from '../../../src/state/store.ts';

const ref = (uid: string) => ({ studyInstanceUID: uid, source: 'orthanc-changes' as const });

function result(uid: string, priority: Priority, p: number, extra: Partial<StoredResult> = {}): StoredResult {
  const findings: Finding[] = [
    { code: 'pneumothorax', display: 'Pneumothorax', probability: p, threshold: 0.5, positive: p >= 0.5 },
    { code: 'lung_nodule', display: 'Lung nodule', probability: 0.1, threshold: 0.5, positive: false },
  ];
  return {
    resultKey: `key-${uid}`,
    studyInstanceUID: uid,
    sourceSopInstanceUIDs: [`${uid}.1.1`],
    srSopInstanceUID: `2.25.${uid.replace(/\./g, '')}1`,
    srSeriesInstanceUID: `2.25.${uid.replace(/\./g, '')}2`,
    priority,
    findings,
    modelId: 'cxr-triage',
    modelVersion: '1.0.0',
    executionProvider: 'cpu',
    modality: 'CR',
    createdAt: 1,
    written: { pacs: false, fhir: false, metadata: false },
    notes: [],
    ...extra,
  };
}

/** A store whose clock ticks 1 ms per call, with one job per [uid, priority?, p?, modality?]. */
function seeded(rows: readonly [string, Priority | 'failed' | 'queued', number?, string?][]): { store: SqliteJobStore; now: () => number } {
  let t = 1_000;
  const now = (): number => ++t;
  const store = new SqliteJobStore(':memory:', now);
  for (const [uid, what, p, modality] of rows) {
    store.enqueue([ref(uid)]);
    if (what === 'queued') continue;
    store.claim(Number.MAX_SAFE_INTEGER);
    if (what === 'failed') {
      store.fail(uid, 'DICOM_UNREADABLE', 'not DICOM', undefined);
      continue;
    }
    store.saveResult(result(uid, what, p ?? 0.5, modality ? { modality } : {}));
    store.finish(uid, 'done', undefined);
  }
  return { store, now };
}

describe('SqliteJobStore worklist', () => {
  it('ranks by priority, then the highest probability, then waiting time (oldest first); results-less jobs last', () => {
    const { store } = seeded([
      ['1.1', 'routine', 0.2],
      ['1.2', 'urgent', 0.6],
      ['1.3', 'failed'],
      ['1.4', 'stat', 0.7],
      ['1.5', 'urgent', 0.9],
      ['1.6', 'urgent', 0.6],
      ['1.7', 'queued'],
    ]);
    expect(store.worklist().map((e) => [e.studyInstanceUID, e.priority ?? e.state])).toEqual([
      ['1.4', 'stat'],
      ['1.5', 'urgent'],
      ['1.2', 'urgent'],
      ['1.6', 'urgent'],
      ['1.1', 'routine'],
      ['1.3', 'failed'],
      ['1.7', 'queued'],
    ]);
    const failed = store.worklist({ state: ['failed'] });
    expect(failed).toEqual([
      { studyInstanceUID: '1.3', state: 'failed', reason: 'not DICOM', errorCode: 'DICOM_UNREADABLE', images: [], receivedAt: expect.any(Number), updatedAt: expect.any(Number) },
    ]);
  });

  it('filters by priority, state, modality and received time, and pages with a matching count', () => {
    const { store } = seeded([
      ['1.1', 'stat', 0.9, 'DX'],
      ['1.2', 'urgent', 0.6, 'cr'],
      ['1.3', 'routine', 0.1, 'CR'],
      ['1.4', 'failed'],
      ['1.5', 'stat', 0.8, 'CR'],
    ]);
    const uids = (q: Parameters<SqliteJobStore['worklist']>[0]): string[] => store.worklist(q).map((e) => e.studyInstanceUID);
    expect(uids({ priority: ['stat', 'urgent'] })).toEqual(['1.1', '1.5', '1.2']);
    expect(uids({ state: ['failed', 'done'], priority: ['routine'] })).toEqual(['1.3']);
    expect(uids({ modality: ['cr'] })).toEqual(['1.5', '1.2', '1.3']);
    expect(store.worklist({ modality: ['CR'] })[1]?.modality).toBe('CR');
    const third = store.worklist().find((e) => e.studyInstanceUID === '1.3')?.receivedAt as number;
    expect(uids({ since: third })).toEqual(['1.5', '1.3', '1.4']);
    expect(uids({ until: third })).toEqual(['1.1', '1.2']);
    expect(uids({ limit: 2 })).toEqual(['1.1', '1.5']);
    expect(uids({ limit: 2, offset: 2 })).toEqual(['1.2', '1.3']);
    expect(uids({ limit: 2, offset: 4 })).toEqual(['1.4']);
    expect(store.countWorklist()).toBe(5);
    expect(store.countWorklist({ priority: ['stat'] })).toBe(2);
    expect(store.countWorklist({ modality: ['CR'], state: ['done'] })).toBe(3);
    expect(store.countWorklist({ modality: ['DX', 'MR'] })).toBe(1);
  });

  it('shows a requeued study without its old priority, and its latest result again once done', () => {
    const { store } = seeded([['1.1', 'stat', 0.9], ['1.2', 'urgent', 0.6]]);
    store.requeue('1.1');
    expect(store.worklist().map((e) => [e.studyInstanceUID, e.priority ?? e.state])).toEqual([['1.2', 'urgent'], ['1.1', 'queued']]);
    store.claim(Number.MAX_SAFE_INTEGER);
    store.saveResult(result('1.1', 'routine', 0.2, { resultKey: 'key-1.1-b', createdAt: 2 }));
    store.finish('1.1', 'done', undefined);
    expect(store.worklist().map((e) => [e.studyInstanceUID, e.priority])).toEqual([['1.2', 'urgent'], ['1.1', 'routine']]);
    expect(store.worklist({ priority: ['stat'] })).toEqual([]);
  });
});

describe('SqliteJobStore study, requeue, feedback, images', () => {
  it('returns a study with its job and latest result, and undefined for an unknown one', () => {
    const { store } = seeded([['1.1', 'stat', 0.9], ['1.2', 'queued']]);
    expect(store.study('1.1')).toMatchObject({ job: { studyInstanceUID: '1.1', state: 'done' }, result: { resultKey: 'key-1.1', priority: 'stat' } });
    expect(store.study('1.2')).toEqual({ job: expect.objectContaining({ state: 'queued' }) });
    expect(store.study('9.9')).toBeUndefined();
  });

  it('requeues a failed study with its attempts and reason cleared; a running one runs again when it finishes', () => {
    const { store } = seeded([['1.1', 'failed'], ['1.2', 'stat', 0.9]]);
    expect(store.requeue('1.1')).toMatchObject({ state: 'queued', attempts: 0 });
    expect(store.get('1.1')?.reason).toBeUndefined();
    expect(store.get('1.1')?.errorCode).toBeUndefined();
    expect(store.claim(Number.MAX_SAFE_INTEGER)?.studyInstanceUID).toBe('1.1');
    expect(store.requeue('1.1')).toMatchObject({ state: 'running', attempts: 1 });
    store.finish('1.1', 'done', undefined);
    expect(store.get('1.1')?.state).toBe('queued');
    expect(store.requeue('9.9')).toBeUndefined();
  });

  it('stores feedback per study, oldest first, with the result it was about', () => {
    const { store } = seeded([['1.1', 'stat', 0.9], ['1.2', 'urgent', 0.6]]);
    const a = store.addFeedback({ studyInstanceUID: '1.1', findingCode: 'pneumothorax', verdict: 'accept', by: 'AB', resultKey: 'key-1.1' });
    store.addFeedback({ studyInstanceUID: '1.2', findingCode: 'pneumothorax', verdict: 'reject', note: 'skin fold', by: 'CD' });
    store.addFeedback({ studyInstanceUID: '1.1', findingCode: 'lung_nodule', verdict: 'reject', by: 'AB' });
    expect(a).toEqual({ id: expect.any(String), studyInstanceUID: '1.1', findingCode: 'pneumothorax', verdict: 'accept', by: 'AB', resultKey: 'key-1.1', createdAt: expect.any(Number) });
    expect(store.listFeedback('1.1').map((f) => [f.findingCode, f.verdict])).toEqual([['pneumothorax', 'accept'], ['lung_nodule', 'reject']]);
    expect(store.listFeedback('1.2')).toEqual([
      { id: expect.any(String), studyInstanceUID: '1.2', findingCode: 'pneumothorax', verdict: 'reject', note: 'skin fold', by: 'CD', createdAt: expect.any(Number) },
    ]);
    expect(store.listFeedback()).toHaveLength(3);
  });

  it('saves one image per study and kind (the last replaces), and lists the kinds on the worklist', () => {
    const { store } = seeded([['1.1', 'stat', 0.9], ['1.2', 'urgent', 0.6]]);
    store.saveImage('1.1', 'thumbnail', new Uint8Array([1, 2, 3]));
    store.saveImage('1.1', 'thumbnail', new Uint8Array([4, 5]), 'key-1.1');
    store.saveImage('1.1', 'saliency', Buffer.from([9]));
    expect(store.getImage('1.1', 'thumbnail')).toEqual({ studyInstanceUID: '1.1', kind: 'thumbnail', png: Buffer.from([4, 5]), resultKey: 'key-1.1', createdAt: expect.any(Number) });
    expect(store.getImage('1.1', 'saliency')?.png).toEqual(Buffer.from([9]));
    expect(store.getImage('1.2', 'thumbnail')).toBeUndefined();
    expect(store.worklist().map((e) => [e.studyInstanceUID, e.images])).toEqual([['1.1', ['thumbnail', 'saliency']], ['1.2', []]]);
  });

  it('migrates a version-1 database: the results already there rank on the worklist', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'store-')), 'v1.sqlite');
    const v1 = new Database(file);
    v1.exec(`CREATE TABLE jobs (study_uid TEXT PRIMARY KEY, orthanc_id TEXT, source TEXT NOT NULL, state TEXT NOT NULL,
       attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, reason TEXT, error_code TEXT,
       rerun INTEGER NOT NULL DEFAULT 0, timings TEXT, enqueued_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
     CREATE INDEX jobs_due ON jobs (state, next_attempt_at);
     CREATE TABLE results (result_key TEXT PRIMARY KEY, study_uid TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL);
     CREATE INDEX results_study ON results (study_uid, created_at);
     CREATE TABLE cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL);`);
    v1.pragma('user_version = 1');
    const job = v1.prepare(`INSERT INTO jobs (study_uid, source, state, next_attempt_at, enqueued_at, updated_at) VALUES (?, 'cli', 'done', 1, ?, 1)`);
    const res = v1.prepare(`INSERT INTO results (result_key, study_uid, body, created_at) VALUES (?, ?, ?, 1)`);
    for (const [uid, priority, p] of [['1.1', 'urgent', 0.6], ['1.2', 'stat', 0.9]] as const) {
      job.run(uid, uid === '1.1' ? 1 : 2);
      const { modality: _drop, ...old } = result(uid, priority, p); // version-1 results had no modality
      res.run(`key-${uid}`, uid, JSON.stringify(old));
    }
    v1.close();
    const store = new SqliteJobStore(file);
    expect(store.worklist().map((e) => [e.studyInstanceUID, e.priority])).toEqual([['1.2', 'stat'], ['1.1', 'urgent']]);
    store.close();
    const reopened = new Database(file);
    expect(reopened.pragma('user_version', { simple: true })).toBe(6);
    reopened.close();
  });
});
