/**
 * The sandbox: a real Orthanc (with DICOMweb) and an in-memory FHIR R4 server, the FHIR server
 * seeded with the demo patients' records, so `pacs-triage serve` can be tried end to end without a
 * hospital. Orthanc starts empty, as a PACS that has not yet received the study to triage: a
 * study already in it when `serve` starts would be processed at once, and uploading it then would
 * change nothing (README "The first hour"). `npm run sandbox` is ./cli.ts.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Bundle } from '@medplum/fhirtypes';
import { startFhirServer, type RunningFhirServer } from './fhir-server.ts';
import { OrthancServer, freePorts } from './orthanc.ts';
import { makeSyntheticCt, newUid } from './synthetic-dicom.ts';

export { createFhirApp, startFhirServer, FaultInjector, SandboxRepository, type FhirApp, type RunningFhirServer } from './fhir-server.ts';
export { OrthancServer, OrthancStartError, findOrthancBinary, findDicomWebPlugin, freePorts, startOrthanc, type OrthancOptions } from './orthanc.ts';
export { makeSyntheticCt, newUid } from './synthetic-dicom.ts';

/** Patient.identifier system the demo data uses for DICOM PatientID (see mappings/fhir.yaml). */
export const SANDBOX_MRN_SYSTEM = 'urn:pacs-triage:synthetic:mrn';

export interface SandboxOptions {
  /** Folder of DICOM files to load into Orthanc (recursively). Default: none, Orthanc starts empty. */
  dicomDir?: string;
  /** Transaction Bundle for the FHIR server. Default test/fixtures/demo/fhir-bundle.json. */
  fhirBundle?: string;
  /** Ports; 0 or absent = a free port. */
  fhirPort?: number;
  orthancHttpPort?: number;
  /** Port `serve` is configured to listen on. Default: 8080 when it is free, else a free port. */
  apiPort?: number;
  /** Start Orthanc's DICOM (DIMSE) listener too. Off by default: it would listen on every interface. */
  dicom?: boolean;
  orthancDicomPort?: number;
  /** Orthanc basic-auth credentials (default user `triage`, random password). */
  username?: string;
  password?: string;
  /** Require this bearer token on the FHIR server. */
  fhirToken?: string;
  /** Keep Orthanc's storage, the job store and the generated config when stopping. */
  keep?: boolean;
  /** Where to print (default console.log). */
  print?: (line: string) => void;
}

export interface Sandbox {
  orthanc: OrthancServer;
  fhir: RunningFhirServer;
  /** Generated pacs-triage config (YAML) pointing at both servers; the caller writes it where it wants. */
  configYaml: string;
  /** Where `serve` will answer with that config: http://127.0.0.1:<api.port> (the page is at /). */
  apiUrl: string;
  /** The API token written into the config (serve needs it; the page asks for it). */
  apiToken: string;
  seeded: { instances: number; studies: number; fhirEntries: number; syntheticDicom: boolean; syntheticFhir: boolean };
  stop(): Promise<void>;
}

async function listDicomFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) {
        const head = Buffer.alloc(132);
        const fh = await open(full, 'r');
        try {
          const { bytesRead } = await fh.read(head, 0, 132, 0);
          if (bytesRead === 132 && head.toString('latin1', 128, 132) === 'DICM') out.push(full);
        } finally {
          await fh.close();
        }
      }
    }
  };
  if (existsSync(dir)) await walk(dir);
  return out.sort();
}

/** Two synthetic CT studies for when the demo fixtures are not there yet. */
function syntheticStudies(): { files: Buffer[]; patients: { id: string; name: [string, string]; birthDate: string; gender: 'male' | 'female'; accession: string }[] } {
  const patients = [
    { id: 'SYNTH-0001', name: ['Example', 'Alex'] as [string, string], birthDate: '1958-04-12', gender: 'female' as const, accession: 'SYNACC0001' },
    { id: 'SYNTH-0002', name: ['Sample', 'Sam'] as [string, string], birthDate: '1971-09-30', gender: 'male' as const, accession: 'SYNACC0002' },
  ];
  const files: Buffer[] = [];
  for (const p of patients) {
    const studyInstanceUid = newUid();
    const seriesInstanceUid = newUid();
    for (let i = 1; i <= 3; i++) {
      files.push(
        makeSyntheticCt({
          patientId: p.id,
          patientName: `${p.name[0].toUpperCase()}^${p.name[1].toUpperCase()}`,
          patientBirthDate: p.birthDate.replace(/-/g, ''),
          patientSex: p.gender === 'female' ? 'F' : 'M',
          accessionNumber: p.accession,
          studyInstanceUid,
          seriesInstanceUid,
          instanceNumber: i,
          rows: 256,
          columns: 256,
        }).buffer,
      );
    }
  }
  return { files, patients };
}

function syntheticBundle(patients: ReturnType<typeof syntheticStudies>['patients']): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: patients.flatMap((p, i) => {
      const fullUrl = `urn:uuid:00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`;
      return [
        {
          fullUrl,
          resource: {
            resourceType: 'Patient' as const,
            identifier: [{ system: SANDBOX_MRN_SYSTEM, value: p.id }],
            name: [{ family: p.name[0], given: [p.name[1]] }],
            gender: p.gender,
            birthDate: p.birthDate,
          },
          request: { method: 'POST' as const, url: 'Patient', ifNoneExist: `identifier=${SANDBOX_MRN_SYSTEM}|${p.id}` },
        },
        {
          resource: {
            resourceType: 'Observation' as const,
            status: 'final' as const,
            code: { coding: [{ system: 'http://loinc.org', code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' }] },
            subject: { reference: fullUrl },
            effectiveDateTime: new Date(Date.now() - 86_400_000).toISOString(),
            valueQuantity: { value: 91 + i * 5, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
          },
          request: { method: 'POST' as const, url: 'Observation' },
        },
      ];
    }),
  };
}

/** The port `serve` listens on by default (api.port). */
const DEFAULT_API_PORT = 8080;

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePromise(true)));
  });
}

function yamlString(s: string): string {
  return JSON.stringify(s); // JSON strings are valid YAML scalars
}

/** Starts Orthanc + FHIR, seeds them and returns handles; does not wait for a signal. */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const print = options.print ?? ((line: string) => console.log(line));
  const root = process.cwd();
  const dicomDir = options.dicomDir === undefined ? undefined : resolve(root, options.dicomDir);
  const bundlePath = resolve(root, options.fhirBundle ?? 'test/fixtures/demo/fhir-bundle.json');

  const workDir = await mkdtemp(join(tmpdir(), 'pacs-triage-sandbox-'));
  const orthanc = new OrthancServer({
    workDir: join(workDir, 'orthanc'),
    removeWorkDirOnCleanup: false,
    dicomServer: options.dicom ?? false,
    ...(options.orthancHttpPort ? { httpPort: options.orthancHttpPort } : {}),
    ...(options.orthancDicomPort ? { dicomPort: options.orthancDicomPort } : {}),
    ...(options.username ? { username: options.username } : {}),
    ...(options.password ? { password: options.password } : {}),
    // Explorer is the user's way to see the SR arrive (README "The first hour"); the tests keep it off.
    extraConfig: { Name: 'pacs-triage-sandbox', OrthancExplorerEnabled: true },
  });
  let fhir: RunningFhirServer | undefined;
  try {
    await orthanc.start();
    fhir = await startFhirServer({
      port: options.fhirPort ?? 0,
      host: '127.0.0.1',
      ...(options.fhirToken ? { bearerToken: options.fhirToken } : {}),
    });

    // DICOM
    let files: Buffer[] = [];
    let syntheticDicom = false;
    let synthetic: ReturnType<typeof syntheticStudies> | undefined;
    const paths = dicomDir === undefined ? [] : await listDicomFiles(dicomDir);
    if (paths.length > 0) {
      files = await Promise.all(paths.map((p) => readFile(p)));
    } else if (dicomDir !== undefined) {
      print(`(no DICOM files in ${dicomDir}; loading synthetic CT studies instead)`);
      synthetic = syntheticStudies();
      files = synthetic.files;
      syntheticDicom = true;
    }
    let instances = 0;
    const queue = [...files];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let f = queue.shift(); f; f = queue.shift()) {
          await orthanc.uploadInstance(f);
          instances++;
        }
      }),
    );
    const { CountStudies: studies } = await orthanc.statistics();

    // FHIR
    let bundle: Bundle;
    let syntheticFhir = false;
    if (existsSync(bundlePath)) {
      bundle = JSON.parse(await readFile(bundlePath, 'utf8')) as Bundle;
    } else {
      print(`(no ${bundlePath}; loading a synthetic FHIR bundle instead)`);
      bundle = syntheticBundle((synthetic ?? syntheticStudies()).patients);
      syntheticFhir = true;
    }
    const response = await fhir.seed(bundle);
    const fhirEntries = response.entry?.length ?? 0;

    // A fresh token per sandbox: the API is never open, not even here.
    const apiToken = randomBytes(24).toString('hex');
    const apiPort = options.apiPort ?? ((await portFree(DEFAULT_API_PORT)) ? DEFAULT_API_PORT : (await freePorts(1))[0]!);
    const configYaml = [
      '# pacs-triage config for the sandbox (generated by npm run sandbox)',
      'pacs:',
      '  kind: orthanc',
      `  baseUrl: ${orthanc.baseUrl}`,
      '  dicomWebPath: /dicom-web',
      `  auth: { username: ${yamlString(orthanc.auth.username)}, password: ${yamlString(orthanc.auth.password)} }`,
      'fhir:',
      `  baseUrl: ${fhir.url}`,
      ...(options.fhirToken ? [`  auth: { token: ${yamlString(options.fhirToken)} }`] : []),
      'api:',
      `  port: ${apiPort}`,
      '  # serve refuses to start without a token; the worklist page asks for it',
      `  token: ${yamlString(apiToken)}`,
      'store:',
      '  # beside Orthanc\'s storage: a new sandbox starts with no jobs, as its Orthanc starts with no studies',
      `  path: ${yamlString(join(workDir, 'state', 'pacs-triage.sqlite'))}`,
      '',
    ].join('\n');

    const running = fhir;
    let stopped = false;
    return {
      orthanc,
      fhir: running,
      configYaml,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      apiToken,
      seeded: { instances, studies, fhirEntries, syntheticDicom, syntheticFhir },
      async stop(): Promise<void> {
        if (stopped) return;
        stopped = true;
        await running.close().catch(() => undefined);
        await orthanc.cleanup();
        if (!options.keep) await rm(workDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await fhir?.close().catch(() => undefined);
    await orthanc.cleanup().catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
    throw err;
  }
}
