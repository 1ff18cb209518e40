import type { Store } from '../../../../src/state/ports.ts';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import {
  fingerprintOf,
  FolderWatcher,
  planFolder,
  pollFolder,
  settlement,
  type FolderFs,
  type FolderOptions,
  type ScannedFile,
} from '../../../../src/pipeline/ingest/folder.ts';
import { openSqliteStore } from '../../../../src/state/sqlite/index.ts';

const log = pino({ level: 'silent' });
const NOW = Date.parse('2026-01-10T12:00:00Z');
const S = 1000;

function dicom(path: string, study: string, ageS: number, size = 100): ScannedFile {
  return { path, size, mtimeMs: NOW - ageS * S, kind: 'dicom', meta: { StudyInstanceUID: study, SeriesInstanceUID: `${study}.1`, SOPInstanceUID: `${study}.1.${path.length}`, SOPClassUID: '1.2.840.10008.5.1.4.1.1.1' } };
}
function junk(path: string, ageS: number): ScannedFile {
  return { path, size: 5, mtimeMs: NOW - ageS * S, kind: 'unreadable', code: 'DICOM_UNREADABLE', message: 'not a DICOM Part 10 file' };
}

/** A folder in memory: what the tests drop in, and every move, removal and note the pass made. */
class MemoryFolder implements FolderFs {
  files = new Map<string, ScannedFile>();
  done = new Map<string, ScannedFile>();
  failed = new Map<string, ScannedFile>();
  notes = new Map<string, string>();
  removed: string[] = [];

  drop(...files: ScannedFile[]): void {
    for (const f of files) this.files.set(f.path, f);
  }
  async scan(): Promise<ScannedFile[]> {
    return [...this.files.values()];
  }
  async move(file: string, where: 'done' | 'failed', to: string): Promise<void> {
    const f = this.files.get(file);
    if (!f) throw new Error(`no ${file}`);
    this.files.delete(file);
    (where === 'done' ? this.done : this.failed).set(to, f);
  }
  async remove(file: string): Promise<void> {
    this.files.delete(file);
    this.removed.push(file);
  }
  async writeNote(to: string, text: string): Promise<void> {
    this.notes.set(to, text);
  }
}

const OPTIONS: FolderOptions = { stableAgeS: 5, doneAction: 'move', seenRetentionDays: 30, shadow: false };

describe('planFolder: grouping and stability', () => {
  it('groups by StudyInstanceUID across directories, files sorted by path; stable once every file is stableAgeS old', () => {
    const plan = planFolder([dicom('b/2.dcm', '1.2.3', 10), dicom('a/1.dcm', '1.2.3', 6), dicom('c/x.dcm', '1.2.4', 4)], NOW, 5);
    expect(plan.studies.map((s) => [s.studyInstanceUID, s.files.map((f) => f.path), s.stable])).toEqual([
      ['1.2.3', ['a/1.dcm', 'b/2.dcm'], true],
      ['1.2.4', ['c/x.dcm'], false],
    ]);
    expect(plan.rejected).toEqual([]);
  });

  it('a file exactly stableAgeS old counts as settled', () => {
    expect(planFolder([dicom('a.dcm', '1.2', 5)], NOW, 5).studies[0]?.stable).toBe(true);
    expect(planFolder([dicom('a.dcm', '1.2', 4.999)], NOW, 5).studies[0]?.stable).toBe(false);
  });

  it('an unreadable file still being written holds back the studies in its directory only; once settled it is rejected', () => {
    const files = [dicom('in/1.dcm', '1.2.3', 60), junk('in/partial.dcm', 1), dicom('other/1.dcm', '1.2.4', 60)];
    const busy = planFolder(files, NOW, 5);
    expect(busy.studies.map((s) => [s.studyInstanceUID, s.stable])).toEqual([
      ['1.2.3', false],
      ['1.2.4', true],
    ]);
    expect(busy.rejected).toEqual([]);
    const later = planFolder(files, NOW + 10 * S, 5);
    expect(later.studies.every((s) => s.stable)).toBe(true);
    expect(later.rejected.map((f) => f.path)).toEqual(['in/partial.dcm']);
  });

  it('the fingerprint follows paths, sizes and mtimes, not the order of the scan', () => {
    const a = dicom('a.dcm', '1.2', 10);
    const b = dicom('b.dcm', '1.2', 10);
    expect(fingerprintOf([a, b])).toBe(fingerprintOf([b, a]));
    expect(fingerprintOf([a, b])).not.toBe(fingerprintOf([a]));
    expect(fingerprintOf([a])).not.toBe(fingerprintOf([{ ...a, size: 101 }]));
    expect(fingerprintOf([a])).not.toBe(fingerprintOf([{ ...a, mtimeMs: a.mtimeMs + 1000 }]));
    expect(fingerprintOf([a])).not.toBe(fingerprintOf([{ ...a, path: 'c.dcm' }]));
  });
});

describe('settlement: what happens to a study whose job has ended', () => {
  it('waits while queued or running; done and skipped take doneAction; failed goes aside with its reason', () => {
    expect(settlement(undefined, OPTIONS)).toEqual({ action: 'wait' });
    expect(settlement({ state: 'queued' }, OPTIONS)).toEqual({ action: 'wait' });
    expect(settlement({ state: 'running' }, OPTIONS)).toEqual({ action: 'wait' });
    expect(settlement({ state: 'done' }, OPTIONS)).toEqual({ action: 'done', how: 'move' });
    expect(settlement({ state: 'skipped', reason: 'nothing selected' }, { ...OPTIONS, doneAction: 'delete' })).toEqual({ action: 'done', how: 'delete' });
    expect(settlement({ state: 'failed', errorCode: 'DICOM_UNSUPPORTED_SYNTAX', reason: 'transfer syntax 1.2.3' }, { ...OPTIONS, doneAction: 'delete' })).toEqual({
      action: 'failed',
      reason: 'DICOM_UNSUPPORTED_SYNTAX: transfer syntax 1.2.3',
    });
  });

  it('keep and shadow mode leave every file in place', () => {
    expect(settlement({ state: 'failed', errorCode: 'X' }, { ...OPTIONS, doneAction: 'keep' })).toEqual({ action: 'keep' });
    expect(settlement({ state: 'done' }, { ...OPTIONS, shadow: true })).toEqual({ action: 'keep' });
  });
});

describe('pollFolder with a job store', () => {
  const finish = async (store: Store, uid: string): Promise<void> => {
    const job = await store.claim(NOW + 1, undefined, uid);
    if (!job) throw new Error(`cannot claim ${uid}`);
    await store.finish(uid, 'done', undefined);
  };

  it('enqueues a stable study once; settles its files into .done/<uid>/ after the job is done; nothing twice', async () => {
    const fs = new MemoryFolder();
    const store = openSqliteStore(':memory:', { clock: () => NOW });
    fs.drop(dicom('a/1.dcm', '1.2.3', 10), dicom('a/2.dcm', '1.2.3', 10), dicom('b/1.dcm', '1.2.4', 1));
    const first = await pollFolder(fs, store, OPTIONS, log, () => NOW);
    expect(first).toMatchObject({ enqueued: 1, settled: 0, rejected: 0 });
    expect((await store.jobs()).map((j) => [j.studyInstanceUID, j.source, j.state])).toEqual([['1.2.3', 'folder', 'queued']]);
    // A rescan (or a restart) with the job still queued: nothing enqueued, nothing moved.
    expect(await pollFolder(fs, store, OPTIONS, log, () => NOW)).toMatchObject({ enqueued: 0, settled: 0 });
    expect(fs.files.size).toBe(3);

    await finish(store, '1.2.3');
    const after = await pollFolder(fs, store, OPTIONS, log, () => NOW + 10 * S);
    expect(after).toMatchObject({ enqueued: 1, settled: 1 }); // 1.2.4 became stable meanwhile
    expect([...fs.done.keys()]).toEqual(['1.2.3/a/1.dcm', '1.2.3/a/2.dcm']);
    expect([...fs.files.keys()]).toEqual(['b/1.dcm']);
  });

  it('a re-dropped unchanged study is not enqueued again (its files are settled); a changed one is', async () => {
    const fs = new MemoryFolder();
    const store = openSqliteStore(':memory:', { clock: () => NOW });
    const file = dicom('x.dcm', '1.2.5', 10);
    fs.drop(file);
    await pollFolder(fs, store, OPTIONS, log, () => NOW);
    await finish(store, '1.2.5');
    await pollFolder(fs, store, OPTIONS, log, () => NOW);
    expect(fs.files.size).toBe(0);

    fs.drop(file);
    expect(await pollFolder(fs, store, OPTIONS, log, () => NOW)).toMatchObject({ enqueued: 0, settled: 1 });
    expect((await store.get('1.2.5'))?.state).toBe('done');

    fs.drop({ ...file, size: 200 });
    expect(await pollFolder(fs, store, OPTIONS, log, () => NOW)).toMatchObject({ enqueued: 1, settled: 0 });
    expect((await store.get('1.2.5'))?.state).toBe('queued');
  });

  it('a study that gains a file before it is settled is enqueued again rather than settled', async () => {
    const fs = new MemoryFolder();
    const store = openSqliteStore(':memory:', { clock: () => NOW });
    fs.drop(dicom('s/1.dcm', '1.2.6', 10));
    await pollFolder(fs, store, OPTIONS, log, () => NOW);
    await finish(store, '1.2.6');
    fs.drop(dicom('s/2.dcm', '1.2.6', 10));
    expect(await pollFolder(fs, store, OPTIONS, log, () => NOW)).toMatchObject({ enqueued: 1, settled: 0 });
    expect(fs.files.size).toBe(2);
  });

  it('a failed study goes to the failed folder with its reason; unreadable files each with theirs', async () => {
    const fs = new MemoryFolder();
    const store = openSqliteStore(':memory:', { clock: () => NOW });
    fs.drop(dicom('s/1.dcm', '1.2.7', 10), junk('notes/readme.txt', 10));
    expect(await pollFolder(fs, store, { ...OPTIONS, doneAction: 'delete' }, log, () => NOW)).toMatchObject({ enqueued: 1, rejected: 1 });
    expect([...fs.failed.keys()]).toEqual(['unreadable/notes/readme.txt']);
    expect(fs.notes.get('unreadable/notes/readme.txt.reason.txt')).toBe('DICOM_UNREADABLE: not a DICOM Part 10 file\n');

    await store.claim(NOW + 1, undefined, '1.2.7');
    await store.fail('1.2.7', 'DICOM_UNSUPPORTED_SYNTAX', 'transfer syntax 1.2.840.10008.1.2.4.100 (MPEG2) is compressed', undefined);
    expect(await pollFolder(fs, store, { ...OPTIONS, doneAction: 'delete' }, log, () => NOW)).toMatchObject({ settled: 1 });
    expect(fs.removed).toEqual([]); // never deleted: it was not processed
    expect(fs.failed.has('1.2.7/s/1.dcm')).toBe(true);
    expect(fs.notes.get('1.2.7/reason.txt')).toBe('DICOM_UNSUPPORTED_SYNTAX: transfer syntax 1.2.840.10008.1.2.4.100 (MPEG2) is compressed\n');
  });

  it('a job that will be retried keeps its files in place', async () => {
    const fs = new MemoryFolder();
    const store = openSqliteStore(':memory:', { clock: () => NOW });
    fs.drop(dicom('r.dcm', '1.2.8', 10));
    await pollFolder(fs, store, OPTIONS, log, () => NOW);
    await store.claim(NOW + 1, undefined, '1.2.8');
    await store.fail('1.2.8', 'UPSTREAM_UNAVAILABLE', 'fhir down', NOW + 60 * S);
    expect(await pollFolder(fs, store, OPTIONS, log, () => NOW)).toMatchObject({ enqueued: 0, settled: 0 });
    expect(fs.files.size).toBe(1);
  });

  it('doneAction delete removes a done study\'s files; keep and shadow move nothing, not even unreadable files', async () => {
    const fs = new MemoryFolder();
    const store = openSqliteStore(':memory:', { clock: () => NOW });
    fs.drop(dicom('d.dcm', '1.2.9', 10));
    await pollFolder(fs, store, { ...OPTIONS, doneAction: 'delete' }, log, () => NOW);
    await finish(store, '1.2.9');
    await pollFolder(fs, store, { ...OPTIONS, doneAction: 'delete' }, log, () => NOW);
    expect(fs.removed).toEqual(['d.dcm']);

    for (const options of [{ ...OPTIONS, doneAction: 'keep' as const }, { ...OPTIONS, shadow: true }]) {
      const kept = new MemoryFolder();
      const s = openSqliteStore(':memory:', { clock: () => NOW });
      kept.drop(dicom('k.dcm', '1.2.10', 10), junk('j.bin', 10));
      expect(await pollFolder(kept, s, options, log, () => NOW)).toMatchObject({ enqueued: 1, rejected: 0 });
      await finish(s, '1.2.10');
      expect(await pollFolder(kept, s, options, log, () => NOW)).toMatchObject({ enqueued: 0, settled: 0 });
      expect([...kept.files.keys()]).toEqual(['k.dcm', 'j.bin']);
      expect(kept.notes.size + kept.failed.size + kept.done.size).toBe(0);
    }
  });

  it('FolderWatcher scans at most every pollIntervalS unless forced, and hands each scan to the source', async () => {
    const fs = new MemoryFolder();
    const store = openSqliteStore(':memory:', { clock: () => NOW });
    fs.drop(dicom('w.dcm', '1.2.11', 10));
    const scans: string[][] = [];
    const watcher = new FolderWatcher(fs, { ...OPTIONS, pollIntervalS: 30 }, (studies) => scans.push(studies.map((s) => s.studyInstanceUID)));
    let t = NOW;
    expect(await watcher.pass(store, log, false, () => t)).toBe(1);
    t += 10 * S;
    expect(await watcher.pass(store, log, false, () => t)).toBe(0);
    expect(scans).toEqual([['1.2.11']]);
    await watcher.pass(store, log, true, () => t);
    expect(scans).toHaveLength(2);
  });
});
