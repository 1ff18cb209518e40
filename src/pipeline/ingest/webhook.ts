import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { StudyRef } from '../../domain/types.ts';

/** The header Orthanc's Lua script (docker/orthanc/on-stable-study.lua) sends the shared secret in. */
export const WEBHOOK_SECRET_HEADER = 'x-pacs-triage-secret';

/**
 * Constant-time comparison of the given secret with the configured one: both are hashed first,
 * so neither the content nor the length leaks through timing.
 */
export function secretMatches(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(secret).digest();
  return timingSafeEqual(a, b);
}

const uid = z.string().regex(/^[0-2](\.(0|[1-9][0-9]*))*$/).max(64);

/**
 * What the Lua script posts: the study's UID (from its main DICOM tags) and Orthanc's id. With
 * WebhookEvent "instance" it posts every stored instance (NewInstance) with its series UID, and
 * pacs-triage lets the study settle for ingest.stableAgeS itself.
 */
export const webhookBodySchema = z
  .object({
    StudyInstanceUID: uid,
    /** Orthanc's id of the study (kept on the job, as the changes feed does). */
    OrthancId: z.string().regex(/^[0-9a-f-]{8,64}$/).optional(),
    /** The event: a stable study, or one stored instance. */
    ChangeType: z.enum(['StableStudy', 'NewInstance']).default('StableStudy'),
    /** The instance's series (NewInstance): our own SR series never starts a run. */
    SeriesInstanceUID: uid.optional(),
  })
  .strip()
  .refine((b) => b.ChangeType !== 'NewInstance' || b.SeriesInstanceUID !== undefined, {
    message: 'a NewInstance post needs SeriesInstanceUID',
    path: ['SeriesInstanceUID'],
  });

export type WebhookBody = z.infer<typeof webhookBodySchema>;

export function webhookRef(body: WebhookBody): StudyRef {
  return { studyInstanceUID: body.StudyInstanceUID, ...(body.OrthancId ? { orthancId: body.OrthancId } : {}), source: 'webhook' };
}
