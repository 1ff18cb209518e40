/**
 * The sandbox: a real Orthanc (with DICOMweb) and an in-memory FHIR R4 server on loopback,
 * seeded with the demo data, so `pacs-triage serve` can be tried end to end without a hospital.
 *
 *   npm run sandbox [-- --fhir-port 8081 --orthanc-port 8042 --keep]
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Bundle } from '@medplum/fhirtypes';
import { startFhirServer, type RunningFhirServer } from './fhir-server.ts';
import { OrthancServer } from './orthanc.ts';
import { makeSyntheticCt, newUid } from './synthetic-dicom.ts';

export { createFhirApp, startFhirServer, FaultInjector, SandboxRepository, type FhirApp, type RunningFhirServer } from './fhir-server.ts';
export { OrthancServer, OrthancStartError, findOrthancBinary, findDicomWebPlugin, freePorts, startOrthanc, type OrthancOptions } from './orthanc.ts';
export { makeSyntheticCt, newUid } from './synthetic-dicom.ts';

/** Patient.identifier system the demo data uses for DICOM PatientID (see mappings/fhir.yaml). */
export const SANDBOX_MRN_SYSTEM = 'urn:pacs-triage:synthetic:mrn';

export interface SandboxOptions {
  /** Folder of DICOM files to load into Orthanc (recursively). Default test/fixtures/demo/dicom. */
  dicomDir?: string;
  /** Transaction Bundle for the FHIR server. Default test/fixtures/demo/fhir-bundle.json. */
  fhirBundle?: string;
  /** Ports; 0 or absent = a free port. */
  fhirPort?: number;
  orthancHttpPort?: number;
  /** Start Orthanc's DICOM (DIMSE) listener too. Off by default: it would listen on every interface. */
  dicom?: boolean;
  orthancDicomPort?: number;
  /** Orthanc basic-auth credentials (default user `triage`, random password). */
  username?: string;
  password?: string;
  /** Require this bearer token on the FHIR server. */
  fhirToken?: string;
  /** Keep Orthanc's storage and the generated config when stopping. */
  keep?: boolean;
  /** Where to print (default console.log). */
  print?: (line: string) => void;
}

export interface Sandbox {
  orthanc: OrthancServer;
  fhir: RunningFhirServer;
  /** Generated pacs-triage config (YAML) pointing at both servers. */
  configPath: string;
  configYaml: string;
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

function yamlString(s: string): string {
  return JSON.stringify(s); // JSON strings are valid YAML scalars
}

/** Starts Orthanc + FHIR, seeds them and returns handles; does not wait for a signal. */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const print = options.print ?? ((line: string) => console.log(line));
  const root = process.cwd();
  const dicomDir = resolve(root, options.dicomDir ?? 'test/fixtures/demo/dicom');
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
    extraConfig: { Name: 'pacs-triage-sandbox' },
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
    let files: Buffer[];
    let syntheticDicom = false;
    let synthetic: ReturnType<typeof syntheticStudies> | undefined;
    const paths = await listDicomFiles(dicomDir);
    if (paths.length > 0) {
      files = await Promise.all(paths.map((p) => readFile(p)));
    } else {
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
      '  # serve refuses to start without a token; the worklist page asks for it',
      `  token: ${yamlString(apiToken)}`,
      '',
    ].join('\n');
    const configPath = join(workDir, 'pacs-triage.sandbox.yaml');
    await writeFile(configPath, configYaml, { mode: 0o600 });

    const running = fhir;
    let stopped = false;
    return {
      orthanc,
      fhir: running,
      configPath,
      configYaml,
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

export function sandboxUsage(): string {
  return `Usage: npm run sandbox -- [options]

Starts a real Orthanc (DICOMweb) and an in-memory FHIR R4 server on 127.0.0.1, seeded with
test/fixtures/demo, and prints how to point pacs-triage at them. Ctrl-C stops both.

  --dicom-dir DIR        DICOM files to load (default test/fixtures/demo/dicom)
  --fhir-bundle FILE     transaction Bundle to load (default test/fixtures/demo/fhir-bundle.json)
  --fhir-port N          FHIR server port (default: a free port)
  --orthanc-port N       Orthanc HTTP port (default: a free port)
  --dicom                also start Orthanc's DICOM listener (binds every interface)
  --dicom-port N         its port (default: a free port)
  --user NAME --password PW   Orthanc credentials (default triage / random)
  --fhir-token TOKEN     require this bearer token on the FHIR server
  --keep                 keep Orthanc's storage and the config file on exit
  -h, --help`;
}

export function parseSandboxArgs(argv: string[]): SandboxOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      'dicom-dir': { type: 'string' },
      'fhir-bundle': { type: 'string' },
      'fhir-port': { type: 'string' },
      'orthanc-port': { type: 'string' },
      dicom: { type: 'boolean' },
      'dicom-port': { type: 'string' },
      user: { type: 'string' },
      password: { type: 'string' },
      'fhir-token': { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const port = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name}: not a port: ${v}`);
    return n;
  };
  const opts: SandboxOptions = {};
  if (values['dicom-dir']) opts.dicomDir = values['dicom-dir'];
  if (values['fhir-bundle']) opts.fhirBundle = values['fhir-bundle'];
  const fhirPort = port('fhir-port', values['fhir-port']);
  if (fhirPort !== undefined) opts.fhirPort = fhirPort;
  const orthancPort = port('orthanc-port', values['orthanc-port']);
  if (orthancPort !== undefined) opts.orthancHttpPort = orthancPort;
  const dicomPort = port('dicom-port', values['dicom-port']);
  if (dicomPort !== undefined) opts.orthancDicomPort = dicomPort;
  if (values.dicom || dicomPort !== undefined) opts.dicom = true;
  if (values.user) opts.username = values.user;
  if (values.password) opts.password = values.password;
  if (values['fhir-token']) opts.fhirToken = values['fhir-token'];
  if (values.keep) opts.keep = true;
  return opts;
}

/** CLI entry: start, print, run until SIGINT/SIGTERM, stop. Resolves to an exit code. */
export async function runSandbox(options: SandboxOptions = {}): Promise<number> {
  const print = options.print ?? ((line: string) => console.log(line));
  let sandbox: Sandbox;
  try {
    sandbox = await startSandbox(options);
  } catch (err) {
    console.error(`sandbox: failed to start: ${(err as Error).message}`);
    return 1;
  }
  const { orthanc, fhir, seeded } = sandbox;
  print('');
  print('pacs-triage sandbox is running (data is synthetic and lost on exit).');
  print('The FHIR server listens on loopback only. Orthanc has no bind-address option: it listens on every');
  print('interface, with authentication on and remote access refused; run the sandbox inside a network');
  print('namespace (`sudo unshare --net`, then `ip link set lo up`) to keep it off the network entirely.');
  print('');
  print(`  Orthanc REST   ${orthanc.baseUrl}   (Orthanc ${orthanc.lastStartMs?.toFixed(0)} ms to start)`);
  print(`  DICOMweb       ${orthanc.dicomWebUrl}`);
  print(`  credentials    ${orthanc.auth.username} / ${orthanc.auth.password}`);
  if (options.dicom) print(`  DICOM (DIMSE)  AET ${orthanc.aet} on port ${orthanc.dicomPort} (all interfaces)`);
  print(`  FHIR R4        ${fhir.url}${options.fhirToken ? `   (Authorization: Bearer ${options.fhirToken})` : ''}`);
  print('');
  print(
    `  seeded: ${seeded.instances} DICOM instances in ${seeded.studies} studies${seeded.syntheticDicom ? ' (synthetic)' : ''}; ` +
      `${seeded.fhirEntries} FHIR resources${seeded.syntheticFhir ? ' (synthetic)' : ''}`,
  );
  print('');
  print(`  try:  curl -u '${orthanc.auth.username}:${orthanc.auth.password}' ${orthanc.dicomWebUrl}/studies`);
  print(`        curl '${fhir.url}/Patient'${options.fhirToken ? ` -H 'Authorization: Bearer ${options.fhirToken}'` : ''}`);
  print('');
  print(`pacs-triage config (also written to ${sandbox.configPath}):`);
  print('');
  print(sandbox.configYaml.replace(/^/gm, '    ').trimEnd());
  print('');
  print(`  run:  npx pacs-triage doctor --config ${sandbox.configPath}`);
  print(`        npx pacs-triage serve --config ${sandbox.configPath}`);
  print(`  page: http://127.0.0.1:8080/   (it asks for the API token: ${sandbox.apiToken})`);
  print('');
  print('Ctrl-C to stop.');

  await new Promise<void>((resolvePromise) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolvePromise();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
  print('\nstopping...');
  await sandbox.stop();
  return 0;
}
