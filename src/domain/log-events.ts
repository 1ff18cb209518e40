/**
 * Every log line pacs-triage writes is one of these named events, with the fields listed — ids
 * (Study Instance UIDs, result keys), codes, counts and durations. Never patient names or IDs,
 * report text or an upstream's answer: a field that could carry one does not exist here, and
 * `logEvent` takes no other fields (the compiler refuses them). Operators can alert on the names.
 */

export type Level = 'debug' | 'info' | 'warn' | 'error';

interface EventSpec {
  level: Level;
  message: string;
  fields: readonly string[];
}

const e = <const F extends readonly string[]>(level: Level, message: string, fields: F): { level: Level; message: string; fields: F } => ({ level, message, fields });

/** Error fields: our own code and message (TriageError messages name ids and statuses, never bodies). */
const ERR = ['code', 'err'] as const;

export const LOG_EVENTS = {
  // serve
  'api.listening': e('info', 'API listening', ['address']),
  'service.stopping': e('info', 'stopping: draining in-flight jobs', ['signal', 'drainTimeoutMs']),
  'service.drained': e('info', 'in-flight jobs finished', []),
  'service.drain.timeout': e('warn', 'in-flight jobs did not finish in time; their leases expire and another run takes them', ['inFlight']),
  'worker.error': e('error', 'worker loop error', ['err']),
  'service.leadership': e('info', 'this replica now runs a polling source (one replica at a time)', ['name', 'held']),
  'service.event_loop.blocked': e('warn', 'the event loop was held: /healthz, the API and the webhook waited', ['delayMs']),
  'model.provider.selected': e('info', 'model loaded on its execution provider', ['provider', 'skipped']),
  'model.provider.unavailable': e('warn', 'an execution provider could not load; trying the next', ['provider', 'reason']),
  'upstream.circuit.open': e('warn', 'circuit to an upstream opened: calls fail fast until a trial call succeeds', ['target']),
  'upstream.circuit.half-open': e('warn', 'circuit to an upstream half-open: one trial call', ['target']),
  'upstream.circuit.closed': e('warn', 'circuit to an upstream closed again', ['target']),
  // ingest
  'ingest.enqueued': e('info', 'studies enqueued', ['mode', 'study', 'change', 'count', 'found', 'cursor', 'settleMs', 'from', 'to']),
  'ingest.error': e('warn', 'ingest pass failed; will try again', ERR),
  'ingest.folder.settled': e('info', 'folder study settled', ['study', 'files', 'outcome']),
  'ingest.folder.rejected': e('warn', 'unreadable files in the watched folder', ['count', 'codes', 'movedAside']),
  'ingest.rejected': e('warn', 'studies refused before they were queued (recorded as failed jobs with the reason)', ['mode', 'code', 'count']),
  'webhook.own_instance': e('debug', 'our own result arrived; not enqueued', ['study']),
  'webhook.forbidden': e('warn', 'webhook call with a wrong secret', []),
  // a study's run
  'study.done': e('info', 'study processed', ['study', 'model', 'priority', 'provider', 'timings']),
  'study.unchanged': e('info', 'same inputs as the stored result; nothing new to write', ['study', 'model', 'resultKey']),
  'study.model.skipped': e('info', 'a model of the study skipped it (its selection rules); the other models ran', ['study', 'model', 'reason']),
  'study.model.failed': e('warn', 'a model failed on the study; the other models ran', ['study', 'model', ...ERR]),
  'study.resume': e('info', 'writing the stored result; no inference', ['study', 'resultKey', 'written']),
  'study.skipped': e('info', 'study skipped', ['study', 'reason']),
  'study.retry': e('warn', 'study will be retried', ['study', 'attempt', 'retryAt', ...ERR]),
  'study.waiting': e('warn', 'result stored; waiting for the upstream to write it', ['study', 'attempt', 'retryAt', ...ERR]),
  'study.failed': e('warn', 'study failed', ['study', 'attempt', ...ERR]),
  'study.warning': e('warn', 'an optional write was refused for a configuration reason; the result stands', ['study', 'warning', 'fix']),
  'job.lease.lost': e('warn', 'lease lost; another worker may have reclaimed the job', ['study']),
  'job.lease.error': e('warn', 'lease renewal failed; the lease may expire', ['study', 'err']),
  'context.cap_hit': e('warn', 'a clinical context cap was hit; the text was cut', ['study', 'cap', 'limit', 'count']),
  'context.text_unread': e('info', 'a report attachment was not read', ['study', 'resource', 'reason']),
  'render.failed': e('warn', 'images not rendered', ['study', 'err']),
  // corrections and retention
  'retraction.done': e('info', 'result retracted', ['study', 'cause', 'results']),
  'retraction.deferred': e('info', "retraction deferred: the study's job is still writing its result", ['study']),
  'retraction.retry': e('warn', 'retraction will be retried', ['study', 'attempt', 'retryAt', ...ERR]),
  'retraction.failed': e('warn', 'retraction failed', ['study', 'attempt', ...ERR]),
  'retraction.error': e('warn', 'retractions pass failed; will try again', ERR),
  'retraction.lease.error': e('warn', 'lease renewal failed; the lease may expire', ['study', 'err']),
  'verification.done': e('info', "a reader's accept written to the EHR (RiskAssessment final, Provenance)", ['study', 'resultKey', 'outcome']),
  'verification.retry': e('warn', 'verification will be retried', ['study', 'resultKey', 'attempt', 'retryAt', ...ERR]),
  'verification.failed': e('warn', 'verification failed', ['study', 'resultKey', 'attempt', ...ERR]),
  'verification.error': e('warn', 'verifications pass failed; will try again', ERR),
  'corrections.sweep.deleted': e('info', 'studies deleted in the PACS: results retracted', ['count']),
  'corrections.sweep.suspicious': e('error', 'most checked studies are missing from the PACS; nothing retracted (check the PACS and its permissions)', ['checked', 'missing']),
  'corrections.sweep.error': e('warn', 'deleted-study sweep failed; will try again', ERR),
  'retention.purged': e('info', 'old stored data removed', ['images', 'feedbackNotes', 'retractionReasons', 'jobs']),
  'retention.error': e('warn', 'retention pass failed; will try again', ERR),
  // API
  'api.reprocess': e('info', 'study queued again', ['study', 'state']),
  'api.retry': e('info', 'failed study queued again', ['study']),
  'api.retract': e('info', 'retraction asked for', ['study', 'created']),
  'api.feedback': e('info', 'feedback stored', ['study', 'finding', 'verdict']),
  'api.host_refused': e('warn', 'request with a Host not in api.allowedHosts refused', ['method']),
  'api.error': e('error', 'request failed', ['code', 'method', 'route', 'status']),
  'api.rejected': e('debug', 'request rejected', ['code', 'method', 'route', 'status']),
} as const satisfies Record<string, EventSpec>;

export type LogEventName = keyof typeof LOG_EVENTS;
export type LogFields<E extends LogEventName> = Partial<Record<(typeof LOG_EVENTS)[E]['fields'][number], unknown>>;

/** What logEvent needs of a logger (pino's shape). */
export type EventLogger = Record<Level, (fields: object, message: string) => void>;

/** Writes one catalogued event: its level (or `level`), its fields, its message. */
export function logEvent<E extends LogEventName>(log: EventLogger | undefined, event: E, fields: LogFields<E>, level?: Level): void {
  const spec: EventSpec = LOG_EVENTS[event];
  log?.[level ?? spec.level]({ event, ...fields }, spec.message);
}
