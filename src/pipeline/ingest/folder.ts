/**
 * Ingest mode (d): a watched folder, for offline and edge use. DICOM Part 10 files dropped in
 * (any depth) are grouped by StudyInstanceUID; a study whose files have all stopped changing is
 * enqueued; once its job has ended, its files are settled (moved to `.done/`, deleted or kept;
 * a failed study's and unreadable files moved to the failed folder with the reason).
 *
 * The folder is polled (a scan every pass), not watched with fs.watch: inotify and friends miss
 * events on network shares (SMB, NFS), which is where edge drop folders often live.
 *
 * Crash safety comes from the order of things: files stay where they were dropped until their
 * job has ended (the job row is durable), and a scan is idempotent: the seen-set keeps each
 * study's fingerprint (its files' paths, sizes and mtimes), so a rescan after a restart enqueues
 * nothing already enqueued, while a study dropped again with changed files is enqueued again.
 */
import { logEvent } from '../../domain/log-events.ts';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { DicomFile, FolderStudy, ScannedFile, UnreadableFile } from '../../domain/folder.ts';
import type { Job } from '../../domain/records.ts';
import type { Store } from '../../state/ports.ts';

export const FOLDER_SEEN_SET = 'folder';

export type { DicomFile, FolderStudy, ScannedFile, UnreadableFile } from '../../domain/folder.ts';

export interface FolderPlan {
  studies: FolderStudy[];
  /** Unreadable files that stopped changing: not DICOM, or broken for good. */
  rejected: UnreadableFile[];
}

export type DoneAction = 'keep' | 'move' | 'delete';

export interface FolderOptions {
  stableAgeS: number;
  doneAction: DoneAction;
  seenRetentionDays: number;
  /** Shadow mode: the files are kept whatever doneAction says (nothing leaves the folder). */
  shadow: boolean;
}

/** The files' paths, sizes and mtimes: what makes a drop "the same" as one already seen. */
export function fingerprintOf(files: readonly Pick<ScannedFile, 'path' | 'size' | 'mtimeMs'>[]): string {
  const lines = files.map((f) => `${f.path}\t${f.size}\t${Math.floor(f.mtimeMs)}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

function dirOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/**
 * Groups a scan by study and says which studies are stable. A file still being copied may not
 * parse yet, so an unreadable file that is still changing holds back the studies beside it (same
 * directory) rather than letting them be enqueued without it; once it stops changing and still
 * does not parse, it is rejected.
 */
export function planFolder(files: readonly ScannedFile[], nowMs: number, stableAgeS: number): FolderPlan {
  const settled = (f: ScannedFile): boolean => nowMs - f.mtimeMs >= stableAgeS * 1000;
  const busyDirs = new Set<string>();
  const rejected: UnreadableFile[] = [];
  const byStudy = new Map<string, DicomFile[]>();
  for (const f of files) {
    if (f.kind === 'unreadable') {
      if (settled(f)) rejected.push(f);
      else busyDirs.add(dirOf(f.path));
      continue;
    }
    const list = byStudy.get(f.meta.StudyInstanceUID) ?? [];
    list.push(f);
    byStudy.set(f.meta.StudyInstanceUID, list);
  }
  const studies = [...byStudy.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([studyInstanceUID, list]) => {
      const sorted = [...list].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      return {
        studyInstanceUID,
        files: sorted,
        fingerprint: fingerprintOf(sorted),
        stable: sorted.every(settled) && !sorted.some((f) => busyDirs.has(dirOf(f.path))),
      };
    });
  rejected.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { studies, rejected };
}

/** What to do with a stable study's files that was not enqueued by this pass, given its job. */
export type Settlement = { action: 'wait' } | { action: 'keep' } | { action: 'done'; how: 'move' | 'delete' } | { action: 'failed'; reason: string };

/**
 * Queued or running: wait. Done or skipped (nothing to select is an answer too): doneAction.
 * Failed for good: aside to the failed folder with the reason, never deleted. `keep` and shadow
 * mode leave every file where it is.
 */
export function settlement(job: Pick<Job, 'state' | 'errorCode' | 'reason'> | undefined, options: Pick<FolderOptions, 'doneAction' | 'shadow'>): Settlement {
  if (job === undefined || job.state === 'queued' || job.state === 'running') return { action: 'wait' };
  if (options.shadow || options.doneAction === 'keep') return { action: 'keep' };
  if (job.state === 'failed') return { action: 'failed', reason: `${job.errorCode ?? 'INTERNAL'}: ${job.reason ?? 'failed'}` };
  return { action: 'done', how: options.doneAction };
}

/** The file system side of the folder mode (src/adapters/files/folder-watch.ts; a memory fake in tests). */
export interface FolderFs {
  /** Every regular file under the folder, any depth; dot-entries and the output folders are left out. */
  scan(): Promise<ScannedFile[]>;
  /** Moves a file (relative path) to `<done or failed folder>/<to>`, replacing what is there. */
  move(file: string, where: 'done' | 'failed', to: string): Promise<void>;
  remove(file: string): Promise<void>;
  /** Writes `<failed folder>/<to>`. */
  writeNote(to: string, text: string): Promise<void>;
}

export interface FolderPass {
  enqueued: number;
  /** Every study found (stable or not), for the study source's index. */
  studies: FolderStudy[];
  settled: number;
  rejected: number;
}

/**
 * One pass: scan, enqueue the stable studies not seen with these files, settle the files of
 * studies whose job has ended, put aside the unreadable files. Idempotent: a pass after a crash
 * (at any point) redoes what is missing and nothing twice.
 */
export async function pollFolder(
  fs: FolderFs,
  store: Store,
  options: FolderOptions,
  log: Logger,
  now: () => number = Date.now,
  onPlan?: (studies: readonly FolderStudy[]) => void,
): Promise<FolderPass> {
  const files = await fs.scan();
  const t = now();
  const plan = planFolder(files, t, options.stableAgeS);
  // The study source learns the files before any job for them exists: a worker may claim a job
  // the moment it is enqueued, while this pass is still settling others.
  onPlan?.(plan.studies);
  const stable = plan.studies.filter((s) => s.stable);
  // The look-ups come after enqueueUnseen: a study it did not enqueue has the fingerprint its job
  // saw, so whatever state that job reaches meanwhile is a state of a run on these very files.
  const fresh = new Set(
    (
      await store.enqueueUnseen(
        FOLDER_SEEN_SET,
        stable.map((s) => ({ ref: { studyInstanceUID: s.studyInstanceUID, source: 'folder' as const }, fingerprint: s.fingerprint })),
      )
    ).map((r) => r.studyInstanceUID),
  );
  const decisions: { study: FolderStudy; what: ReturnType<typeof settlement> }[] = [];
  for (const study of stable) {
    if (!fresh.has(study.studyInstanceUID)) decisions.push({ study, what: settlement(await store.get(study.studyInstanceUID), options) });
  }
  let settled = 0;
  for (const { study, what } of decisions) {
    if (what.action === 'wait' || what.action === 'keep') continue;
    const uid = study.studyInstanceUID;
    if (what.action === 'failed') {
      // The reason first: a crash between the two leaves the files in place and the next pass redoes both.
      await fs.writeNote(`${uid}/reason.txt`, `${what.reason}\n`);
      for (const f of study.files) await fs.move(f.path, 'failed', `${uid}/${f.path}`);
    } else {
      for (const f of study.files) await (what.how === 'delete' ? fs.remove(f.path) : fs.move(f.path, 'done', `${uid}/${f.path}`));
    }
    settled++;
    logEvent(log, 'ingest.folder.settled', { study: uid, files: study.files.length, outcome: what.action });
  }
  const keepAll = options.shadow || options.doneAction === 'keep';
  if (!keepAll) {
    for (const f of plan.rejected) {
      await fs.writeNote(`unreadable/${f.path}.reason.txt`, `${f.code}: ${f.message}\n`);
      await fs.move(f.path, 'failed', `unreadable/${f.path}`);
    }
  }
  // File names can carry patient data: counts and codes only.
  if (plan.rejected.length > 0) {
    const codes = [...new Set(plan.rejected.map((f) => f.code))];
    // Kept files are found again on every pass: not a warning each time.
    logEvent(log, 'ingest.folder.rejected', { count: plan.rejected.length, codes, movedAside: !keepAll }, keepAll ? 'debug' : undefined);
  }
  await store.pruneSeen(FOLDER_SEEN_SET, t - options.seenRetentionDays * 86_400_000);
  if (fresh.size > 0) logEvent(log, 'ingest.enqueued', { mode: 'folder', count: fresh.size, found: plan.studies.length });
  return { enqueued: fresh.size, studies: plan.studies, settled, rejected: keepAll ? 0 : plan.rejected.length };
}

/**
 * The folder mode as the service runs it: one FolderFs (which caches headers between scans), a
 * scan at most every `pollIntervalS`, and each scan's studies handed to the study source.
 */
export class FolderWatcher {
  private lastScanAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly fs: FolderFs,
    private readonly options: FolderOptions & { pollIntervalS?: number },
    private readonly onScan: (studies: readonly FolderStudy[]) => void,
  ) {}

  /** One pass, unless the last one was less than pollIntervalS ago (`force`: regardless). Returns how many studies were enqueued. */
  async pass(store: Store, log: Logger, force = false, now: () => number = Date.now): Promise<number> {
    const t = now();
    if (!force && this.options.pollIntervalS !== undefined && t - this.lastScanAt < this.options.pollIntervalS * 1000) return 0;
    this.lastScanAt = t;
    const result = await pollFolder(this.fs, store, this.options, log, now, this.onScan);
    return result.enqueued;
  }
}
