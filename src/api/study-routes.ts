/** The handlers of the token-protected routes: the worklist, jobs, one study, its images, reprocess, retry, retract, feedback. */
import { logEvent } from '../domain/log-events.ts';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { TriageError } from '../domain/errors.ts';
import type { ImageKind } from '../domain/records.ts';
import { decodePictureSource, renderPicture } from '../pipeline/render/picture-source.ts';
import { requestMarkedWrong } from '../pipeline/retract.ts';
import type { Store } from '../state/ports.ts';
import { retractSchema } from './schemas.ts';
import { checkStudyUid, parseFeedback, parseJobsQuery, parseWorklistQuery, problemsOf, RequestInvalid } from './validation.ts';

export type Handler = (req: Request, res: Response) => Promise<void>;

export interface StudyRouteOptions {
  store: Store;
  shadow: boolean;
  log?: Logger | undefined;
  /** Why retractions cannot run here (the folder mode alone has no PACS): the route answers 409. */
  retractUnavailable?: string | undefined;
}

export function studyHandlers(options: StudyRouteOptions): Record<string, Handler> {
  const { store, log } = options;
  const knownStudy = async (req: Request): Promise<string> => {
    const uid = checkStudyUid(String(req.params['uid']));
    if (!(await store.get(uid))) throw new TriageError('NOT_FOUND', `no study ${uid} in the store`, { where: 'api' });
    return uid;
  };
  /**
   * A picture drawn from the study's picture source at its first view, then served from the store
   * until a new result replaces the source (a drawing of an older source is never served).
   */
  const picture = async (uid: string, kind: ImageKind): Promise<Buffer | undefined> => {
    const [drawn, source] = await Promise.all([store.getImage(uid, kind), store.getPictureSource(uid)]);
    if (drawn && (!source || drawn.resultKey === source.resultKey)) return drawn.png;
    if (!source) return undefined;
    const png = await renderPicture(decodePictureSource(source.data), kind);
    if (png) await store.saveImage(uid, kind, png, source.resultKey);
    return png;
  };
  const image = (kind: ImageKind): Handler => async (req, res) => {
    const uid = await knownStudy(req);
    const png = await picture(uid, kind);
    if (!png) throw new TriageError('NOT_FOUND', `no ${kind} for study ${uid}`, { where: 'api' });
    res.set({ 'content-type': 'image/png', 'content-length': String(png.length) }).send(png);
  };

  return {
    worklist: async (req, res) => {
      const query = parseWorklistQuery(req.query);
      const { limit, offset, ...filter } = query;
      res.json({ shadow: options.shadow, total: await store.countWorklist(filter), limit, offset, items: await store.worklist(query) });
    },

    jobs: async (req, res) => {
      const query = parseJobsQuery(req.query);
      const filter = query.state === undefined ? {} : { state: query.state };
      res.json({ total: await store.countJobs(filter), limit: query.limit, offset: query.offset, items: await store.jobs({ ...filter, limit: query.limit, offset: query.offset }) });
    },

    study: async (req, res) => {
      const uid = checkStudyUid(String(req.params['uid']));
      const record = await store.study(uid);
      if (!record) throw new TriageError('NOT_FOUND', `no study ${uid} in the store`, { where: 'api' });
      const r = record.result;
      const base = `/api/studies/${uid}`;
      const source = await store.getPictureSource(uid);
      const imageUrl = async (kind: ImageKind): Promise<string | null> =>
        (source && (kind === 'thumbnail' || source.hasHeat)) || (await store.getImage(uid, kind)) ? `${base}/${kind}.png` : null;
      const x = record.retraction;
      res.json({
        studyInstanceUID: uid,
        shadow: options.shadow,
        job: record.job,
        result: r
          ? {
              resultKey: r.resultKey,
              priority: r.priority,
              findings: r.findings,
              ...(r.modality ? { modality: r.modality } : {}),
              model: { id: r.modelId, version: r.modelVersion, executionProvider: r.executionProvider },
              sr: { seriesInstanceUID: r.srSeriesInstanceUID, sopInstanceUID: r.srSopInstanceUID, wadoRsPath: `/studies/${uid}/series/${r.srSeriesInstanceUID}/instances/${r.srSopInstanceUID}` },
              riskAssessment: r.riskAssessmentRef ?? null,
              sourceSopInstanceUIDs: r.sourceSopInstanceUIDs,
              ...(r.selectedBy ? { selectedBy: r.selectedBy } : {}),
              written: r.written,
              notes: r.notes,
              createdAt: r.createdAt,
            }
          : null,
        images: { thumbnail: await imageUrl('thumbnail'), saliency: await imageUrl('saliency') },
        feedback: await store.listFeedback(uid),
        // The reason stays in the store (free text may name a patient); the API says that and when.
        retraction: x
          ? {
              cause: x.cause,
              state: x.state,
              resultKey: x.resultKey,
              coversLatestResult: x.resultKey === r?.resultKey,
              requestedAt: x.requestedAt,
              ...(x.doneAt !== undefined ? { doneAt: x.doneAt } : {}),
              ...(x.errorCode ? { errorCode: x.errorCode, lastError: x.lastError } : {}),
              written: x.written,
              notes: x.notes,
            }
          : null,
      });
    },

    thumbnail: image('thumbnail'),
    saliency: image('saliency'),

    reprocess: async (req, res) => {
      const uid = await knownStudy(req);
      const job = await store.requeue(uid);
      if (!job) throw new TriageError('NOT_FOUND', `no study ${uid} in the store`, { where: 'api' });
      logEvent(log, 'api.reprocess', { study: uid, state: job.state });
      res.status(202).json({ studyInstanceUID: uid, state: job.state, message: job.state === 'running' ? 'running now; it runs again when this run ends' : 'queued' });
    },

    // "This result is wrong": retracted as durable work (FHIR entered-in-error, an IOCM rejection
    // note in the PACS), run by the service's next pass and retried while an upstream is away.
    retract: async (req, res) => {
      const uid = checkStudyUid(String(req.params['uid']));
      const parsed = retractSchema.safeParse(req.body ?? {});
      if (!parsed.success) throw new RequestInvalid('invalid retract body', problemsOf(parsed.error.issues));
      if (options.retractUnavailable !== undefined) throw new TriageError('CONFLICT', options.retractUnavailable, { where: 'api' });
      const { retraction, created } = await requestMarkedWrong(store, uid, parsed.data.reason, parsed.data.by);
      logEvent(log, 'api.retract', { study: uid, created });
      res.status(created ? 202 : 200).json({
        studyInstanceUID: uid,
        state: retraction.state,
        resultKey: retraction.resultKey,
        message: created ? 'retraction queued' : `already retracted (${retraction.state}); nothing new is written`,
      });
    },

    // Retry a job that failed (or is waiting for its next attempt) now, attempts reset — as the
    // CLI's `jobs retry`. A study that is done or running is refused: reprocess is for those.
    retry: async (req, res) => {
      const uid = await knownStudy(req);
      const before = await store.get(uid);
      if (before && before.state !== 'failed' && before.state !== 'queued') {
        throw new TriageError('CONFLICT', `study ${uid} is ${before.state}; only a failed or waiting job can be retried (use reprocess)`, { where: 'api' });
      }
      const job = await store.requeue(uid);
      if (!job) throw new TriageError('NOT_FOUND', `no study ${uid} in the store`, { where: 'api' });
      logEvent(log, 'api.retry', { study: uid });
      res.status(202).json({ studyInstanceUID: uid, state: job.state, message: 'queued' });
    },

    listFeedback: async (req, res) => {
      res.json({ items: await store.listFeedback(await knownStudy(req)) });
    },

    addFeedback: async (req, res) => {
      const uid = await knownStudy(req);
      const result = await store.latestResult(uid);
      if (!result) throw new TriageError('NOT_FOUND', `study ${uid} has no result to give feedback on`, { where: 'api' });
      const body = parseFeedback(req.body, (result.findings ?? []).map((f) => f.code));
      const stored = await store.addFeedback({
        studyInstanceUID: uid,
        findingCode: body.findingCode,
        verdict: body.verdict,
        ...(body.note !== undefined && body.note.length > 0 ? { note: body.note } : {}),
        by: body.by ?? 'anonymous',
        resultKey: result.resultKey,
      });
      // The note and the reviewer stay in the store: free text may name a patient.
      logEvent(log, 'api.feedback', { study: uid, finding: stored.findingCode, verdict: stored.verdict });
      res.status(201).json(stored);
    },
  };
}
