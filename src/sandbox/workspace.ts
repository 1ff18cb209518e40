/**
 * The sandbox's folder in the checkout (`.sandbox/`, git-ignored): the generated config, and the
 * same values as shell variables, at paths that do not change from one run to the next, so the
 * README's first-hour commands can be pasted as they are. The servers' data stays in a temporary
 * folder; only what a shell or `pacs-triage` needs to reach them lives here, readable by the user
 * alone (it holds the Orthanc password and the API token).
 */
import { chmod, mkdir, open, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const SANDBOX_DIR = '.sandbox';

/** The variables the env file sets; none starts with PACS_TRIAGE_ but the config path, which loadConfig reads as such. */
export interface SandboxEnv {
  PACS_TRIAGE_CONFIG: string;
  API_URL: string;
  API_TOKEN: string;
  ORTHANC_URL: string;
  ORTHANC_AUTH: string;
  FHIR_URL: string;
}

export class SandboxBusyError extends Error {}

/** A value as one single-quoted shell word (a password given with --password may hold anything). */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function envFileText(env: SandboxEnv, pid: number): string {
  return [
    `# pacs-triage sandbox (pid ${pid}); removed when it stops. Load into a shell with: set -a; . ${SANDBOX_DIR}/env; set +a`,
    ...Object.entries(env).map(([name, value]) => `${name}=${shellQuote(value)}`),
    '',
  ].join('\n');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else; only ESRCH says it is gone.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface Workspace {
  dir: string;
  configPath: string;
  envPath: string;
  write(configYaml: string, env: Omit<SandboxEnv, 'PACS_TRIAGE_CONFIG'>): Promise<void>;
  /** Removes what this sandbox wrote; with keepFiles the config and env stay (they name servers that are gone). */
  release(keepFiles: boolean): Promise<void>;
}

/**
 * Claims `<root>/.sandbox` for this process. Two sandboxes writing one folder would leave a shell
 * pointed at servers that are not the ones it started with, so a second one is refused while the
 * first runs; a pid file left by one that was killed is taken over.
 */
export async function claimWorkspace(root: string): Promise<Workspace> {
  const dir = resolve(root, SANDBOX_DIR);
  const pidPath = join(dir, 'pid');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(pidPath, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const owner = Number((await readFile(pidPath, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new SandboxBusyError(`another sandbox (pid ${owner}) is running from this folder and owns ${dir}; stop it first (or delete ${pidPath} if that pid is not a sandbox)`);
      }
      await rm(pidPath, { force: true });
    }
  }
  const configPath = join(dir, 'pacs-triage.yaml');
  const envPath = join(dir, 'env');
  return {
    dir,
    configPath,
    envPath,
    async write(configYaml, env) {
      await writeFile(configPath, configYaml, { mode: 0o600 });
      await writeFile(envPath, envFileText({ PACS_TRIAGE_CONFIG: configPath, ...env }, process.pid), { mode: 0o600 });
      // The mode above applies only to a new file; one kept by an earlier --keep run may be wider.
      await Promise.all([chmod(configPath, 0o600), chmod(envPath, 0o600)]);
    },
    async release(keepFiles) {
      if (!keepFiles) await Promise.all([configPath, envPath].map((p) => rm(p, { force: true })));
      await rm(pidPath, { force: true });
      await rmdir(dir).catch(() => undefined); // only when empty: the user may keep other files there
    },
  };
}
