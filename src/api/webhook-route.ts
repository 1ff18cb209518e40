/**
 * Ingest mode (c): Orthanc's Lua script posts the study here with the shared secret (checked
 * before the body is read, in app.ts): when it is stable (OnStableStudy), or each instance
 * (OnStoredInstance) with ingest.stableAgeS. The body is small and validated.
 */
import { logEvent } from '../domain/log-events.ts';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { Store } from '../state/ports.ts';
import type { OwnSeries } from '../pipeline/ingest/own-writes.ts';
import { webhookBodySchema, webhookRef } from '../pipeline/ingest/webhook.ts';
import { problemsOf, RequestInvalid } from './validation.ts';

export function webhookHandler(
  hook: { stableAgeMs?: number; isOwnSeries?: OwnSeries },
  options: { store: Store; log?: Logger | undefined; onEnqueued?: (() => void) | undefined },
): (req: Request, res: Response) => Promise<void> {
  const { store, log } = options;
  return async (req, res) => {
    const parsed = webhookBodySchema.safeParse(req.body);
    if (!parsed.success) throw new RequestInvalid('invalid webhook body', problemsOf(parsed.error.issues));
    const body = parsed.data;
    const ref = webhookRef(body);
    if (body.ChangeType === 'NewInstance') {
      if (hook.stableAgeMs === undefined) {
        res.status(409).json({
          error: {
            code: 'CONFLICT',
            message: 'per-instance posts need ingest.stableAgeS (how long a study settles after its last instance); set it, or let the Lua script post StableStudy',
          },
        });
        return;
      }
      if (hook.isOwnSeries?.(body.StudyInstanceUID, body.SeriesInstanceUID ?? '')) {
        // Our own SR (or rejection note) arriving: nothing new to read.
        logEvent(log, 'webhook.own_instance', { study: body.StudyInstanceUID });
        res.status(200).json({ studyInstanceUID: ref.studyInstanceUID, ignored: 'our own result' });
        return;
      }
    }
    const settleMs = body.ChangeType === 'NewInstance' ? hook.stableAgeMs : undefined;
    await store.enqueue([ref], undefined, settleMs !== undefined ? { settleMs } : {});
    options.onEnqueued?.();
    // Per instance: debug, or a 500-image CT writes 500 lines.
    const line = { mode: 'webhook', study: ref.studyInstanceUID, change: body.ChangeType };
    if (settleMs === undefined) logEvent(log, 'ingest.enqueued', line);
    else logEvent(log, 'ingest.enqueued', { ...line, settleMs }, 'debug');
    res.status(202).json({ studyInstanceUID: ref.studyInstanceUID, state: (await store.get(ref.studyInstanceUID))?.state ?? 'queued' });
  };
}
