/**
 * The sandbox's first-hour plumbing without starting a server: what it says about Orthanc's reach
 * (isolation.ts), the .sandbox/ folder it claims and writes (workspace.ts), and the commands it
 * prints (cli.ts), which must be the README's (test/integration/first-hour.test.ts runs those).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nextCommands, shownPath } from '../../../src/sandbox/cli.ts';
import { interfacesHere, onlyLoopbackHere } from '../../../src/sandbox/isolation.ts';
import { claimWorkspace, envFileText, SandboxBusyError, shellQuote } from '../../../src/sandbox/workspace.ts';

const NET_DEV = (names: string[]): string =>
  ['Inter-|   Receive', ' face |bytes    packets', ...names.map((n) => `${n.padStart(6)}: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0`)].join('\n') + '\n';

describe('isolation: the interfaces of this network namespace', () => {
  it('reads the names from /proc/self/net/dev', () => {
    expect(interfacesHere(() => NET_DEV(['lo', 'eth0']))).toEqual(['lo', 'eth0']);
  });

  it('only loopback: a namespace made with unshare --net', () => {
    expect(onlyLoopbackHere(() => NET_DEV(['lo']))).toBe(true);
    expect(onlyLoopbackHere(() => NET_DEV(['lo', 'eth0']))).toBe(false);
  });

  it('without /proc (not Linux) it never claims isolation', () => {
    const missing = (): string => {
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    };
    expect(interfacesHere(missing)).toBeUndefined();
    expect(onlyLoopbackHere(missing)).toBe(false);
    expect(onlyLoopbackHere(() => NET_DEV([]))).toBe(false);
  });
});

describe('workspace: .sandbox/', () => {
  const dirs: string[] = [];
  const root = (): string => {
    const d = mkdtempSync(path.join(tmpdir(), 'pacs-triage-ws-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('writes the config and the variables for this user only, and a shell loads them as they are', async () => {
    const ws = await claimWorkspace(root());
    const password = `it's "$HOME" \\ \`x\``;
    await ws.write('pacs: {}\n', { API_URL: 'http://127.0.0.1:8080', API_TOKEN: 'abc', ORTHANC_URL: 'http://127.0.0.1:1', ORTHANC_AUTH: `triage:${password}`, FHIR_URL: 'http://127.0.0.1:2/fhir/R4' });
    expect((statSync(ws.configPath).mode & 0o777).toString(8)).toBe('600');
    expect((statSync(ws.envPath).mode & 0o777).toString(8)).toBe('600');
    const printed = execFileSync('bash', ['-c', `set -a; . '${ws.envPath}'; set +a; printf '%s\\n' "$ORTHANC_AUTH" "$PACS_TRIAGE_CONFIG"`], { encoding: 'utf8' });
    expect(printed).toBe(`triage:${password}\n${ws.configPath}\n`);
    await ws.release(false);
    expect(existsSync(ws.dir)).toBe(false);
  });

  it('refuses a second sandbox while the first runs, and takes over a pid file left by a dead one', async () => {
    const dir = root();
    const first = await claimWorkspace(dir);
    // Our own pid counts as "this process", so stand in a live other process: pid 1.
    writeFileSync(path.join(first.dir, 'pid'), '1\n');
    await expect(claimWorkspace(dir)).rejects.toBeInstanceOf(SandboxBusyError);
    writeFileSync(path.join(first.dir, 'pid'), '2147483646\n'); // no such process
    const second = await claimWorkspace(dir);
    expect(readFileSync(path.join(second.dir, 'pid'), 'utf8')).toBe(`${process.pid}\n`);
    await second.release(false);
  });

  it('release keeps a folder holding the user\'s own files, and --keep keeps config and env', async () => {
    const ws = await claimWorkspace(root());
    await ws.write('x: 1\n', { API_URL: 'a', API_TOKEN: 'b', ORTHANC_URL: 'c', ORTHANC_AUTH: 'd', FHIR_URL: 'e' });
    mkdirSync(path.join(ws.dir, 'mine'));
    await ws.release(true);
    expect([existsSync(ws.configPath), existsSync(ws.envPath), existsSync(path.join(ws.dir, 'pid'))]).toEqual([true, true, false]);
  });

  it('quotes any value as one shell word', () => {
    expect(shellQuote(`a'b`)).toBe(`'a'\\''b'`);
    expect(envFileText({ PACS_TRIAGE_CONFIG: '/c', API_URL: 'u', API_TOKEN: 't', ORTHANC_URL: 'o', ORTHANC_AUTH: 'x:y', FHIR_URL: 'f' }, 42)).toContain(`ORTHANC_AUTH='x:y'\n`);
  });
});

describe('the commands the sandbox prints are the README\'s', () => {
  const repo = path.resolve(import.meta.dirname, '../../..');
  const readme = readFileSync(path.join(repo, 'README.md'), 'utf8');
  const block = (name: string): string | undefined => readme.match(new RegExp(`<!-- first-hour: ${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\\n\`\`\``))?.[1];

  it('from the repository root, paths relative to it', () => {
    const ws = { configPath: path.join(repo, '.sandbox', 'pacs-triage.yaml'), envPath: path.join(repo, '.sandbox', 'env') };
    const next = nextCommands(ws, repo);
    for (const step of ['env', 'doctor', 'serve', 'upload'] as const) expect(next[step]).toBe(block(step));
  });

  it('from elsewhere, absolute paths', () => {
    expect(shownPath('/work/x/.sandbox/env', '/work/x')).toBe('.sandbox/env');
    expect(shownPath('/work/x/.sandbox/env', '/elsewhere')).toBe('/work/x/.sandbox/env');
  });
});
