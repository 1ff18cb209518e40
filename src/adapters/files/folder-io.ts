import { existsSync } from 'node:fs';
import { access, chmod, constants as fsConstants, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TriageError, asTriageError } from '../../domain/errors.ts';
import type { FhirResource, InstanceMeta } from '../../domain/types.ts';
import { readDicomHeader } from '../../dicom/index.ts';
import { DEFAULT_DICOM_LIMITS, type DicomLimits } from '../../dicom/limits.ts';
import type { StoredResult } from '../../domain/records.ts';

export interface FileProblem {
  file: string;
  code: string;
  message: string;
}

async function listFiles(input: string): Promise<string[]> {
  const info = await stat(input).catch((err: NodeJS.ErrnoException) => {
    throw new TriageError('USAGE', `cannot read ${input}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  });
  if (info.isFile()) return [input];
  const out: string[] = [];
  for (const entry of (await readdir(input, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(input, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(full)));
    else if (entry.isFile() && !entry.name.startsWith('.') && !/\.(json|md|txt)$/i.test(entry.name)) out.push(full);
  }
  return out;
}

/**
 * Study instances from files on disk (`analyze`, offline and edge use). Files that are not
 * readable DICOM are reported, each with its named error, and do not stop the others.
 */
export class FileStudySource {
  private readonly byStudy = new Map<string, { meta: InstanceMeta; file: string }[]>();
  readonly problems: FileProblem[] = [];

  static async open(inputs: readonly string[], limits: DicomLimits = DEFAULT_DICOM_LIMITS): Promise<FileStudySource> {
    const source = new FileStudySource();
    for (const input of inputs) {
      for (const file of await listFiles(input)) {
        try {
          const size = (await stat(file)).size;
          if (size > limits.maxFileBytes) throw new TriageError('DICOM_TOO_LARGE', `the file has ${size} bytes; limits.dicom.maxFileBytes is ${limits.maxFileBytes}`);
          const meta = readDicomHeader(await readFile(file), { limits, where: 'analyze' });
          if (!meta.StudyInstanceUID) throw new TriageError('DICOM_UNREADABLE', 'no StudyInstanceUID');
          const list = source.byStudy.get(meta.StudyInstanceUID) ?? [];
          list.push({ meta, file });
          source.byStudy.set(meta.StudyInstanceUID, list);
        } catch (err) {
          const e = asTriageError(err);
          source.problems.push({ file, code: e.code, message: e.message });
        }
      }
    }
    return source;
  }

  studies(): string[] {
    return [...this.byStudy.keys()];
  }

  async instances(studyInstanceUID: string): Promise<InstanceMeta[]> {
    return (this.byStudy.get(studyInstanceUID) ?? []).map((i) => i.meta);
  }

  async retrieve(instance: InstanceMeta): Promise<Uint8Array> {
    const hit = this.byStudy.get(instance.StudyInstanceUID)?.find((i) => i.meta.SOPInstanceUID === instance.SOPInstanceUID);
    if (!hit) throw new TriageError('NOT_FOUND', `instance ${instance.SOPInstanceUID} is not among the input files`);
    return readFile(hit.file);
  }
}

/** A folder of ours: created 0700, and made 0700 when it already exists (it holds patients' files). */
export async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** Writes a file only its owner can read: results name patients. */
async function privateFile(file: string, data: string | Uint8Array): Promise<void> {
  await writeFile(file, data, { mode: 0o600 });
  await chmod(file, 0o600);
}

/** Results as files: `<out>/<StudyInstanceUID>/sr.dcm`, `risk-assessment.json`, `fhir-transaction.json`. */
export class FolderSink {
  readonly written = new Map<string, { sr?: string; riskAssessment?: string }>();

  constructor(private readonly outDir: string) {}

  /**
   * A sink whose folder exists (created 0700 when it did not) and can be written, checked before
   * the model runs: a folder that cannot take the results is the caller's mistake (USAGE, naming
   * the folder and why), not a failure of every study after its inference.
   */
  static async open(outDir: string): Promise<FolderSink> {
    try {
      if (!existsSync(outDir)) await privateDir(outDir);
      const info = await stat(outDir);
      if (!info.isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
      await access(outDir, fsConstants.W_OK | fsConstants.X_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOTDIR' ? 'it, or a folder above it, is a file' : e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' : e.code === 'EROFS' ? 'read-only file system' : (e.code ?? e.message);
      throw new TriageError('USAGE', `--out ${outDir}: cannot write results there (${why})`, { cause: err, where: 'analyze.out' });
    }
    return new FolderSink(outDir);
  }

  /** How many SR and RiskAssessment files were written. */
  get files(): { sr: number; riskAssessment: number } {
    const all = [...this.written.values()];
    return { sr: all.filter((w) => w.sr).length, riskAssessment: all.filter((w) => w.riskAssessment).length };
  }

  private async dir(studyInstanceUID: string): Promise<string> {
    // An output folder we create is ours (0700); one the operator made keeps its mode.
    if (!existsSync(this.outDir)) await privateDir(this.outDir);
    const dir = path.join(this.outDir, studyInstanceUID);
    await privateDir(dir);
    return dir;
  }

  async storeSr(studyInstanceUID: string, part10: Uint8Array): Promise<void> {
    const file = path.join(await this.dir(studyInstanceUID), 'sr.dcm');
    await privateFile(file, part10);
    this.written.set(studyInstanceUID, { ...this.written.get(studyInstanceUID), sr: file });
  }

  async writeFhir(studyInstanceUID: string, bundle: FhirResource): Promise<string | undefined> {
    const entries = (bundle['entry'] as { resource?: FhirResource }[] | undefined) ?? [];
    const risk = entries.find((e) => e.resource?.resourceType === 'RiskAssessment')?.resource;
    const dir = await this.dir(studyInstanceUID);
    await privateFile(path.join(dir, 'fhir-transaction.json'), JSON.stringify(bundle, null, 2));
    const file = path.join(dir, 'risk-assessment.json');
    await privateFile(file, JSON.stringify(risk ?? {}, null, 2));
    this.written.set(studyInstanceUID, { ...this.written.get(studyInstanceUID), riskAssessment: file });
    return undefined;
  }

  async setPriority(_study: InstanceMeta, _result: StoredResult): Promise<void> {
    // The priority is printed in the worklist and stored in the result; no file of its own.
  }
}
