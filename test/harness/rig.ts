/**
 * The servers most integration tests share: a real Orthanc (no DIMSE port), the sandbox FHIR
 * server seeded with the demo Bundle, a DICOMweb and a REST client on that Orthanc, a work folder,
 * and the configuration that points pacs-triage at them.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DicomWebClient } from '../../src/adapters/dicomweb/client.ts';
import { OrthancClient } from '../../src/adapters/orthanc/client.ts';
import { startFhirServer, type RunningFhirServer } from '../../src/sandbox/fhir-server.ts';
import { startOrthanc, type OrthancOptions, type OrthancServer } from '../../src/sandbox/orthanc.ts';

const DEMO_BUNDLE = 'test/fixtures/demo/fhir-bundle.json';
export const RIG_UID_ROOT = '1.2.826.0.1.3680043.10.999';
/** The API token every rig configuration carries (serve refuses to start without one). */
export const RIG_API_TOKEN = 'rig-api-token-0123456789abcdef';

export interface Rig {
  orthanc: OrthancServer;
  fhir: RunningFhirServer;
  dicomweb: DicomWebClient;
  rest: OrthancClient;
  /** A fresh folder for this test file. */
  dir: string;
  /** The job store every configuration written here uses. */
  storePath: string;
  /**
   * Writes `<dir>/<name>` pointing at these servers and this store; `pacs`, `fhir` and `api` in
   * `extra` are merged into theirs, every other key is set as given. Returns the file's path.
   */
  config(name: string, extra?: { pacs?: Record<string, unknown>; fhir?: Record<string, unknown>; api?: Record<string, unknown>; [key: string]: unknown }): string;
  close(): Promise<void>;
}

export async function startRig(name: string, orthancOptions: Omit<OrthancOptions, 'dicomServer'> = {}): Promise<Rig> {
  const orthanc = await startOrthanc({ dicomServer: false, ...orthancOptions });
  const fhir = await startFhirServer();
  await fhir.seed(JSON.parse(readFileSync(DEMO_BUNDLE, 'utf8')));
  const dicomweb = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, auth: orthanc.auth, timeoutMs: 10_000 });
  const rest = new OrthancClient({ baseUrl: orthanc.baseUrl, auth: orthanc.auth, timeoutMs: 10_000 });
  const dir = mkdtempSync(path.join(tmpdir(), `pacs-triage-${name}-`));
  const storePath = path.join(dir, 'jobs.sqlite');
  return {
    orthanc,
    fhir,
    dicomweb,
    rest,
    dir,
    storePath,
    config(file, extra = {}) {
      const { pacs, fhir: fhirExtra, api, ...rest } = extra;
      const target = path.join(dir, file);
      writeFileSync(
        target,
        JSON.stringify({
          pacs: { baseUrl: orthanc.baseUrl, auth: orthanc.auth, ...pacs },
          fhir: { baseUrl: fhir.url, ...fhirExtra },
          store: { path: storePath },
          api: { token: RIG_API_TOKEN, ...api },
          uidRoot: RIG_UID_ROOT,
          ...rest,
        }),
      );
      return target;
    },
    async close() {
      dicomweb.close();
      rest.close();
      await fhir.close();
      await orthanc.cleanup();
    },
  };
}
