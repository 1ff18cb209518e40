import type { Logger } from 'pino';
import { logEvent } from '../../domain/log-events.ts';
import type { StudyRef } from '../../domain/types.ts';
import { isValidUid } from '../../domain/uids.ts';

/**
 * Logs the refs a poll found whose StudyInstanceUID is not a DICOM UID (the store records each
 * as a failed INVALID_UID job): counts only — the value is in the job's reason, not the log.
 */
export function logRejectedUids(log: Logger, mode: string, refs: readonly StudyRef[]): void {
  const rejected = refs.filter((r) => !isValidUid(r.studyInstanceUID)).length;
  if (rejected > 0) logEvent(log, 'ingest.rejected', { mode, code: 'INVALID_UID', count: rejected });
}

