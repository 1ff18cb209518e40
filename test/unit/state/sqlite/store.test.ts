/**
 * The SQLite engine: every store contract suite, plus what only SQLite has (migrating a
 * version-1 file, reopening a file).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../../src/state/sqlite/index.ts';
import type { Store } from '../../../../src/state/ports.ts';
import type { StoreEngine } from '../contract/engine.ts';
import { jobQueueContract } from '../contract/jobs.contract.ts';
import { recordsContract } from '../contract/records.contract.ts';
import { verificationContract } from '../contract/verifications.contract.ts';
import { retractionContract } from '../contract/retractions.contract.ts';
import { result, worklistContract } from '../contract/worklist.contract.ts';

const files = new WeakMap<Store, string>();

const sqlite: StoreEngine = {
  name: 'sqlite',
  async open(clock) {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'store-')), 'jobs.sqlite');
    const store = openSqliteStore(file, clock ? { clock } : {});
    files.set(store, file);
    return store;
  },
  async reopen(store, clock) {
    const file = files.get(store)!;
    await store.close();
    const next = openSqliteStore(file, clock ? { clock } : {});
    files.set(next, file);
    return next;
  },
  async exec(store, sql) {
    const db = new Database(files.get(store)!);
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
  },
};

jobQueueContract(sqlite);
worklistContract(sqlite);
retractionContract(sqlite);
recordsContract(sqlite);
verificationContract(sqlite);

describe('sqlite only', () => {
  it('migrates a version-1 database: the results already there rank on the worklist', async () => {
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
    const store = openSqliteStore(file);
    expect((await store.worklist()).map((e) => [e.studyInstanceUID, e.priority])).toEqual([['1.2', 'stat'], ['1.1', 'urgent']]);
    await store.close();
    const reopened = new Database(file);
    expect(reopened.pragma('user_version', { simple: true })).toBe(10);
    reopened.close();
  });
});

describe('sqlite files are private', () => {
  it('a state folder it creates is 0700 and the database, -wal and -shm files 0600, whatever the umask', async () => {
    const old = process.umask(0o000);
    try {
      const dir = path.join(mkdtempSync(path.join(tmpdir(), 'modes-')), 'state');
      const file = path.join(dir, 'pacs-triage.sqlite');
      const store = openSqliteStore(file);
      await store.enqueue([{ studyInstanceUID: '1.2.3', source: 'cli' }]);
      const mode = (f: string): number => statSync(f).mode & 0o777;
      expect(mode(dir)).toBe(0o700);
      for (const f of [file, `${file}-wal`, `${file}-shm`]) expect(mode(f), f).toBe(0o600);
      await store.close();
    } finally {
      process.umask(old);
    }
  });
});
