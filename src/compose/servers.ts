/**
 * The upstream clients of a configuration: DICOMweb (and Orthanc's REST API) for the PACS, FHIR
 * with its auth and TLS. Certificates and keys are read once, here, and every unreadable one is
 * listed at once.
 */
import { logEvent } from '../domain/log-events.ts';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { TriageError } from '../domain/errors.ts';
import { DicomWebClient } from '../adapters/dicomweb/client.ts';
import { FhirClient } from '../adapters/fhir/client.ts';
import { SmartAuth, defaultSmartScope, readSmartKey } from '../adapters/fhir/smart-auth.ts';
import { CircuitBreaker } from '../adapters/http/breaker.ts';
import { readTlsFiles } from '../adapters/http/tls.ts';
import { OrthancClient } from '../adapters/orthanc/client.ts';
import type { Metrics } from '../observability/metrics.ts';

/** The upstreams; no PACS (`dicomweb` undefined) when the folder mode runs alone. */
export interface Servers {
  dicomweb: DicomWebClient | undefined;
  orthanc: OrthancClient | undefined;
  fhir: FhirClient | undefined;
  close(): void;
}

export const NO_PACS = 'configuration is invalid:\n  - pacs: required for this command (set pacs.baseUrl, or PACS_TRIAGE_PACS__BASE_URL)';

function invalid(problems: string[]): TriageError {
  return new TriageError('CONFIG_INVALID', `configuration is invalid:\n${problems.join('\n')}`);
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
    maxResponseBytes: config.limits.upstream.fhirResponseBytes,
    maxBundleEntries: config.limits.upstream.fhirBundleEntries,
    ...(auth?.token !== undefined ? { token: auth.token } : {}),
    ...(smart ? { smart } : {}),
    ...(tls ? { tls } : {}),
  });
}

/**
 * The clients of `config`. Without `pacs.baseUrl` there is no PACS client, which only the folder
 * mode alone accepts (`requirePacs` false); every other caller gets CONFIG_INVALID naming the key.
 */
export function connectServers(config: Config, options: { requirePacs?: boolean } = {}): Servers {
  if (!config.pacs && (options.requirePacs ?? true)) throw new TriageError('CONFIG_INVALID', NO_PACS);
  const problems: string[] = [];
  const pacs = config.pacs;
  const pacsTls = pacs ? readTlsFiles(pacs.tls, 'pacs.tls', problems) : undefined;
  const fhir = fhirClientOf(config, problems);
  if (problems.length > 0) {
    fhir?.close();
    throw invalid(problems);
  }
  const dicomweb = pacs
    ? new DicomWebClient({
        baseUrl: pacs.baseUrl.replace(/\/$/, '') + pacs.dicomWebPath,
        auth: pacs.auth,
        timeoutMs: pacs.timeoutMs,
        tls: pacsTls,
        retrieveTransferSyntax: pacs.retrieveTransferSyntax,
        maxResponseBytes: config.limits.upstream.pacsResponseBytes,
      })
    : undefined;
  const orthanc =
    pacs?.kind === 'orthanc'
      ? new OrthancClient({ baseUrl: pacs.baseUrl, auth: pacs.auth, timeoutMs: pacs.timeoutMs, tls: pacsTls, maxResponseBytes: config.limits.upstream.pacsResponseBytes })
      : undefined;
  return {
    dicomweb,
    orthanc,
    fhir,
    close: () => {
      dicomweb?.close();
      orthanc?.close();
      fhir?.close();
    },
  };
}

/** The PACS client, or CONFIG_INVALID naming `pacs.baseUrl` when none is configured. */
export function requirePacs(servers: Servers): DicomWebClient {
  if (!servers.dicomweb) throw new TriageError('CONFIG_INVALID', NO_PACS);
  return servers.dicomweb;
}

/** Breakers (one per upstream, shared by its clients) and error counters on every client. */
export function instrument(servers: Servers, config: Config, metrics: Metrics, log: Logger): { pacs: CircuitBreaker; fhir: CircuitBreaker } {
  const make = (name: 'pacs' | 'fhir'): CircuitBreaker => {
    const b = new CircuitBreaker(name, config.breaker);
    b.onChange = (state) => {
      metrics.breakerChanged(name, state);
      logEvent(log, `upstream.circuit.${state}`, { target: name });
    };
    return b;
  };
  const breakers = { pacs: make('pacs'), fhir: make('fhir') };
  const onError = (target: string, status: number | string): void => metrics.upstreamError(target, status);
  for (const http of [servers.dicomweb?.http, servers.orthanc?.http]) {
    if (!http) continue;
    http.breaker = breakers.pacs;
    http.onError = onError;
  }
  if (servers.fhir) {
    servers.fhir.breaker = breakers.fhir;
    servers.fhir.onError = onError;
  }
  return breakers;
}
