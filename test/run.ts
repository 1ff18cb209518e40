/**
 * `npm test` (node --import tsx test/run.ts [vitest arguments]): vitest with
 * test/vitest.config.ts, inside a network namespace that has only loopback when this machine
 * lets us make one. The integration tests start Orthanc, which has no bind-address option and
 * listens on every interface; in such a namespace nothing outside can reach it. Where no
 * namespace can be made (not Linux, no unshare or ip, not permitted) the tests still run, after a
 * loud warning: their other servers listen on 127.0.0.1 only, Orthanc with authentication on and
 * remote access refused, but it is reachable from the network while they run.
 *
 * Already in such a namespace (.ci/run enters one before `npm test`) it runs vitest as it is.
 */
import { spawn, spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import path from 'node:path';
import { onlyLoopbackHere } from '../src/sandbox/isolation.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const VITEST = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');

/** How to enter a fresh network namespace: root may unshare it; another user maps itself to root in a new user namespace first. */
function unshareArgs(): string[] {
  return process.getuid?.() === 0 ? ['--net'] : ['--net', '--map-root-user'];
}

/** Why no namespace can be made here, or undefined when one can (tried for real: the kernel, seccomp or AppArmor may refuse it). */
function whyNotIsolated(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces are Linux only (this is ${process.platform})`;
  // `ip link set lo up` inside: the namespace is usable only if its loopback can be brought up.
  const probe = spawnSync('unshare', [...unshareArgs(), 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (probe.error) return `\`unshare\` cannot be run (${(probe.error as NodeJS.ErrnoException).code ?? probe.error.message}); install util-linux and iproute2`;
  if (probe.status !== 0) return `\`unshare ${unshareArgs().join(' ')} ip link set lo up\` failed: ${probe.stderr.trim() || `exit ${probe.status}`}`;
  return undefined;
}

function warnNotIsolated(why: string): void {
  const bar = '!'.repeat(100);
  console.error(
    [
      bar,
      '!! WARNING: npm test is NOT isolated from the network.',
      `!! ${why}.`,
      '!! The integration tests start Orthanc, which has no bind-address option: while they run it listens on',
      '!! EVERY network interface of this machine (authentication on, remote access refused). The other servers',
      '!! they start listen on 127.0.0.1 only. To isolate them, run npm test as root or where unprivileged user',
      '!! namespaces are allowed (Linux with util-linux and iproute2), or run `bash .ci/run`.',
      bar,
    ].join('\n'),
  );
}

/** Runs the command with our stdio and resolves to the exit code it should give `npm test`. */
function run(command: string, args: string[]): Promise<number> {
  const child = spawn(command, args, { cwd: ROOT, stdio: 'inherit' });
  // Ctrl-C reaches vitest from the terminal (same process group) and vitest decides how to stop;
  // we wait for it. A SIGTERM sent to us alone (a CI timeout) is passed on, or vitest would be left.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  return new Promise((resolve) => {
    child.once('error', (err) => {
      console.error(`npm test: cannot start ${command}: ${err.message}`);
      resolve(1);
    });
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}

async function main(): Promise<number> {
  const vitest = [VITEST, 'run', '--config', 'test/vitest.config.ts', ...process.argv.slice(2)];
  if (onlyLoopbackHere()) return run(process.execPath, vitest);
  const why = whyNotIsolated();
  if (why !== undefined) {
    warnNotIsolated(why);
    return run(process.execPath, vitest);
  }
  console.error(`npm test: running in a new network namespace that has only loopback (unshare ${unshareArgs().join(' ')}).`);
  // exec keeps vitest the process unshare started, so the SIGTERM passed on above reaches it.
  return run('unshare', [...unshareArgs(), 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', process.execPath, ...vitest]);
}

process.exitCode = await main();
