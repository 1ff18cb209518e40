/**
 * The composition root of every mode that runs the pipeline against servers or a watched folder
 * (serve, run-once, process, backfill, retract): which adapter fills which port, built once here.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { TriageError } from '../domain/errors.ts';
import { FhirServerSource } from '../adapters/fhir/clinical-source.ts';
import type { CircuitBreaker } from '../adapters/http/breaker.ts';
import { PacsStudySource, ServerSink } from '../adapters/server-io.ts';
import { Metrics } from '../observability/metrics.ts';
import { ingestModes } from '../pipeline/ingest/modes.ts';
import { ownSeries, RecentIds, type OwnSeries } from '../pipeline/ingest/own-writes.ts';
import type { PipelineDeps, StudySource } from '../pipeline/ports.ts';
import type { RetractionDeps } from '../pipeline/retract.ts';
import type { VerificationDeps } from '../pipeline/verify.ts';
import { WriteWarnings } from '../pipeline/writeback/optional-writes.ts';
import type { Lease, RetryPolicy } from '../pipeline/worker.ts';
import type { Leadership } from '../state/ports.ts';
import { openFolderIngest, type FolderIngest } from './folder.ts';
import { DicomWorkerPool } from './workers/dicom-pool.ts';
import { fhirRiskAssessments, serverRetractionPorts } from './retraction-ports.ts';
import { openRuntime, type Runtime } from './runtime.ts';
import { connectServers, instrument, type Servers } from './servers.ts';
import { SOFTWARE } from './software.ts';

export interface Service {
  config: Config;
  log: Logger;
  runtime: Runtime;
  servers: Servers;
  /** The watched folder (ingest mode folder), when it runs. */
  folder: FolderIngest | undefined;
  deps: PipelineDeps;
  retry: RetryPolicy;
  lease: Lease;
  metrics: Metrics;
  breakers: { pacs: CircuitBreaker; fhir: CircuitBreaker };
  /** Our own SRs and rejection notes (per-instance ingest must not re-run a study for them). */
  own: { isOwnSeries: OwnSeries; ownInstances: RecentIds };
  /** Optional writes refused for a configuration reason since this process started (/readyz lists them). */
  warnings: WriteWarnings;
  /** Retractions' ports; undefined without a PACS (the folder mode alone wrote nothing to one). */
  retractions: RetractionDeps | undefined;
  /** Readers' accepts to write to the EHR (RiskAssessment final, Provenance). */
  verifications: VerificationDeps;
  /** What this replica runs alone (a polling source, the sweep), with a store shared by replicas. */
  leaderships: Map<string, Leadership>;
  /** Claims made by this process (for worker.backfillShare). */
  claims: number;
  /** Set on SIGTERM: workers finish the job in hand and claim no more. */
  stopping: boolean;
  close(): Promise<void>;
}

/** Why retractions cannot run without a PACS. */
export const NO_PACS_TO_RETRACT =
  'retraction needs a PACS (pacs.baseUrl): the folder mode alone writes its results as files in ingest.folder.outDir; delete or replace them there';

export async function openService(config: Config, log: Logger): Promise<Service> {
  const modes = ingestModes(config);
  const servers = connectServers(config, { requirePacs: !modes.includes('folder') });
  let runtime: Runtime;
  try {
    runtime = await openRuntime(config, log);
  } catch (err) {
    servers.close();
    throw err;
  }
  const metrics = new Metrics(runtime.store);
  metrics.setProvider(runtime.model.provider, runtime.models.map((m) => `${m.manifest.id}@${m.manifest.version}`).join(','));
  for (const model of runtime.models) {
    model.onBatch = (size, seconds) => {
      metrics.batchSize.observe(size);
      metrics.inferenceSeconds.observe(seconds);
    };
  }
  const breakers = instrument(servers, config, metrics, log);
  const ownInstances = new RecentIds();
  const store = runtime.store;
  const pacsSource: StudySource | undefined = servers.dicomweb ? new PacsStudySource(servers.dicomweb) : undefined;
  const pool = config.worker.decodeThreads > 0 ? new DicomWorkerPool(config.worker.decodeThreads) : undefined;
  const folder = modes.includes('folder')
    ? openFolderIngest(
        config,
        pacsSource,
        servers.fhir,
        async (uid) => (await store.get(uid))?.source === 'folder',
        pool && ((bytes, limits, partial) => pool.header(bytes, limits, partial, 'ingest.folder')),
      )
    : undefined;
  const source = folder?.source ?? pacsSource;
  const sink = servers.dicomweb ? new ServerSink(servers.dicomweb, servers.orthanc, servers.fhir, (id) => ownInstances.add(id)) : folder?.sink;
  if (!source || !sink) {
    await pool?.close();
    servers.close();
    await runtime.close();
    throw new TriageError('CONFIG_INVALID', 'configuration is invalid:\n  - ingest.folder: required for the folder mode');
  }
  const warnings = new WriteWarnings(log);
  const deps: PipelineDeps = {
    model: runtime.model,
    ...(runtime.models.length > 1 ? { models: runtime.models } : {}),
    mappings: runtime.mappings,
    uidRoot: config.uidRoot,
    shadow: config.shadow,
    source,
    clinical: servers.fhir ? new FhirServerSource(servers.fhir) : undefined,
    sink,
    store,
    log,
    writeOrderPriority: config.fhir?.writeOrderPriority ?? false,
    software: SOFTWARE,
    warnings,
    keepPatientIdentity: config.api.showPatientIdentity,
    metrics,
    dicomLimits: config.limits.dicom,
    ...(pool ? { decode: (bytes, spec, limits) => pool.tensor(bytes, spec, limits) } : {}),
  };
  const leaderships = new Map<string, Leadership>();
  const retractions: RetractionDeps | undefined = servers.dicomweb
    ? {
        store,
        ports: serverRetractionPorts({ dicomweb: servers.dicomweb, orthanc: servers.orthanc, fhir: servers.fhir }),
        uidRoot: config.uidRoot,
        shadow: config.shadow,
        software: SOFTWARE,
        log,
        metrics,
      }
    : undefined;
  const verifications: VerificationDeps = {
    store,
    fhir: servers.fhir ? fhirRiskAssessments(servers.fhir) : undefined,
    shadow: config.shadow,
    software: SOFTWARE,
    log,
    metrics,
  };
  return {
    config,
    log,
    runtime,
    servers,
    folder,
    deps,
    retry: { maxAttempts: config.worker.maxAttempts, baseDelayMs: config.worker.retryBaseDelayMs, maxDelayMs: config.worker.retryMaxDelayMs },
    lease: { owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`, leaseMs: config.worker.leaseMs },
    metrics,
    breakers,
    own: { isOwnSeries: ownSeries(config.uidRoot, runtime.models.map((m) => m.manifest)), ownInstances },
    warnings,
    retractions,
    verifications,
    leaderships,
    claims: 0,
    stopping: false,
    close: async () => {
      await Promise.all([...leaderships.values()].map((l) => l.release()));
      servers.close();
      await pool?.close();
      await runtime.close();
    },
  };
}
