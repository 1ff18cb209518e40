/**
 * Ingest mode (d), the watched folder, end to end through `run-once` with no PACS: the demo
 * studies dropped into a folder (nested, with a non-DICOM file among them), SR files written
 * to the output folder, the inputs settled into .done/ and the stray file put aside with its
 * reason; then a second run, a re-drop, a restart after a crash, and FHIR results sent to a
 * real (sandbox) FHIR server. No Orthanc is needed.
 */
import { copyFileSync, type Dirent, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalFolder } from '../../src/adapters/files/folder-watch.ts';
import { readPart10 } from '../../src/dicom/part10.ts';
import { pollFolder } from '../../src/pipeline/ingest/folder.ts';
import { startFhirServer, type RunningFhirServer } from '../../src/sandbox/fhir-server.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import { cli } from '../harness/cli.ts';

const DEMO = path.resolve('test/fixtures/demo');
const DEMO_FILES = readdirSync(path.join(DEMO, 'dicom')).filter((f) => f.endsWith('.dcm')).sort();
const UID_ROOT = '1.2.826.0.1.3680043.10.999';

/** Every file under dir (relative, sorted). */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

/** Copies a file and dates it a minute back, as a copy finished a while ago. */
function drop(from: string, to: string): void {
  mkdirSync(path.dirname(to), { recursive: true });
  copyFileSync(from, to);
  const then = new Date(Date.now() - 60_000);
  utimesSync(to, then, then);
}

function studyUidOf(file: string): string {
  return String(readPart10(readFileSync(file))['StudyInstanceUID']);
}

function setup(name: string, extra: Record<string, unknown> = {}): { root: string; watch: string; out: string; config: string; store: string } {
  const root = mkdtempSync(path.join(tmpdir(), `pacs-triage-folder-${name}-`));
  const watch = path.join(root, 'in');
  const out = path.join(root, 'out');
  const store = path.join(root, 'jobs.sqlite');
  const config = path.join(root, 'config.json');
  mkdirSync(watch);
  writeFileSync(config, JSON.stringify({ uidRoot: UID_ROOT, store: { path: store }, ingest: { modes: ['folder'], folder: { path: watch, outDir: out } }, ...extra }));
  return { root, watch, out, config, store };
}

describe('ingest (d): a watched folder, no PACS', () => {
  const uids = new Map(DEMO_FILES.map((f) => [f, studyUidOf(path.join(DEMO, 'dicom', f))]));
  let env: ReturnType<typeof setup>;

  beforeAll(() => {
    env = setup('main');
    DEMO_FILES.forEach((f, i) => drop(path.join(DEMO, 'dicom', f), path.join(env.watch, i % 2 === 0 ? 'ward-a' : 'ward-b/day-1', f)));
    drop(path.join(DEMO, 'README.md'), path.join(env.watch, 'ward-a', 'notes.txt'));
  });

  it('run-once: one SR per study in outDir, the inputs in .done/<uid>/, the stray file in .failed with its reason', async () => {
    const run = await cli(['run-once', '--config', env.config, '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as { enqueued: number; done: number; skipped: number; failed: number };
    expect(summary).toMatchObject({ enqueued: DEMO_FILES.length, done: DEMO_FILES.length, skipped: 0, failed: 0 });

    const expectedOut = [...uids.values()].map((uid) => `${uid}/sr.dcm`).sort();
    expect(tree(env.out)).toEqual(expectedOut);
    for (const uid of uids.values()) {
      const sr = readPart10(readFileSync(path.join(env.out, uid, 'sr.dcm')));
      expect(sr['StudyInstanceUID']).toBe(uid);
      expect(sr['Modality']).toBe('SR');
      expect(String(sr['SOPInstanceUID'])).toMatch(new RegExp(`^${UID_ROOT.replaceAll('.', '\\.')}\\.`));
    }

    const expectedDone = DEMO_FILES.map((f, i) => `.done/${uids.get(f)}/${i % 2 === 0 ? 'ward-a' : 'ward-b/day-1'}/${f}`);
    expect(tree(env.watch)).toEqual(
      [...expectedDone, '.failed/unreadable/ward-a/notes.txt', '.failed/unreadable/ward-a/notes.txt.reason.txt'].sort(),
    );
    expect(readFileSync(path.join(env.watch, '.failed/unreadable/ward-a/notes.txt.reason.txt'), 'utf8')).toMatch(
      /^DICOM_UNREADABLE: not a DICOM Part 10 file: no "DICM" prefix/,
    );

    const store = openSqliteStore(env.store);
    try {
      expect((await store.jobs()).map((j) => [j.studyInstanceUID, j.source, j.state]).sort()).toEqual([...uids.values()].map((u) => [u, 'folder', 'done']).sort());
      // No FHIR server: no FHIR result, and the result says why.
      expect((await store.latestResult([...uids.values()][0] ?? ''))?.notes).toEqual(['fhir skipped: no FHIR server configured']);
    } finally {
      await store.close();
    }
  });

  it('a second run finds nothing and writes nothing', async () => {
    const before = tree(env.out).map((f) => statSync(path.join(env.out, f)).mtimeMs);
    const run = await cli(['run-once', '--config', env.config, '--json']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ enqueued: 0, done: 0, skipped: 0, failed: 0, outcomes: [] });
    expect(tree(env.out).map((f) => statSync(path.join(env.out, f)).mtimeMs)).toEqual(before);
  });

  it('a study dropped again unchanged is settled without processing; changed, it is processed again (same inputs: unchanged result)', async () => {
    const f = DEMO_FILES[0] as string;
    const uid = uids.get(f) as string;
    const done = path.join(env.watch, '.done', uid, 'ward-a', f);
    const back = path.join(env.watch, 'ward-a', f);
    copyFileSync(done, back);
    const { mtime } = statSync(done);
    utimesSync(back, mtime, mtime);
    const srBefore = statSync(path.join(env.out, uid, 'sr.dcm')).mtimeMs;

    const unchanged = await cli(['run-once', '--config', env.config, '--json']);
    expect(JSON.parse(unchanged.stdout)).toMatchObject({ enqueued: 0, done: 0 });
    expect(existsSync(back)).toBe(false);

    // Same pixels under a new name: a new fingerprint, so processed; the result key is the same, so nothing is written.
    drop(done, path.join(env.watch, 'again', f));
    const changed = await cli(['run-once', '--config', env.config, '--json']);
    const out = JSON.parse(changed.stdout) as { enqueued: number; done: number; outcomes: { unchanged?: boolean }[] };
    expect(out).toMatchObject({ enqueued: 1, done: 1 });
    expect(out.outcomes[0]?.unchanged).toBe(true);
    expect(statSync(path.join(env.out, uid, 'sr.dcm')).mtimeMs).toBe(srBefore);
    expect(existsSync(path.join(env.watch, '.done', uid, 'again', f))).toBe(true);
  });
});

describe('ingest (d): crash safety', () => {
  it('a study enqueued before a crash, and one whose worker died mid-job, are both processed after the restart', async () => {
    const env = setup('crash');
    const [a, b] = DEMO_FILES as [string, string];
    drop(path.join(DEMO, 'dicom', a), path.join(env.watch, a));
    drop(path.join(DEMO, 'dicom', b), path.join(env.watch, b));
    // The "first process": scans and enqueues both, claims one with a short lease, and dies.
    const store = openSqliteStore(env.store);
    const folder = new LocalFolder({ root: env.watch, doneDir: path.join(env.watch, '.done'), failedDir: path.join(env.watch, '.failed'), outDir: env.out });
    const pass = await pollFolder(folder, store, { stableAgeS: 5, doneAction: 'move', seenRetentionDays: 30, shadow: false }, pino({ level: 'silent' }));
    expect(pass.enqueued).toBe(2);
    const claimed = await store.claim(Date.now(), { owner: 'dead-worker', leaseMs: 1 });
    expect(claimed?.state).toBe('running');
    await store.close();
    expect(tree(env.watch)).toEqual([a, b].sort());
    await new Promise((r) => setTimeout(r, 20));

    const run = await cli(['run-once', '--config', env.config, '--json']);
    expect(JSON.parse(run.stdout)).toMatchObject({ enqueued: 0, done: 2, failed: 0 });
    expect(tree(env.out)).toHaveLength(2);
    expect(tree(env.watch).every((f) => f.startsWith('.done/'))).toBe(true);
  });
});

describe('ingest (d) with a FHIR server', () => {
  let fhir: RunningFhirServer;
  beforeAll(async () => {
    fhir = await startFhirServer();
    await fhir.seed(JSON.parse(readFileSync(path.join(DEMO, 'fhir-bundle.json'), 'utf8')));
  });
  afterAll(async () => {
    await fhir?.close();
  });

  it('reads the clinical text from it and writes the RiskAssessment there; the SR still goes to outDir', async () => {
    const env = setup('fhir', { fhir: { baseUrl: fhir.url } });
    const f = DEMO_FILES[1] as string;
    drop(path.join(DEMO, 'dicom', f), path.join(env.watch, f));
    const run = await cli(['run-once', '--config', env.config, '--json']);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toMatchObject({ enqueued: 1, done: 1, failed: 0 });
    const uid = studyUidOf(path.join(DEMO, 'dicom', f));
    expect(tree(env.out)).toEqual([`${uid}/sr.dcm`]);
    const res = await fetch(`${fhir.url}/RiskAssessment?_count=50`);
    const bundle = (await res.json()) as { entry?: { resource: { identifier?: { value?: string }[] } }[] };
    expect(bundle.entry ?? []).toHaveLength(1);
  });
});
