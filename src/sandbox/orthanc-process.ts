/** Finding and spawning Orthanc: its binary and plugin, free ports, and killing what we started when the test process exits. */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { delimiter, join } from 'node:path';


export interface OrthancAuth {
  username: string;
  password: string;
}

export interface OrthancOptions {
  /** Orthanc executable. Default: $ORTHANC_BIN, /usr/sbin/Orthanc, then PATH. */
  binary?: string;
  /** DICOMweb plugin (.so). Default: $ORTHANC_DICOMWEB_PLUGIN or the Debian plugin dirs. */
  dicomWebPlugin?: string;
  /** Enable the DICOMweb plugin (default true). Throws at start() if the plugin is missing. */
  dicomWeb?: boolean;
  /** Working directory holding config, storage and index. Default: a fresh mkdtemp dir. */
  workDir?: string;
  /** Delete workDir on cleanup(). Default: true for a dir we created, false for a given one. */
  removeWorkDirOnCleanup?: boolean;
  /** Ports; default: free ports picked at start(). */
  httpPort?: number;
  dicomPort?: number;
  /** Start the DICOM (DIMSE) server too (default true). Disabling it makes stop() ~1 s faster. */
  dicomServer?: boolean;
  dicomAet?: string;
  /** Basic-auth user. Default: `triage` with a random password. */
  username?: string;
  password?: string;
  /** Orthanc's log level: 'default' (warnings), 'verbose' or 'trace'. */
  logLevel?: 'default' | 'verbose' | 'trace';
  /** Receives every line Orthanc writes (stdout and stderr). */
  onLog?: (line: string) => void;
  /** How long start() waits for GET /system to answer (default 30 s). */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL (default 20 s). */
  stopTimeoutMs?: number;
  /** Extra top-level configuration keys, merged over the generated config. */
  extraConfig?: Record<string, unknown>;
}

export class OrthancStartError extends Error {
  constructor(
    message: string,
    readonly logTail: string,
  ) {
    super(`${message}\n--- Orthanc output (tail) ---\n${logTail || '(no output)'}\n---`);
    this.name = 'OrthancStartError';
  }
}

export const BINARY_CANDIDATES = ['/usr/sbin/Orthanc', '/usr/bin/Orthanc', '/usr/local/sbin/Orthanc', '/usr/local/bin/Orthanc'];
export const PLUGIN_DIRS = ['/usr/share/orthanc/plugins', '/usr/lib/orthanc', '/usr/local/share/orthanc/plugins', '/usr/local/lib/orthanc'];

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Path of the Orthanc executable, or undefined when it is not installed. */
export function findOrthancBinary(): string | undefined {
  const fromEnv = process.env.ORTHANC_BIN;
  if (fromEnv) return isExecutable(fromEnv) ? fromEnv : undefined;
  for (const candidate of BINARY_CANDIDATES) if (isExecutable(candidate)) return candidate;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'Orthanc'))) return join(dir, 'Orthanc');
  }
  return undefined;
}

/** Path of the DICOMweb plugin shared object, or undefined. */
export function findDicomWebPlugin(): string | undefined {
  const fromEnv = process.env.ORTHANC_DICOMWEB_PLUGIN;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  for (const dir of PLUGIN_DIRS) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    // Prefer the unversioned symlink (libOrthancDicomWeb.so) over libOrthancDicomWeb.so.1.7.
    const hit = names.filter((n) => /^libOrthancDicomWeb\.so(\.|$)/.test(n)).sort((a, b) => a.length - b.length)[0];
    if (hit) return join(dir, hit);
  }
  return undefined;
}

let pdeathsigSupport: boolean | undefined;
/** util-linux setpriv can make the kernel SIGKILL Orthanc when its parent dies. */
export function setprivPath(): string | undefined {
  if (pdeathsigSupport === undefined) {
    const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8' });
    pdeathsigSupport = r.status === 0 && r.stdout.includes('--pdeathsig');
  }
  return pdeathsigSupport ? 'setpriv' : undefined;
}

/** Picks `count` distinct TCP ports that are free on all interfaces right now. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.unref();
          s.once('error', reject);
          // No host: binds the unspecified address, like Orthanc does.
          s.listen(0, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (!addr || typeof addr === 'string') throw new Error('unexpected server address');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

export const live = new Set<ChildProcess>();
let exitHookInstalled = false;
export function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if a test process exits without stopping its Orthanc (setpriv --pdeathsig
  // covers crashes where this hook cannot run).
  process.once('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

export const PORT_IN_USE = /already in use|Address already in use|privileged or already|Cannot bind|port .* busy/i;
