import { logEvent } from '../../domain/log-events.ts';
import { logRejectedUids } from './rejected.ts';
import type { Logger } from 'pino';
import type { DicomWebClient } from '../../adapters/dicomweb/client.ts';
import type { DicomJson } from '../../dicom/json.ts';
import type { StudyRef } from '../../domain/types.ts';
import type { Store } from '../../state/ports.ts';

/** Where the end of the last polled window is kept (ms since epoch, as text). */
export const QIDO_CURSOR = 'dicomweb-qido.until';
export const QIDO_SEEN_SET = 'dicomweb-qido';

/**
 * What every QIDO study search asks to include: the UID, the date and time (logs), what the
 * study holds (the seen-set's fingerprint: a study that gains series or instances is polled
 * again), and ModalitiesInStudy (a PACS-side filter in `ingest.qido.match` can use it).
 */
export const QIDO_STUDY_FIELDS = ['0020000D', '00080020', '00080030', '00080061', '00201206', '00201208'] as const;

export interface QidoOptions {
  timeZone: string;
  lookbackHours: number;
  overlapMinutes: number;
  pageSize: number;
  match: Record<string, string>;
  includefield: readonly string[];
  seenRetentionDays: number;
}

/** One QIDO query of the window: a StudyDate and, on the first and last day, a StudyTime range. */
export interface WindowQuery {
  StudyDate: string;
  StudyTime?: string;
}

const FORMATS = new Map<string, Intl.DateTimeFormat>();

/** Wall-clock date (YYYYMMDD) and time (HHMMSS) of an instant in an IANA time zone. */
export function localDateTime(ms: number, timeZone: string): { date: string; time: string } {
  let fmt = FORMATS.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    FORMATS.set(timeZone, fmt);
  }
  const p = Object.fromEntries(fmt.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { date: `${p['year']}${p['month']}${p['day']}`, time: `${p['hour']}${p['minute']}${p['second']}` };
}

function nextDay(date: string): string {
  const d = new Date(Date.UTC(Number(date.slice(0, 4)), Number(date.slice(4, 6)) - 1, Number(date.slice(6, 8)) + 1));
  return d.toISOString().slice(0, 10).replaceAll('-', '');
}

/**
 * The window [from, to] as QIDO queries in the PACS's local time: one per local day, with a
 * StudyTime range on the first day (from its time on) and the last (up to its time). Per-day
 * queries need no combined date-time matching, which PACSs implement unevenly.
 */
export function windowQueries(fromMs: number, toMs: number, timeZone: string): WindowQuery[] {
  const from = localDateTime(fromMs, timeZone);
  const to = localDateTime(toMs, timeZone);
  if (from.date === to.date) return [{ StudyDate: from.date, StudyTime: `${from.time}-${to.time}` }];
  // A backwards step of the local clock (DST) can put `to` on an earlier local date: one query.
  if (to.date < from.date) return [{ StudyDate: `${to.date}-${from.date}` }];
  const out: WindowQuery[] = [{ StudyDate: from.date, StudyTime: `${from.time}-` }];
  for (let d = nextDay(from.date); d < to.date; d = nextDay(d)) out.push({ StudyDate: d });
  out.push({ StudyDate: to.date, StudyTime: `-${to.time}` });
  return out;
}

function firstValue(json: DicomJson, tag: string): string | undefined {
  const v = json[tag]?.Value?.[0];
  return v === undefined || v === null ? undefined : String(v);
}

/**
 * One poll of a DICOMweb PACS by QIDO-RS: the StudyDate/StudyTime window from the end of the
 * last one (less the overlap; `lookbackHours` on the first poll) to now, every page
 * (limit/offset), each study enqueued unless the seen-set already has it with the same number of
 * series and instances. The window's end is stored as the cursor with the last enqueue.
 */
export async function pollDicomWebQido(
  dicomweb: DicomWebClient,
  store: Store,
  options: QidoOptions,
  log: Logger,
  now: () => number = Date.now,
): Promise<number> {
  const to = now();
  const cursor = await store.getCursor(QIDO_CURSOR);
  const last = cursor === undefined ? undefined : Number(cursor);
  const from = last !== undefined && Number.isFinite(last) ? Math.min(last, to) - options.overlapMinutes * 60_000 : to - options.lookbackHours * 3_600_000;
  const includefield = [...new Set([...QIDO_STUDY_FIELDS, ...options.includefield])];
  let enqueued = 0;
  let found = 0;
  for (const window of windowQueries(from, to, options.timeZone)) {
    for (let offset = 0; ; offset += options.pageSize) {
      const page = await dicomweb.searchStudies({ ...options.match, ...window, includefield }, { limit: options.pageSize, offset });
      const studies: { ref: StudyRef; fingerprint: string }[] = [];
      for (const json of page) {
        const uid = firstValue(json, '0020000D');
        if (!uid) continue;
        studies.push({ ref: { studyInstanceUID: uid, source: 'dicomweb-qido' }, fingerprint: `${firstValue(json, '00201206') ?? '?'}/${firstValue(json, '00201208') ?? '?'}` });
      }
      found += studies.length;
      logRejectedUids(log, 'dicomweb-qido', studies.map((s) => s.ref));
      const fresh = await store.enqueueUnseen(QIDO_SEEN_SET, studies);
      enqueued += fresh.length;
      // A page shorter than the limit is the last one.
      if (page.length < options.pageSize) break;
    }
  }
  await store.enqueueUnseen(QIDO_SEEN_SET, [], { name: QIDO_CURSOR, value: String(to) });
  await store.pruneSeen(QIDO_SEEN_SET, to - options.seenRetentionDays * 86_400_000);
  if (enqueued > 0) logEvent(log, 'ingest.enqueued', { mode: 'dicomweb-qido', count: enqueued, found, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  return enqueued;
}
