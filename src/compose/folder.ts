/** The folder ingest mode's parts, wired: the watcher (pipeline), the local folder, its study source and result sink (adapters). */
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import type { FhirClient } from '../adapters/fhir/client.ts';
import { FolderResultSink, FolderStudySource, LocalFolder, type FolderDirs, type HeaderReader } from '../adapters/files/folder-watch.ts';
import { FolderWatcher } from '../pipeline/ingest/folder.ts';
import type { StudySource } from '../pipeline/ports.ts';

export interface FolderIngest {
  watcher: FolderWatcher;
  /** The study source for every job: the folder's files, else `pacsSource`. */
  source: FolderStudySource;
  /** Where results go when there is no PACS; undefined with a PACS (results go there as usual). */
  sink: FolderResultSink | undefined;
}

/** The folder mode's parts from `ingest.folder`; `pacsSource` when a PACS is configured too. */
export function openFolderIngest(
  config: Pick<Config, 'ingest' | 'shadow' | 'limits'>,
  pacsSource: StudySource | undefined,
  fhir: FhirClient | undefined,
  isFolderJob?: (studyInstanceUID: string) => Promise<boolean>,
  readHeader?: HeaderReader,
): FolderIngest | undefined {
  const f = config.ingest.folder;
  if (!f) return undefined;
  const root = path.resolve(f.path);
  const dirs: FolderDirs = {
    root,
    doneDir: path.join(root, '.done'),
    failedDir: path.resolve(f.failedDir ?? path.join(root, '.failed')),
    outDir: path.resolve(f.outDir ?? path.join(root, '.out')),
  };
  const source = new FolderStudySource(root, pacsSource, isFolderJob, config.limits.dicom.maxFileBytes);
  const watcher = new FolderWatcher(
    new LocalFolder(dirs, config.limits.dicom, ...(readHeader ? [readHeader] : [])),
    {
      stableAgeS: f.stableAgeS,
      doneAction: f.doneAction,
      seenRetentionDays: f.seenRetentionDays,
      shadow: config.shadow,
      ...(f.pollIntervalS === undefined ? {} : { pollIntervalS: f.pollIntervalS }),
    },
    (studies) => source.update(studies),
  );
  return { watcher, source, sink: pacsSource ? undefined : new FolderResultSink(dirs.outDir ?? root, fhir) };
}
