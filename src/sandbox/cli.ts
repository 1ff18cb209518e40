/**
 * `npm run sandbox`: starts the sandbox (./index.ts), writes `.sandbox/pacs-triage.yaml` and
 * `.sandbox/env`, prints where everything is and the first-hour commands (the README's, which
 * test/integration/first-hour.test.ts runs), and runs until SIGINT or SIGTERM.
 */
import { isAbsolute, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { startSandbox, type Sandbox, type SandboxOptions } from './index.ts';
import { onlyLoopbackHere } from './isolation.ts';
import { claimWorkspace, SandboxBusyError, type Workspace } from './workspace.ts';

export function sandboxUsage(): string {
  return `Usage: npm run sandbox -- [options]

Starts a real Orthanc (DICOMweb, Orthanc Explorer) and an in-memory FHIR R4 server seeded with the
demo patients' records (test/fixtures/demo), writes a pacs-triage config and shell variables to
.sandbox/, and prints how to go on (README "The first hour"). Orthanc starts empty: upload the
study you want triaged. Ctrl-C stops both and removes .sandbox/.

  --dicom-dir DIR        also load these DICOM files into Orthanc at start (recursively)
  --fhir-bundle FILE     transaction Bundle to load (default test/fixtures/demo/fhir-bundle.json)
  --fhir-port N          FHIR server port (default: a free port)
  --orthanc-port N       Orthanc HTTP port (default: a free port)
  --api-port N           port written as api.port for serve (default 8080, or a free port when taken)
  --dicom                also start Orthanc's DICOM listener (binds every interface)
  --dicom-port N         its port (default: a free port)
  --user NAME --password PW   Orthanc credentials (default triage / random)
  --fhir-token TOKEN     require this bearer token on the FHIR server
  --keep                 keep Orthanc's storage, the job store and .sandbox/ on exit
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
      'api-port': { type: 'string' },
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
  const apiPort = port('api-port', values['api-port']);
  if (apiPort !== undefined) opts.apiPort = apiPort;
  const dicomPort = port('dicom-port', values['dicom-port']);
  if (dicomPort !== undefined) opts.orthancDicomPort = dicomPort;
  if (values.dicom || dicomPort !== undefined) opts.dicom = true;
  if (values.user) opts.username = values.user;
  if (values.password) opts.password = values.password;
  if (values['fhir-token']) opts.fhirToken = values['fhir-token'];
  if (values.keep) opts.keep = true;
  return opts;
}

/** A path as the user's shell reaches it: relative to where `npm run` was typed when inside it. */
export function shownPath(path: string, shellDir = process.env['INIT_CWD'] ?? process.cwd()): string {
  const rel = relative(shellDir, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

/** The demo study the first hour uploads (test/fixtures/demo/README.md: patient pat-demo01 in the bundle). */
export const FIRST_UPLOAD = 'test/fixtures/demo/dicom/demo01.dcm';

/**
 * The commands that follow `npm run sandbox`, as the README's first-hour section has them, with
 * the sandbox's files named as the user's shell reaches them (npm runs scripts from the package
 * folder; INIT_CWD is where `npm run` was typed).
 */
export function nextCommands(workspace: Pick<Workspace, 'configPath' | 'envPath'>, shellDir?: string): { env: string; doctor: string; serve: string; upload: string } {
  const shown = (p: string): string => shownPath(p, shellDir);
  return {
    env: `set -a; . ${shown(workspace.envPath)}; set +a`,
    doctor: `npx pacs-triage doctor --config ${shown(workspace.configPath)}`,
    serve: `npx pacs-triage serve --config ${shown(workspace.configPath)}`,
    upload: `curl -sS -u "$ORTHANC_AUTH" -H 'Content-Type: application/dicom' --data-binary @${FIRST_UPLOAD} "$ORTHANC_URL/instances"`,
  };
}

function banner(sandbox: Sandbox, workspace: Workspace, options: SandboxOptions): string[] {
  const { orthanc, fhir, seeded } = sandbox;
  const next = nextCommands(workspace);
  const reach = onlyLoopbackHere()
    ? [
        'Orthanc has no bind-address option and listens on every interface, but this network namespace has',
        'only loopback: nothing outside it can reach Orthanc, the FHIR server or serve (nor a browser outside it).',
      ]
    : [
        `WARNING: Orthanc has no bind-address option: it listens on port ${orthanc.httpPort} of EVERY network interface of`,
        'this machine, not only 127.0.0.1 (authentication on, remote access refused). The FHIR server and serve',
        'listen on 127.0.0.1 only. To keep Orthanc off the network, run the sandbox, serve and the browser in a',
        'network namespace that has only loopback (`sudo unshare --net`, then `ip link set lo up`).',
      ];
  return [
    '',
    'pacs-triage sandbox is running (synthetic data, lost when it stops).',
    '',
    `  Orthanc REST      ${orthanc.baseUrl}   (Orthanc ${orthanc.lastStartMs?.toFixed(0)} ms to start)`,
    `  Orthanc Explorer  ${orthanc.baseUrl}/app/explorer.html`,
    `  DICOMweb          ${orthanc.dicomWebUrl}`,
    `  credentials       ${orthanc.auth.username} / ${orthanc.auth.password}`,
    ...(options.dicom ? [`  DICOM (DIMSE)     AET ${orthanc.aet} on port ${orthanc.dicomPort} (all interfaces)`] : []),
    `  FHIR R4           ${fhir.url}${options.fhirToken ? `   (Authorization: Bearer ${options.fhirToken})` : ''}`,
    '',
    seeded.instances > 0
      ? `  Orthanc holds ${seeded.instances} DICOM instances in ${seeded.studies} studies${seeded.syntheticDicom ? ' (synthetic)' : ''}.`
      : '  Orthanc is empty: it waits for the study you upload.',
    `  The FHIR server holds ${seeded.fhirEntries} resources${seeded.syntheticFhir ? ' (synthetic)' : " (the demo patients' records)"}.`,
    '',
    `  config      ${shownPath(workspace.configPath)}`,
    `  variables   ${shownPath(workspace.envPath)}   (PACS_TRIAGE_CONFIG API_URL API_TOKEN ORTHANC_URL ORTHANC_AUTH FHIR_URL)`,
    `  API token   ${sandbox.apiToken}`,
    `  page        ${sandbox.apiUrl}/   (once serve runs; it asks for the API token)`,
    '',
    ...reach,
    '',
    'Next (README "The first hour"), in a second terminal in this folder:',
    `  ${next.env}`,
    `  ${next.doctor}`,
    'in a third:',
    `  ${next.serve}`,
    'and back in the second, upload a study:',
    `  ${next.upload}`,
    '',
    'Ctrl-C to stop.',
  ];
}

/** CLI entry: start, write .sandbox/, print, run until SIGINT/SIGTERM, stop. Resolves to an exit code. */
export async function runSandbox(options: SandboxOptions = {}): Promise<number> {
  const print = options.print ?? ((line: string) => console.log(line));
  let workspace: Workspace;
  try {
    workspace = await claimWorkspace(process.cwd());
  } catch (err) {
    console.error(`sandbox: ${err instanceof SandboxBusyError ? '' : 'cannot write .sandbox/: '}${(err as Error).message}`);
    return 1;
  }
  let sandbox: Sandbox | undefined;
  try {
    sandbox = await startSandbox(options);
    await workspace.write(sandbox.configYaml, {
      API_URL: sandbox.apiUrl,
      API_TOKEN: sandbox.apiToken,
      ORTHANC_URL: sandbox.orthanc.baseUrl,
      ORTHANC_AUTH: `${sandbox.orthanc.auth.username}:${sandbox.orthanc.auth.password}`,
      FHIR_URL: sandbox.fhir.url,
    });
  } catch (err) {
    console.error(`sandbox: failed to start: ${(err as Error).message}`);
    await sandbox?.stop();
    await workspace.release(false);
    return 1;
  }
  const running = sandbox;
  for (const line of banner(running, workspace, options)) print(line);

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
  await running.stop();
  await workspace.release(options.keep ?? false);
  return 0;
}
