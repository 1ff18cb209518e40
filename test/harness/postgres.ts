/**
 * A private PostgreSQL cluster for tests: `initdb` and `pg_ctl` (Debian's postgresql 15, or
 * PG_BIN; see findPostgresBin) in a fresh temporary folder, listening on 127.0.0.1 and a socket in that folder only,
 * trust authentication (nothing else can reach it), removed afterwards. PostgreSQL refuses to
 * run as root, so as root the cluster belongs to the `postgres` user (see postgresRunAs).
 * Durability is off (fsync, synchronous_commit): the data is thrown away anyway.
 *
 *   const pg = await startPostgres();   // in beforeAll
 *   pg.url                              // postgres://postgres@127.0.0.1:<port>/postgres
 *   await pg.stop();                    // in afterAll
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const DEBIAN_ROOT = '/usr/lib/postgresql';

/**
 * The folder holding initdb, pg_ctl and postgres: PG_BIN, else Debian's 15 (what CI installs),
 * else the newest Debian version installed (15 or later); undefined when there is none.
 */
export function findPostgresBin(): string | undefined {
  const complete = (dir: string): boolean => ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(path.join(dir, b)));
  const pinned = process.env['PG_BIN'];
  if (pinned !== undefined) return complete(pinned) ? pinned : undefined;
  const versions = existsSync(DEBIAN_ROOT) ? readdirSync(DEBIAN_ROOT).filter((v) => /^\d+$/.test(v) && Number(v) >= 15) : [];
  const candidates = ['15', ...versions.sort((a, b) => Number(b) - Number(a))].map((v) => path.join(DEBIAN_ROOT, v, 'bin'));
  return candidates.find(complete);
}

/**
 * How the server is run as someone other than root: as ourselves when we are not root; as root,
 * as the `postgres` user (setpriv) when this namespace maps that user — real root, as in .ci/run;
 * as root of a user namespace that maps no one else (`unshare --map-root-user`), in a nested user
 * namespace where we are uid 1000 (the files stay ours). Undefined when none of that is possible.
 */
export type RunAs = { kind: 'self' } | { kind: 'user'; uid: number; gid: number } | { kind: 'nested' };

function mapped(uid: number): boolean {
  try {
    return readFileSync('/proc/self/uid_map', 'utf8')
      .trim()
      .split('\n')
      .some((line) => {
        const [inside, , count] = line.trim().split(/\s+/).map(Number);
        return inside !== undefined && count !== undefined && uid >= inside && uid < inside + count;
      });
  } catch {
    return true; // no /proc: not Linux namespaces
  }
}

export function postgresRunAs(): RunAs | undefined {
  if (process.getuid?.() !== 0) return { kind: 'self' };
  const id = (flag: string): number | undefined => {
    const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    return r.status === 0 ? Number(r.stdout.trim()) : undefined;
  };
  const [uid, gid] = [id('-u'), id('-g')];
  if (uid !== undefined && gid !== undefined && mapped(uid) && spawnSync('setpriv', ['--version']).status === 0) return { kind: 'user', uid, gid };
  return spawnSync('unshare', ['--user', '--map-user=1000', '--map-group=1000', 'true']).status === 0 ? { kind: 'nested' } : undefined;
}

function command(runAs: RunAs, program: string, args: string[]): [string, string[]] {
  switch (runAs.kind) {
    case 'self':
      return [program, args];
    case 'user':
      return ['setpriv', [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--clear-groups', program, ...args]];
    case 'nested':
      return ['unshare', ['--user', '--map-user=1000', '--map-group=1000', program, ...args]];
  }
}

export interface PostgresServer {
  /** A superuser URL for the `postgres` database. */
  readonly url: string;
  readonly port: number;
  /** The postmaster's process id (its backends are its children). */
  pid(): number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface PostgresOptions {
  /** fsync and synchronous commit on, as a real server runs (the benchmark); off by default. */
  durable?: boolean;
  /** More `name=value` server settings (e.g. shared_preload_libraries=pg_stat_statements). */
  settings?: string[];
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = findPostgresBin();
  const runAs = postgresRunAs();
  if (!bin || !runAs) throw new Error('PostgreSQL is not available (see requirePostgres)');
  const dir = mkdtempSync(path.join(tmpdir(), 'pacs-triage-pg-'));
  const data = path.join(dir, 'data');
  if (runAs.kind === 'user') chownSync(dir, runAs.uid, runAs.gid);
  const run = (program: string, args: string[]): void => {
    const [cmd, argv] = command(runAs, path.join(bin, program), args);
    execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, timeout: 60_000 });
  };
  const cleanUp = (): void => {
    // Synchronous, so that it also runs from an exit handler: SIGQUIT is an immediate stop.
    try {
      const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // not running
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanUp);
  try {
    run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const options = [
        '-c listen_addresses=127.0.0.1',
        `-c port=${port}`,
        `-c unix_socket_directories=${dir}`,
        ...(opts.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
        ...(opts.settings ?? []).map((kv) => `-c ${kv}`),
        '-c max_connections=300',
        '-c shared_buffers=32MB',
      ].join(' ');
      try {
        run('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '30', '-o', options, 'start']);
        break;
      } catch (err) {
        // Another process took the port between our probe and the server's bind: try another.
        if (attempt >= 3) throw err;
      }
    }
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      pid: () => Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]),
      port,
      async stop() {
        try {
          run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
        } catch {
          // cleanUp kills it
        }
        cleanUp();
        process.removeListener('exit', cleanUp);
      },
    };
  } catch (err) {
    const log = path.join(dir, 'server.log');
    const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
    cleanUp();
    process.removeListener('exit', cleanUp);
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${stderr}\n${tail}`, { cause: err });
  }
}
