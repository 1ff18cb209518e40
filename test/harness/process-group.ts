/**
 * A shell command run as a user would run it in a terminal: in a process group of its own, so
 * that stopping it reaches everything it started, as Ctrl-C does. `npm run x` and `npx x` put
 * npm between the shell and the program, and npm (11) exits on SIGTERM without passing it on, so
 * signalling the first process alone would leave the program (and an Orthanc) running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface GroupRun {
  readonly child: ChildProcess;
  readonly pgid: number;
  /** Everything written so far (stdout, stderr). */
  stdout(): string;
  stderr(): string;
  /** Exit code of the shell (the signal's name when killed); undefined while it runs. */
  exit(): number | string | undefined;
  /** Resolves with the first match of `pattern` in stdout or stderr (pino logs to stderr); rejects when the shell exits first or after timeoutMs. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Signals the whole group and waits until none of its processes is left; SIGKILL after graceMs. Resolves to true when it ended on `signal`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<boolean>;
}

/** Processes of group `pgid` that are alive (zombies left unreaped by a minimal init do not count). */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended while we looked
    }
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
  }
  return members;
}

const started = new Set<number>();
let exitHook = false;

export function spawnGroup(script: string, options: { cwd: string; env: NodeJS.ProcessEnv }): GroupRun {
  const child = spawn('bash', ['-c', script], { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pgid = child.pid;
  if (pgid === undefined) throw new Error(`could not start bash for: ${script}`);
  started.add(pgid);
  if (!exitHook) {
    exitHook = true;
    // A test process that dies mid-test must not leave Orthanc or serve behind: its own groups are killed with it.
    process.once('exit', () => {
      for (const g of started) {
        try {
          process.kill(-g, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  let out = '';
  let err = '';
  let code: number | string | undefined;
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<void>((resolve) => child.once('exit', (c, sig) => ((code = c ?? sig ?? 'unknown'), resolve())));

  const gone = async (deadline: number): Promise<boolean> => {
    while (groupMembers(pgid).length > 0) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
    return true;
  };

  return {
    child,
    pgid,
    stdout: () => out,
    stderr: () => err,
    exit: () => code,
    async waitForOutput(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = out.match(pattern) ?? err.match(pattern);
        if (match) return match;
        if (code !== undefined || Date.now() > deadline) {
          const why = code !== undefined ? `exited (${code})` : `did not print it within ${timeoutMs} ms`;
          throw new Error(`\`${script}\` ${why} before printing ${pattern}\n--- stdout ---\n${out.slice(-4000)}\n--- stderr ---\n${err.slice(-4000)}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop(signal = 'SIGTERM', graceMs = 30_000) {
      if (groupMembers(pgid).length === 0) {
        started.delete(pgid);
        return false;
      }
      try {
        process.kill(-pgid, signal);
      } catch {
        // the group ended meanwhile
      }
      const clean = await gone(Date.now() + graceMs);
      if (!clean) {
        try {
          process.kill(-pgid, 'SIGKILL');
        } catch {
          // ended between the check and the kill
        }
        await gone(Date.now() + 10_000);
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      started.delete(pgid);
      return clean;
    },
  };
}
