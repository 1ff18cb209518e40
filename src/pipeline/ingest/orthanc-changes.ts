import type { Logger } from 'pino';
import type { OrthancClient } from '../../adapters/orthanc/client.ts';
import type { StudyRef } from '../../domain/types.ts';
import type { JobStore } from '../../state/store.ts';

export const CHANGES_CURSOR = 'orthanc.changes';

/**
 * Reads Orthanc's /changes from the stored cursor and enqueues every StableStudy, advancing the
 * cursor in the same transaction as the enqueue. A study whose StableStudy comes again (a series
 * arrived later, or our own SR was stored) is enqueued again; the pipeline then sees from the
 * result key whether anything changed, so our own SR never produces a new result.
 */
export async function pollOrthancChanges(orthanc: OrthancClient, store: JobStore, batch: number, log: Logger): Promise<number> {
  let since = Number(store.getCursor(CHANGES_CURSOR) ?? '0');
  let enqueued = 0;
  for (;;) {
    const page = await orthanc.changes(since, batch);
    const refs: StudyRef[] = [];
    for (const change of page.changes) {
      if (change.changeType !== 'StableStudy') continue;
      const uid = await orthanc.studyInstanceUID(change.orthancId);
      if (uid === undefined) continue; // deleted meanwhile: nothing to do
      if (!refs.some((r) => r.studyInstanceUID === uid)) refs.push({ studyInstanceUID: uid, orthancId: change.orthancId, source: 'orthanc-changes' });
    }
    store.enqueue(refs, { name: CHANGES_CURSOR, value: String(page.last) });
    enqueued += refs.length;
    if (refs.length > 0) log.info({ event: 'ingest.enqueued', count: refs.length, cursor: page.last }, 'stable studies enqueued');
    if (page.done || page.last === since) break;
    since = page.last;
  }
  return enqueued;
}
