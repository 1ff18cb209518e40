import { srSeriesInstanceUID } from '../encode/sr.ts';
import { rejectionNoteUids } from '../encode/retraction.ts';

/** Whether an instance's series is one pacs-triage itself writes into the study. */
export type OwnSeries = (studyInstanceUID: string, seriesInstanceUID: string) => boolean;

/**
 * Our SR series and our rejection-note series are derived from the study (domain/uids.ts), so
 * an instance arriving in either is recognised without asking anyone: with per-instance
 * ingest (ingest.stableAgeS) our own write-back must not make the study run again.
 */
export function ownSeries(uidRoot: string, model: { id: string; deviceUid: string }): OwnSeries {
  return (study, series) =>
    series === srSeriesInstanceUID(uidRoot, study, model.id, model.deviceUid) || series === rejectionNoteUids(uidRoot, study, []).seriesInstanceUID;
}
