import { rejectionNoteSeriesUID, srSeriesInstanceUID } from '../../domain/uids.ts';

/** Whether an instance's series is one pacs-triage itself writes into the study. */
export type OwnSeries = (studyInstanceUID: string, seriesInstanceUID: string) => boolean;

/**
 * Our SR series and our rejection-note series are derived from the study (domain/uids.ts), so
 * an instance arriving in either is recognised without asking anyone: with per-instance
 * ingest (ingest.stableAgeS) our own write-back must not make the study run again.
 */
export function ownSeries(uidRoot: string, model: { id: string; deviceUid: string } | readonly { id: string; deviceUid: string }[]): OwnSeries {
  // With several models (config `models`) each writes its SR into a series of its own.
  const models = Array.isArray(model) ? model : [model];
  return (study, series) =>
    models.some((m) => series === srSeriesInstanceUID(uidRoot, study, m.id, m.deviceUid)) || series === rejectionNoteSeriesUID(uidRoot, study);
}

/**
 * Orthanc ids of the SRs this process stored lately, so that their NewInstance changes are
 * recognised without asking Orthanc (two lookups per study saved). Bounded: the oldest go
 * first; one not found here (evicted, or written by another process) is looked up and still
 * recognised by its series.
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 10_000) {}

  add(id: string): void {
    this.ids.delete(id);
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }
}
