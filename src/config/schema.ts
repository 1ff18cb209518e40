import { z } from 'zod';
import { basicAuth, bearerAuth, fhirAuth, tls, tlsNeedsHttps } from './transport-schema.ts';
import { store } from './store-schema.ts';
import { isLoopbackHost } from '../domain/hosts.ts';
import { viewerTemplateProblem } from '../domain/viewer-url.ts';
import { DEFAULT_DICOM_LIMITS } from '../dicom/limits.ts';

const uid = z.string().regex(/^[0-2](\.(0|[1-9][0-9]*))*$/, 'must be a DICOM UID root (digits and dots, no leading zeros)').max(40);
const url = z.url({ protocol: /^https?$/ });
/** Ingest modes (README "Supported inputs"). */
export const INGEST_MODES = ['orthanc-changes', 'dicomweb-qido', 'webhook', 'folder'] as const;
export type IngestMode = (typeof INGEST_MODES)[number];

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const configSchema = z
  .object({
    uidRoot: uid.default('2.25'),
    shadow: z.boolean().default(false),
    model: z
      .object({
        dir: z.string().min(1).default('models/cxr-triage'),
        executionProviders: z.array(z.enum(['cuda', 'webgpu', 'cpu'])).min(1).default(['cpu']),
        maxBatch: z.number().int().min(1).max(256).default(8),
        maxWaitMs: z.number().int().min(0).max(10_000).default(20),
        /** CPU provider threading: intra-op threads (absent: one per core) and spin-waiting (off; see adapters/model/session.ts). */
        cpu: z
          .object({ threads: z.number().int().min(1).max(256).optional(), spinning: z.boolean().default(false) })
          .strict()
          .default({ spinning: false }),
      })
      .strict()
      .default({ dir: 'models/cxr-triage', executionProviders: ['cpu'], maxBatch: 8, maxWaitMs: 20, cpu: { spinning: false } }),
    /**
     * Several models in one service: their folders, in order (the first draws the worklist
     * pictures). Each model's series are chosen by the selection rules under its manifest id and
     * each writes its own SR and RiskAssessment; model.* settings other than dir apply to all.
     * Absent: model.dir alone.
     */
    models: z
      .array(z.string().min(1))
      .min(1)
      .refine((dirs) => new Set(dirs).size === dirs.length, 'each model folder at most once')
      .optional(),
    mappings: z.object({ dir: z.string().min(1).default('mappings') }).strict().default({ dir: 'mappings' }),
    pacs: z
      .object({
        /** Orthanc's REST root; DICOMweb lives under dicomWebPath. */
        baseUrl: url,
        dicomWebPath: z.string().startsWith('/').default('/dicom-web'),
        kind: z.enum(['orthanc', 'dicomweb']).default('orthanc'),
        auth: z.union([basicAuth, bearerAuth]).optional(),
        tls: tls.optional(),
        timeoutMs: z.number().int().min(100).default(30_000),
        /** WADO-RS: ask for Explicit VR Little Endian first, falling back to the stored syntax (decoded here), or always ask for the stored syntax (no transcoding load on the PACS). */
        retrieveTransferSyntax: z.enum(['explicit-le-first', 'stored']).default('explicit-le-first'),
      })
      .strict()
      .superRefine(tlsNeedsHttps)
      .optional(),
    fhir: z
      .object({
        baseUrl: url,
        auth: fhirAuth.optional(),
        tls: tls.optional(),
        timeoutMs: z.number().int().min(100).default(15_000),
        /** Also write the triage priority to the study's order (ServiceRequest.priority). Off by default. */
        writeOrderPriority: z.boolean().default(false),
      })
      .strict()
      .superRefine(tlsNeedsHttps)
      .optional(),
    ingest: z
      .object({
        pollIntervalS: z.number().int().min(1).max(86_400).default(5),
        changesBatch: z.number().int().min(1).max(10_000).default(200),
        /**
         * Set: pacs-triage decides itself when an Orthanc study is complete — this many seconds
         * after the last instance it was told of — instead of waiting for Orthanc's StableStudy
         * (whole seconds, checked once a second: with StableAge 1 a study waits 2-3 s). The
         * orthanc-changes mode then reads NewInstance changes (one Orthanc lookup per instance; a
         * study also waits for a pass begun after its due time, since the poll sees an instance up
         * to pollIntervalS late), and the webhook takes the Lua script's per-instance posts
         * (WebhookEvent "instance").
         * Our own SRs and rejection notes never start a new run. Absent: Orthanc's StableStudy.
         */
        stableAgeS: z.number().min(0.1).max(3_600).optional(),
        /** Which ingest modes run; absent: orthanc-changes when pacs.kind is orthanc, dicomweb-qido otherwise. */
        modes: z
          .array(z.enum(INGEST_MODES))
          .min(1)
          .refine((m) => new Set(m).size === m.length, 'a mode is named twice')
          .optional(),
        /** (b) QIDO-RS polling of any DICOMweb PACS. */
        qido: z
          .object({
            /** The PACS's time zone (IANA name): StudyDate/StudyTime are local times there. */
            timeZone: z.string().refine(validTimeZone, 'must be an IANA time zone such as Europe/Berlin or UTC').default('UTC'),
            /** The first poll looks back this far. */
            lookbackHours: z.number().positive().max(24 * 366).default(24),
            /**
             * Each poll starts this long before the previous one ended. The window is on the acquisition
             * time (StudyDate/StudyTime), so this must exceed the usual delay from acquisition to arrival
             * in the PACS (and any clock skew); the seen-set keeps the overlap from enqueueing twice.
             */
            overlapMinutes: z.number().int().min(0).max(7 * 24 * 60).default(60),
            /** QIDO page size (limit/offset). */
            pageSize: z.number().int().min(1).max(5_000).default(100),
            /** Extra QIDO match keys, e.g. { ModalitiesInStudy: CR } (keyword or tag → value). */
            match: z.record(z.string().regex(/^[A-Za-z0-9]+$/), z.string()).default({}),
            /** Extra includefield tags or keywords (beyond what the seen-set needs). */
            includefield: z.array(z.string().regex(/^[A-Za-z0-9]+$/)).default([]),
            /** Seen-set entries older than this are dropped (they are far behind the window). */
            seenRetentionDays: z.number().int().min(1).max(3650).default(14),
          })
          .strict()
          .prefault({}),
        /** (c) POST /webhooks/orthanc, fed by docker/orthanc/on-stable-study.lua. */
        webhook: z
          .object({
            /** Shared secret in the X-Pacs-Triage-Secret header (≥ 16 characters; PACS_TRIAGE_INGEST__WEBHOOK__SECRET_FILE for a file). */
            secret: z.string().min(16, 'must be at least 16 characters'),
            /** Largest body accepted. */
            bodyLimit: z.string().default('4kb'),
          })
          .strict()
          .optional(),
        /** (d) A watched folder (offline, edge): DICOM Part 10 files dropped in, grouped by study, polled by scanning. */
        folder: z
          .object({
            /** The folder watched (any depth; dot-entries are ignored). */
            path: z.string().min(1),
            /** A study is complete when none of its files changed for this long. */
            stableAgeS: z.number().min(0).max(86_400).default(5),
            /** Scan at most this often (absent: every ingest pass, ingest.pollIntervalS). */
            pollIntervalS: z.number().int().min(1).max(86_400).optional(),
            /** What happens to a processed study's files: moved to `<path>/.done/<StudyInstanceUID>/`, deleted, or kept in place. */
            doneAction: z.enum(['keep', 'move', 'delete']).default('move'),
            /** Unreadable files and failed studies, each with its reason (absent: `<path>/.failed`). */
            failedDir: z.string().min(1).optional(),
            /** SR files (and FHIR JSON without a FHIR server) when no PACS is configured (absent: `<path>/.out`). */
            outDir: z.string().min(1).optional(),
            /** Seen-set entries of studies no longer in the folder are dropped after this long. */
            seenRetentionDays: z.number().int().min(1).max(3650).default(30),
          })
          .strict()
          .optional(),
      })
      .strict()
      .superRefine((ingest, ctx) => {
        if (ingest.modes?.includes('webhook') && !ingest.webhook) ctx.addIssue({ code: 'custom', path: ['webhook', 'secret'], message: 'the webhook mode needs ingest.webhook.secret' });
        if (ingest.modes?.includes('folder') && !ingest.folder) ctx.addIssue({ code: 'custom', path: ['folder', 'path'], message: 'the folder mode needs ingest.folder.path' });
      })
      .prefault({}),
    store,
    api: z
      .object({
        /** The address `serve` listens on. Anything but loopback needs api.token (and api.allowedHosts for the names clients use). */
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Bearer token for /api and /metrics (PACS_TRIAGE_API__TOKEN_FILE for a file). `serve` refuses to start without it unless auth is none. */
        token: z.string().min(16, 'must be at least 16 characters (e.g. `openssl rand -hex 32`)').optional(),
        /** `none`: no token at all — an explicit choice, refused on a host that is not loopback. */
        auth: z.enum(['token', 'none']).default('token'),
        /** A token that reads /metrics and /readyz details and nothing else (for a scraper). */
        metricsToken: z.string().min(16, 'must be at least 16 characters').optional(),
        /** Host names clients use (besides loopback names and api.host); any other Host header is answered 421. */
        allowedHosts: z.array(z.string().regex(/^[A-Za-z0-9.:[\]-]+$/, 'a host name or address, without port')).default([]),
        /** The worklist's "open" link per study, e.g. OHIF's `https://viewer.example.org/viewer?StudyInstanceUIDs={StudyInstanceUID}`. */
        viewerUrlTemplate: z
          .string()
          .max(2000)
          .superRefine((t, ctx) => {
            const problem = viewerTemplateProblem(t);
            if (problem) ctx.addIssue({ code: 'custom', message: problem });
          })
          .optional(),
        /** Keep and show the patient's name and ID on the worklist. Off: they are not stored at all. */
        showPatientIdentity: z.boolean().default(false),
      })
      .strict()
      .superRefine((api, ctx) => {
        if (api.auth === 'none' && !isLoopbackHost(api.host)) {
          ctx.addIssue({ code: 'custom', path: ['auth'], message: `none is allowed only on a loopback host (api.host is ${api.host}); set api.token instead` });
        }
        if (api.auth === 'none' && api.token !== undefined) ctx.addIssue({ code: 'custom', path: ['auth'], message: 'set api.token or api.auth none, not both' });
      })
      .prefault({}),
    worker: z
      .object({
        concurrency: z.number().int().min(1).max(64).default(2),
        maxAttempts: z.number().int().min(1).max(100).default(5),
        /** First retry after about this long; doubles per attempt (with jitter) up to retryMaxDelayMs. */
        retryBaseDelayMs: z.number().int().min(10).max(3_600_000).default(2_000),
        retryMaxDelayMs: z.number().int().min(10).max(86_400_000).default(300_000),
        /** A running job's lease; renewed while it runs, reclaimed by any worker once expired. */
        leaseMs: z.number().int().min(500).max(3_600_000).default(60_000),
        /** How long `serve` waits for in-flight jobs after SIGTERM/SIGINT before exiting. */
        drainTimeoutMs: z.number().int().min(0).max(600_000).default(30_000),
        /**
         * Threads that decode DICOM (headers of dropped files, pixels into the model's tensor) off
         * the event loop, so a large or crafted file never stops /healthz and the API; 0: decode inline.
         */
        decodeThreads: z.number().int().min(0).max(16).default(2),
        /**
         * Every Nth claim looks at backfill (backfill, reprocess, retry on request) before live
         * arrivals and retries, so a backlog still drains while live studies keep coming; 0: never.
         */
        backfillShare: z.number().int().min(0).max(1000).default(5),
        /**
         * While live studies or retries were claimed in the last minute, at most this many backfill
         * jobs run at once in this process (default: no cap, every worker); with
         * no live work, backfill uses every worker. A live study then finds a free worker and
         * shares the CPU with few backfill studies, so a backlog does not add its depth to live
         * latency, and the backlog still drains at full speed when nothing live arrives.
         */
        backfillConcurrency: z.number().int().min(1).max(64).optional(),
      })
      .strict()
      .superRefine((worker, ctx) => {
        if (worker.backfillConcurrency !== undefined && worker.backfillConcurrency > worker.concurrency) {
          ctx.addIssue({ code: 'custom', path: ['backfillConcurrency'], message: `must be at most worker.concurrency (${worker.concurrency})` });
        }
      })
      .prefault({}),
    /** Circuit breaker per upstream (pacs, fhir). */
    breaker: z
      .object({
        /** Consecutive transient failures (5xx, 429, timeouts, refused connections) that open the circuit. */
        failureThreshold: z.number().int().min(1).max(1000).default(5),
        /** How long the circuit stays open before one trial call. */
        openMs: z.number().int().min(100).max(3_600_000).default(30_000),
      })
      .strict()
      .default({ failureThreshold: 5, openMs: 30_000 }),
    /** Bounds on every input, checked before the bytes or the pixels are allocated (README "Security"). */
    limits: z
      .object({
        dicom: z
          .object({
            maxDepth: z.number().int().min(4).max(256).default(DEFAULT_DICOM_LIMITS.maxDepth),
            maxFileBytes: z.number().int().min(1024).default(DEFAULT_DICOM_LIMITS.maxFileBytes),
            maxInflatedBytes: z.number().int().min(1024).default(DEFAULT_DICOM_LIMITS.maxInflatedBytes),
            maxPixelsPerFrame: z.number().int().min(1).default(DEFAULT_DICOM_LIMITS.maxPixelsPerFrame),
            maxFrames: z.number().int().min(1).default(DEFAULT_DICOM_LIMITS.maxFrames),
            maxDecodedFrameBytes: z.number().int().min(1024).default(DEFAULT_DICOM_LIMITS.maxDecodedFrameBytes),
          })
          .strict()
          .prefault({}),
        upstream: z
          .object({
            /** Largest answer from the PACS (a WADO-RS instance, a QIDO page). */
            pacsResponseBytes: z.number().int().min(1024).default(512 * 1024 * 1024),
            /** Largest answer from the FHIR server (a search page, a transaction answer). */
            fhirResponseBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
            /** Entries in one FHIR Bundle page at most. */
            fhirBundleEntries: z.number().int().min(1).max(100_000).default(1000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    retention: z
      .object({
        /** Stored thumbnails and saliency images older than this are deleted by `serve` (absent: kept). */
        imagesMaxAgeH: z.number().positive().optional(),
        /**
         * Free text the store keeps — feedback notes, reasons given for retractions (done ones) — is
         * cleared after this long by `serve` and `run-once` (absent: kept). The rows stay.
         */
        reportTextMaxAgeH: z.number().positive().optional(),
        /**
         * Jobs that ended (done, failed, skipped) and were not updated for this many days are
         * deleted by `serve` and `run-once`; their results, feedback and audit entries stay. The job
         * list stays bounded whatever arrives (a flood of webhook posts, a crafted changes feed).
         */
        jobsMaxAgeDays: z.number().positive().max(3650).default(30),
      })
      .strict()
      .prefault({}),
    /** Retractions of results whose study was deleted in the PACS (the sweep; see src/pipeline/retract.ts). */
    corrections: z
      .object({
        /** Check that done studies are still in the PACS, and retract the results of those that are not. */
        deletedSweep: z.boolean().default(true),
        /** How often `serve` and `run-once` run that check (minutes; 0: every pass). */
        deletedSweepIntervalMin: z.number().min(0).max(7 * 24 * 60).default(24 * 60),
        /** Done studies updated within this many days are checked. */
        deletedSweepLookbackDays: z.number().positive().max(3650).default(7),
        /** Studies checked per pass at most (one QIDO-RS query each); the next pass goes on from there. */
        deletedSweepMaxStudies: z.number().int().min(1).max(100_000).default(500),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.ingest.modes?.includes('orthanc-changes') && config.pacs && config.pacs.kind !== 'orthanc') {
      ctx.addIssue({ code: 'custom', path: ['ingest', 'modes'], message: 'orthanc-changes needs pacs.kind orthanc' });
    }
  });

export type Config = z.infer<typeof configSchema>;
