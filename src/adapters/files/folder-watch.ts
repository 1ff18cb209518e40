/**
 * The file system side of the folder ingest mode (src/pipeline/ingest/folder.ts): scanning the
 * watched folder, moving files aside, and the study source and result sink that read pixels
 * from the dropped files and write results to a folder.
 */
import { chmod, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TriageError, asTriageError } from '../../domain/errors.ts';
import type { FhirResource, InstanceMeta } from '../../domain/types.ts';
import type { DicomFile, FolderStudy, ScannedFile } from '../../domain/folder.ts';
import { NeedMoreBytes, readDicomHeader } from '../../dicom/read.ts';
import { DEFAULT_DICOM_LIMITS, type DicomLimits } from '../../dicom/limits.ts';
import type { StoredResult } from '../../domain/records.ts';
import type { FhirClient } from '../fhir/client.ts';
import { FolderSink, privateDir } from './folder-io.ts';
import { isValidUid } from '../../domain/uids.ts';

/**
 * The header of a Part 10 file, up to the Pixel Data: grouping needs only the UIDs, and a file
 * without pixels (an SR, a key object) is still part of its study — selection skips it later.
 * Read by the one DICOM reader, with its limits (depth, lengths, inflation).
 */
export function readHeader(bytes: Uint8Array, limits: Partial<DicomLimits> = {}, partial = false): InstanceMeta {
  return checkedUid(readDicomHeader(bytes, { where: 'ingest.folder', limits, partial }));
}

/** Reads a header (from a prefix when `partial`): inline by default, or in a worker thread. */
export type HeaderReader = (bytes: Uint8Array, limits: Partial<DicomLimits>, partial: boolean) => Promise<InstanceMeta>;

function checkedUid(meta: InstanceMeta): InstanceMeta {
  // The UID names folders (.done/<uid>, the output folder): from a dropped file it is untrusted
  // input, and anything but a UID ("../..") must not become a path.
  if (!isValidUid(meta.StudyInstanceUID)) {
    throw new TriageError('DICOM_UNREADABLE', 'the StudyInstanceUID is not a valid UID (digits and dots, at most 64 characters)', { where: 'ingest.folder' });
  }
  return meta;
}

export interface FolderDirs {
  /** The watched folder. */
  root: string;
  /** Where processed files go (doneAction move): `<root>/.done` by default. */
  doneDir: string;
  /** Where unreadable files and failed studies go, with their reasons: `<root>/.failed` by default. */
  failedDir: string;
  /** Skipped by the scan when inside the root (results written there are not inputs). */
  outDir?: string;
}

/** The folder ingest's FolderFs port on the local file system (or a mounted share). */
export class LocalFolder {
  /** Headers already read, by path: a file is read again only when its size or mtime changes. */
  private readonly headers = new Map<string, { size: number; mtimeMs: number; file: ScannedFile }>();

  constructor(
    private readonly dirs: FolderDirs,
    private readonly limits: DicomLimits = DEFAULT_DICOM_LIMITS,
    private readonly readHeaderOf: HeaderReader = async (bytes, limits, partial) => readHeader(bytes, limits, partial),
  ) {}

  /**
   * The header of a dropped file, read from a growing prefix (64 KiB, then ×8) rather than the
   * whole file: a multi-gigabyte file (or a sparse one that claims to be) costs what its header
   * costs. Over limits.dicom.maxFileBytes it is refused unread.
   */
  private async header(full: string, size: number): Promise<InstanceMeta> {
    if (size > this.limits.maxFileBytes) {
      throw new TriageError('DICOM_TOO_LARGE', `the file has ${size} bytes; limits.dicom.maxFileBytes is ${this.limits.maxFileBytes}`, { where: 'ingest.folder' });
    }
    const handle = await open(full, 'r');
    try {
      for (let length = Math.min(size, 64 * 1024); ; length = Math.min(size, length * 8)) {
        const prefix = Buffer.alloc(length);
        const { bytesRead } = await handle.read(prefix, 0, length, 0);
        const partial = bytesRead < size;
        try {
          return checkedUid(await this.readHeaderOf(prefix.subarray(0, bytesRead), this.limits, partial));
        } catch (err) {
          if (!(err instanceof NeedMoreBytes) || !partial) throw err;
        }
      }
    } finally {
      await handle.close();
    }
  }

  private skipped(full: string): boolean {
    return [this.dirs.doneDir, this.dirs.failedDir, this.dirs.outDir].some((d) => d !== undefined && path.resolve(d) === path.resolve(full));
  }

  async scan(): Promise<ScannedFile[]> {
    const out: ScannedFile[] = [];
    const seen = new Set<string>();
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        // The root missing is a configuration problem; a subfolder removed meanwhile is not.
        if (rel === '') throw new TriageError('CONFIG_INVALID', `ingest.folder.path: cannot read ${dir}: ${(err as Error).message}`, { where: 'ingest.folder' });
        return;
      }
      for (const entry of entries) {
        // Dot-entries: .done, .failed, editors' and copy tools' temporary files.
        if (entry.name.startsWith('.')) continue;
        const full = path.join(dir, entry.name);
        const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (this.skipped(full)) continue;
        if (entry.isDirectory()) await walk(full, relPath);
        else if (entry.isFile()) {
          const file = await this.scanFile(full, relPath);
          if (file) {
            out.push(file);
            seen.add(relPath);
          }
        }
      }
    };
    await walk(this.dirs.root, '');
    for (const key of this.headers.keys()) if (!seen.has(key)) this.headers.delete(key);
    return out;
  }

  private async scanFile(full: string, relPath: string): Promise<ScannedFile | undefined> {
    let info;
    try {
      info = await stat(full);
    } catch {
      return undefined; // gone between readdir and stat
    }
    // mtime, as the fingerprint: a copy tool that keeps the source's mtime (cp -p, rsync -a)
    // makes a file still being written look old, so such tools must copy into a dot-folder
    // (ignored) and rename into place (README, folder mode).
    const changedMs = info.mtimeMs;
    const cached = this.headers.get(relPath);
    if (cached && cached.size === info.size && cached.mtimeMs === changedMs) return cached.file;
    const base = { path: relPath, size: info.size, mtimeMs: changedMs };
    let file: ScannedFile;
    try {
      file = { ...base, kind: 'dicom', meta: await this.header(full, info.size) };
    } catch (err) {
      const e = asTriageError(err, 'ingest.folder');
      file = { ...base, kind: 'unreadable', code: e.code, message: e.message };
    }
    this.headers.set(relPath, { size: info.size, mtimeMs: changedMs, file });
    return file;
  }

  private target(where: 'done' | 'failed', to: string): string {
    const dir = where === 'done' ? this.dirs.doneDir : this.dirs.failedDir;
    const full = path.resolve(dir, to);
    if (!full.startsWith(path.resolve(dir) + path.sep)) throw new TriageError('INTERNAL', `refusing to write outside ${where} folder`, { where: 'ingest.folder' });
    return full;
  }

  /**
   * Where `to` can go under the done or failed folder: a path component that an earlier file
   * already holds as a file (an unreadable `a`, then a folder `a/b.dcm`) is replaced by `a~1`,
   * `a~2`… instead of failing with EEXIST on every pass forever. Folders are created 0700.
   */
  private async placed(where: 'done' | 'failed', to: string): Promise<string> {
    const root = where === 'done' ? this.dirs.doneDir : this.dirs.failedDir;
    await privateDir(root);
    const parts = to.split('/');
    let dir = path.resolve(root);
    for (let i = 0; i < parts.length - 1; i++) {
      const name = parts[i] as string;
      for (let n = 0; ; n++) {
        const candidate = path.join(dir, n === 0 ? name : `${name}~${n}`);
        const info = await stat(candidate).catch(() => undefined);
        if (info === undefined) await privateDir(candidate);
        else if (!info.isDirectory()) continue;
        dir = candidate;
        break;
      }
    }
    return this.target(where, path.relative(path.resolve(root), path.join(dir, parts[parts.length - 1] as string)));
  }

  async move(file: string, where: 'done' | 'failed', to: string): Promise<void> {
    const from = path.join(this.dirs.root, file);
    const dest = await this.placed(where, to);
    try {
      await rename(from, dest);
    } catch (err) {
      // Another file system (failedDir on another mount): copy, flush, then remove.
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await writeFile(dest, await readFile(from), { mode: 0o600 });
      const handle = await open(dest, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rm(from);
    }
    // A moved file keeps the mode it was dropped with; the done and failed folders are private.
    await chmod(dest, 0o600);
    this.headers.delete(file);
  }

  async remove(file: string): Promise<void> {
    await rm(path.join(this.dirs.root, file), { force: true });
    this.headers.delete(file);
  }

  async writeNote(to: string, text: string): Promise<void> {
    const dest = await this.placed('failed', to);
    await writeFile(dest, text, { mode: 0o600 });
    await chmod(dest, 0o600);
  }
}

/** Where instances come from when the folder does not have them (the PACS): the pipeline's StudySource shape. */
export interface InstanceSource {
  instances(studyInstanceUID: string): Promise<InstanceMeta[]>;
  retrieve(instance: InstanceMeta): Promise<Uint8Array>;
}

/**
 * Instances from the watched folder's files; any other study from `fallback` (the PACS, when
 * one is configured beside the folder). The index is the latest scan's.
 */
export class FolderStudySource {
  private index = new Map<string, DicomFile[]>();
  private scanned = false;

  /**
   * `isFolderJob`: whether the study's job came from the folder. Such a study is never looked
   * up in the PACS (which would not have it, and would have it skipped, its files then settled
   * unprocessed); before the first scan after a start its files are not known yet, which is
   * retried, not failed.
   */
  constructor(
    private readonly root: string,
    private readonly fallback?: InstanceSource,
    private readonly isFolderJob: (studyInstanceUID: string) => Promise<boolean> = async () => true,
    private readonly maxFileBytes: number = DEFAULT_DICOM_LIMITS.maxFileBytes,
  ) {}

  update(studies: readonly FolderStudy[]): void {
    this.index = new Map(studies.map((s) => [s.studyInstanceUID, s.files]));
    this.scanned = true;
  }

  has(studyInstanceUID: string): boolean {
    return this.index.has(studyInstanceUID);
  }

  async instances(studyInstanceUID: string): Promise<InstanceMeta[]> {
    const files = this.index.get(studyInstanceUID);
    if (files) return files.map((f) => f.meta);
    if (this.fallback && !(await this.isFolderJob(studyInstanceUID))) return this.fallback.instances(studyInstanceUID);
    if (!this.scanned) {
      throw new TriageError('UPSTREAM_UNAVAILABLE', 'the watched folder has not been scanned since the start; the study is taken again after the first scan', { where: 'ingest.folder' });
    }
    throw new TriageError('NOT_FOUND', `study ${studyInstanceUID} has no files in the watched folder (moved or deleted since it was enqueued)`, { where: 'ingest.folder' });
  }

  async retrieve(instance: InstanceMeta): Promise<Uint8Array> {
    const hit = this.index.get(instance.StudyInstanceUID)?.find((f) => f.meta.SOPInstanceUID === instance.SOPInstanceUID);
    if (!hit) {
      if (this.fallback) return this.fallback.retrieve(instance);
      throw new TriageError('NOT_FOUND', `instance ${instance.SOPInstanceUID} is no longer in the watched folder`, { where: 'ingest.folder' });
    }
    // The scan already refused a file over limits.dicom.maxFileBytes; one that grew since is refused here.
    if (hit.size > this.maxFileBytes) throw new TriageError('DICOM_TOO_LARGE', `instance ${instance.SOPInstanceUID}: its file is over limits.dicom.maxFileBytes`, { where: 'ingest.folder' });
    try {
      const file = path.join(this.root, hit.path);
      if ((await stat(file)).size > this.maxFileBytes) throw new TriageError('DICOM_TOO_LARGE', `instance ${instance.SOPInstanceUID}: its file is over limits.dicom.maxFileBytes`, { where: 'ingest.folder' });
      return await readFile(file);
    } catch (err) {
      if (err instanceof TriageError) throw err;
      throw new TriageError('NOT_FOUND', `instance ${instance.SOPInstanceUID}: its file cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
        cause: err,
        where: 'ingest.folder',
      });
    }
  }
}

/**
 * Results of the folder mode when there is no PACS: the SR into `outDir/<StudyInstanceUID>/`
 * (as `analyze --out`), the FHIR transaction to the FHIR server when one is configured, else
 * beside the SR as JSON. The priority has no file of its own (the store and the API have it).
 */
export class FolderResultSink {
  private readonly files: FolderSink;

  constructor(
    outDir: string,
    private readonly fhir: FhirClient | undefined,
  ) {
    this.files = new FolderSink(outDir);
  }

  storeSr(studyInstanceUID: string, part10: Uint8Array): Promise<void> {
    return this.files.storeSr(studyInstanceUID, part10);
  }

  async writeFhir(studyInstanceUID: string, bundle: FhirResource): Promise<string | undefined> {
    if (!this.fhir) return this.files.writeFhir(studyInstanceUID, bundle);
    const answer = (await this.fhir.transaction(bundle)) as { entry?: { response?: { location?: string } }[] };
    const index = ((bundle['entry'] as { resource?: FhirResource }[] | undefined) ?? []).findIndex((e) => e.resource?.resourceType === 'RiskAssessment');
    // "RiskAssessment/<id>/_history/<v>" → "RiskAssessment/<id>"
    return answer.entry?.[index]?.response?.location?.split('/').slice(0, 2).join('/');
  }

  setPriority(study: InstanceMeta, result: StoredResult): Promise<void> {
    return this.files.setPriority(study, result);
  }
}
