import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { loadMappings, type Mappings } from './config/mappings.ts';
import { TriageModel } from './adapters/model/index.ts';
import { DicomWebClient } from './adapters/dicomweb/client.ts';
import { FhirClient } from './adapters/fhir/client.ts';
import { FhirServerSource } from './adapters/fhir/clinical-source.ts';
import { SmartAuth, defaultSmartScope, readSmartKey } from './adapters/fhir/smart-auth.ts';
import { readTlsFiles } from './adapters/http/tls.ts';
import { OrthancClient } from './adapters/orthanc/client.ts';
import { PacsStudySource, ServerSink } from './adapters/server-io.ts';
import type { PipelineDeps } from './pipeline/process-study.ts';
import { openSqliteStore } from './state/sqlite/index.ts';
import type { Store } from './state/ports.ts';
import { TriageError } from './domain/errors.ts';

/** Our own name and version, for the SR's Software Versions and the FHIR Provenance. */
export const SOFTWARE = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
})();

export interface Servers {
  dicomweb: DicomWebClient;
  orthanc: OrthancClient | undefined;
  fhir: FhirClient | undefined;
  close(): void;
}

/** The FHIR client (auth, TLS) of `config.fhir`; certificate and key problems are added to `problems`. */
function fhirClientOf(config: Config, problems: string[]): FhirClient | undefined {
  if (!config.fhir) return undefined;
  const f = config.fhir;
  const tls = readTlsFiles(f.tls, 'fhir.tls', problems);
  const auth = f.auth;
  const smartKey = auth?.smart ? readSmartKey(auth.smart, 'fhir.auth.smart', problems) : undefined;
  const smart =
    auth?.smart && smartKey
      ? new SmartAuth({ ...auth.smart, scope: auth.smart.scope ?? defaultSmartScope(f.writeOrderPriority), key: smartKey, timeoutMs: f.timeoutMs, tls })
      : undefined;
  return new FhirClient({
    baseUrl: f.baseUrl,
    timeoutMs: f.timeoutMs,
    ...(auth?.token !== undefined ? { token: auth.token } : {}),
    ...(smart ? { smart } : {}),
    ...(tls ? { tls } : {}),
  });
}

function invalid(problems: string[]): TriageError {
  return new TriageError('CONFIG_INVALID', `configuration is invalid:\n${problems.join('\n')}`);
}

/** The FHIR client alone, for what needs no PACS (the watched folder by itself). */
export function connectFhir(config: Config): FhirClient | undefined {
  const problems: string[] = [];
  const fhir = fhirClientOf(config, problems);
  if (problems.length > 0) {
    fhir?.close();
    throw invalid(problems);
  }
  return fhir;
}

/** The composition root: the only place that knows which adapter implements which port. */
export function connectServers(config: Config): Servers {
  if (!config.pacs) {
    throw new TriageError('CONFIG_INVALID', 'configuration is invalid:\n  - pacs: required for this command (set pacs.baseUrl, or PACS_TRIAGE_PACS__BASE_URL)');
  }
  const pacs = config.pacs;
  // Certificates and keys are read here, once, and every unreadable one is listed at once.
  const problems: string[] = [];
  const pacsTls = readTlsFiles(pacs.tls, 'pacs.tls', problems);
  const fhir = fhirClientOf(config, problems);
  if (problems.length > 0) {
    fhir?.close();
    throw invalid(problems);
  }
  const dicomweb = new DicomWebClient({
    baseUrl: pacs.baseUrl.replace(/\/$/, '') + pacs.dicomWebPath,
    auth: pacs.auth,
    timeoutMs: pacs.timeoutMs,
    tls: pacsTls,
    retrieveTransferSyntax: pacs.retrieveTransferSyntax,
  });
  const orthanc = pacs.kind === 'orthanc' ? new OrthancClient({ baseUrl: pacs.baseUrl, auth: pacs.auth, timeoutMs: pacs.timeoutMs, tls: pacsTls }) : undefined;
  return {
    dicomweb,
    orthanc,
    fhir,
    close: () => {
      dicomweb.close();
      orthanc?.close();
      fhir?.close();
    },
  };
}

export interface Runtime {
  model: TriageModel;
  mappings: Mappings;
  store: Store;
  close(): Promise<void>;
}

export async function openRuntime(config: Config, log: Logger, storePath: string = config.store.path): Promise<Runtime> {
  const model = await TriageModel.load(config.model, log);
  let mappings: Mappings;
  try {
    mappings = loadMappings(config.mappings.dir, model.manifest.findings.map((f) => f.code));
  } catch (err) {
    await model.close();
    throw err;
  }
  const store = openSqliteStore(storePath);
  return {
    model,
    mappings,
    store,
    close: async () => {
      await store.close();
      await model.close();
    },
  };
}

/** `onSrStored` is told Orthanc's id of each SR stored (see ServerSink). */
export function serverPipeline(config: Config, runtime: Runtime, servers: Servers, log: Logger, onSrStored?: (orthancInstanceId: string) => void): PipelineDeps {
  return {
    model: runtime.model,
    mappings: runtime.mappings,
    uidRoot: config.uidRoot,
    shadow: config.shadow,
    source: new PacsStudySource(servers.dicomweb),
    clinical: servers.fhir ? new FhirServerSource(servers.fhir) : undefined,
    sink: new ServerSink(servers.dicomweb, servers.orthanc, servers.fhir, onSrStored),
    store: runtime.store,
    log,
    writeOrderPriority: config.fhir?.writeOrderPriority ?? false,
    software: SOFTWARE,
  };
}
