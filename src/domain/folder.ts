/** What the watched-folder ingest knows of the files dropped into it. */
import type { InstanceMeta } from './types.ts';

/** One file found under the folder, with what its header said (or why it could not be read). */
export type ScannedFile = {
  /** Relative to the watched folder, '/'-separated. */
  path: string;
  size: number;
  mtimeMs: number;
} & ({ kind: 'dicom'; meta: InstanceMeta } | { kind: 'unreadable'; code: string; message: string });

export type DicomFile = Extract<ScannedFile, { kind: 'dicom' }>;
export type UnreadableFile = Extract<ScannedFile, { kind: 'unreadable' }>;

export interface FolderStudy {
  studyInstanceUID: string;
  /** Sorted by path. */
  files: DicomFile[];
  fingerprint: string;
  /** No file of it changed for stableAgeS, and no unreadable file still being written beside it. */
  stable: boolean;
}

