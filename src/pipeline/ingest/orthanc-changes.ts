import type { Logger } from 'pino';
import { logEvent } from '../../domain/log-events.ts';
import type { OrthancClient } from '../../adapters/orthanc/client.ts';
import type { StudyRef } from '../../domain/types.ts';
import type { Store } from '../../state/ports.ts';
import type { OwnSeries } from './own-writes.ts';
import { logRejectedUids } from './rejected.ts';

export const CHANGES_CURSOR = 'orthanc.changes';
/**
 * Per-instance mode: when the last complete pass started (epoch ms). Every instance stored
 * before then has been seen, so a study settling until then may start (the jobs' barrier).
 */
export const CHANGES_SEEN_UNTIL = 'orthanc.changes.seenUntil';

export interface ChangesOptions {
  batch: number;
  /**
   * ingest.stableAgeS in ms: read NewInstance changes and let each study settle this long after
   * its last instance, instead of waiting for Orthanc's StableStudy.
   */
  stableAgeMs?: number | undefined;
  /** Our own SR and rejection-note series (never a reason to run again); with stableAgeMs. */
  isOwnSeries?: OwnSeries | undefined;
  /** Orthanc ids of SRs this process stored (no lookup for their NewInstance). */
  ownInstances?: { has(orthancInstanceId: string): boolean } | undefined;
  /** The clock of the barrier (the job store's). */
  now?: () => number;
}

/**
 * Reads Orthanc's /changes from the stored cursor and enqueues what it announces, advancing the
 * cursor in the same transaction as the enqueue.
 *
 * By default every StableStudy is enqueued. A study whose StableStudy comes again (a series
 * arrived later, or our own SR was stored) is enqueued again; the pipeline then sees from the
 * result key whether anything changed, so our own SR never produces a new result.
 *
 * With stableAgeMs, every NewInstance instead pushes its study's start back to stableAgeMs from
 * now (the job store's settle time), and instances of our own series are ignored. The poll sees
 * an instance up to a poll interval after it arrived, so a study also waits for a pass that
 * started after its due time (CHANGES_SEEN_UNTIL): one arriving just before then still counts.
 */
export async function pollOrthancChanges(orthanc: OrthancClient, store: Store, options: ChangesOptions, log: Logger): Promise<number> {
  let since = Number(await store.getCursor(CHANGES_CURSOR) ?? '0');
  let enqueued = 0;
  const perInstance = options.stableAgeMs !== undefined;
  // Taken before the first page: every change logged before this moment is in the pages read.
  const passStart = (options.now ?? Date.now)();
  // Orthanc study id → StudyInstanceUID, for this pass only (a burst of instances shares few studies).
  const studyUids = new Map<string, string | undefined>();
  const uidOf = async (orthancStudyId: string): Promise<string | undefined> => {
    if (!studyUids.has(orthancStudyId)) studyUids.set(orthancStudyId, await orthanc.studyInstanceUID(orthancStudyId));
    return studyUids.get(orthancStudyId);
  };
  for (;;) {
    const page = await orthanc.changes(since, options.batch);
    const refs: StudyRef[] = [];
    const add = (uid: string, orthancId: string): void => {
      if (!refs.some((r) => r.studyInstanceUID === uid)) refs.push({ studyInstanceUID: uid, orthancId, source: 'orthanc-changes' });
    };
    for (const change of page.changes) {
      if (perInstance) {
        if (change.changeType !== 'NewInstance' || options.ownInstances?.has(change.orthancId)) continue;
        const series = await orthanc.instanceSeries(change.orthancId);
        if (series === undefined) continue; // deleted meanwhile
        const uid = await uidOf(series.orthancStudyId);
        if (uid === undefined || options.isOwnSeries?.(uid, series.seriesInstanceUID)) continue;
        add(uid, series.orthancStudyId);
      } else {
        if (change.changeType !== 'StableStudy') continue;
        const uid = await orthanc.studyInstanceUID(change.orthancId);
        if (uid === undefined) continue; // deleted meanwhile: nothing to do
        add(uid, change.orthancId);
      }
    }
    logRejectedUids(log, 'orthanc-changes', refs);
    await store.enqueue(refs, { name: CHANGES_CURSOR, value: String(page.last) }, perInstance ? { settleMs: options.stableAgeMs, barrier: CHANGES_SEEN_UNTIL } : {});
    enqueued += refs.length;
    if (refs.length > 0) {
      logEvent(log, 'ingest.enqueued', { mode: 'orthanc-changes', change: perInstance ? 'NewInstance' : 'StableStudy', count: refs.length, cursor: page.last, ...(perInstance ? { settleMs: options.stableAgeMs } : {}) });
    }
    if (page.done || page.last === since) break;
    since = page.last;
  }
  if (perInstance) await store.enqueue([], { name: CHANGES_SEEN_UNTIL, value: String(passStart) });
  return enqueued;
}
