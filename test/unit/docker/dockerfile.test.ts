/**
 * docker/Dockerfile, checked without a Docker engine: it passes dockerfile-utils' linter (the
 * errors and warnings Docker's builder would give), its ENTRYPOINT + CMD run the CLI's `serve`
 * (run here, from the repository root that the image's WORKDIR mirrors), the image is built
 * the way the deployment needs (non-root, production dependencies, HEALTHCHECK, GPU variant),
 * the build context lets every COPY source through, and the HEALTHCHECK script works.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Copy } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCKERFILE, ROOT, byKeyword, execForm, globalArgs, stage, stageEnv, stages } from './docker-files.ts';

const all = stages();
const runtime = all.at(-1);

/** `COPY [--from=x] src… dest` of a stage: sources, destination and the --from stage. */
function copies(name: string): { from?: string; sources: string[]; dest: string }[] {
  return byKeyword(stage(name, all), 'COPY').map((c) => {
    const args = c.getArguments().map((a) => a.getValue()).filter((a) => !a.startsWith('--'));
    const from = (c as Copy).getFromFlag()?.getValue();
    return { ...(from ? { from } : {}), sources: args.slice(0, -1), dest: args.at(-1) ?? '' };
  });
}

function runText(name: string): string {
  return byKeyword(stage(name, all), 'RUN')
    .map((r) => r.getArgumentsContent() ?? '')
    .join('\n');
}

describe('docker/Dockerfile', () => {
  it("passes dockerfile-utils' linter, as do the other Dockerfiles under docker/", () => {
    const files = [DOCKERFILE, ...readdirSync(ROOT + 'docker/orthanc').filter((f) => /^Dockerfile(\.[\w-]+)?$/.test(f)).map((f) => `docker/orthanc/${f}`)];
    expect(files.length).toBeGreaterThan(1);
    for (const f of files) {
      const problems = validate(readFileSync(ROOT + f, 'utf8')).map((d) => `${f}:${d.range.start.line + 1}: ${d.message}`);
      expect(problems).toEqual([]);
    }
    // The linter is live.
    expect(validate('FROM node\nHEALTHCHECK --interva=30s CMD ls\nCOPY a\n').length).toBe(2);
  });

  it("has ENTRYPOINT + CMD that run the CLI's serve, in exec form", () => {
    expect(runtime?.name).toBe('runtime');
    const entrypoint = execForm(byKeyword(runtime!, 'ENTRYPOINT').at(-1));
    const cmd = execForm(byKeyword(runtime!, 'CMD').at(-1));
    expect([...entrypoint, ...cmd]).toEqual(['node', 'src/bin.mjs', 'serve']);
    expect(byKeyword(runtime!, 'WORKDIR').at(-1)?.getArgumentsContent()).toBe('/app');
    expect(copies('runtime')).toContainEqual({ sources: ['src'], dest: './src' });

    // Run it as the image would, from the folder the image's /app mirrors; --help stops before
    // any server is needed, and is only answered for a command the CLI knows.
    const [, script, ...args] = [...entrypoint, ...cmd];
    const ok = spawnSync(process.execPath, [script!, ...args, '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^Usage: pacs-triage serve\n\nWatch the PACS/);
    const unknown = spawnSync(process.execPath, [script!, 'no-such-command', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(unknown.status).toBe(2);
  });

  it('builds the runtime as a non-root user, with production dependencies only, the model, the mappings and a node HEALTHCHECK', () => {
    const user = byKeyword(runtime!, 'USER').at(-1)?.getArgumentsContent() ?? 'root';
    expect(user).toMatch(/^\d+:\d+$/);
    expect(user).not.toMatch(/^0:|:0$/);
    const [uid, gid] = user.split(':');
    expect(runText('runtime')).toMatch(new RegExp(`useradd --uid ${uid} `));
    expect(runText('runtime')).toMatch(new RegExp(`groupadd --gid ${gid} `));
    expect(runText('runtime')).toMatch(/chown pacs-triage:pacs-triage \/var\/lib\/pacs-triage/);

    expect(runText('deps')).toMatch(/npm ci --omit=dev/);
    expect(runText('deps')).not.toMatch(/npm (install|i) (?!--global)/);
    const own = copies('runtime');
    expect(own).toContainEqual({ from: 'deps', sources: ['/app/node_modules'], dest: './node_modules' });
    for (const needed of ['package.json', 'src', 'mappings', 'models/cxr-triage']) {
      expect(own.some((c) => c.sources.includes(needed)), needed).toBe(true);
    }
    // tsx runs the sources: a runtime dependency, so `--omit=dev` keeps it.
    const pkg = JSON.parse(readFileSync(ROOT + 'package.json', 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies)).toContain('tsx');

    const env = stageEnv(runtime!);
    expect(env['PACS_TRIAGE_API__HOST']).toBe('0.0.0.0');
    expect(env['PACS_TRIAGE_STORE__PATH']).toMatch(/^\/var\/lib\/pacs-triage\//);
    expect(byKeyword(runtime!, 'VOLUME').at(-1)?.getArgumentsContent()).toContain('/var/lib/pacs-triage');
    expect(byKeyword(runtime!, 'EXPOSE').at(-1)?.getArgumentsContent()).toBe(env['PACS_TRIAGE_API__PORT']);

    const healthcheck = execForm(byKeyword(runtime!, 'HEALTHCHECK').at(-1));
    expect(healthcheck[0]).toBe('node');
    expect(own.some((c) => c.sources.includes(healthcheck[1] ?? ''))).toBe(true);
  });

  it('picks the base by VARIANT: Node 20 slim, or CUDA 12 + cuDNN 9 with Node 20 and the CUDA provider installed', () => {
    const args = globalArgs();
    expect(args['VARIANT']).toBe('cpu');
    expect(args['NODE_VERSION']).toMatch(/^20(\.|$)/);
    expect(stage('node', all).from).toBe('node:${NODE_VERSION}-bookworm-slim');
    expect(stage('os-cpu', all).from).toBe('node');
    expect(args['CUDA_IMAGE']).toMatch(/^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/);
    expect(stage('os-gpu', all).from).toBe('${CUDA_IMAGE}');
    expect(copies('os-gpu').map((c) => [c.from, c.dest])).toContainEqual(['node', '/usr/local/bin/node']);
    expect(stage('deps', all).from).toBe('os-${VARIANT}');
    expect(runtime!.from).toBe('os-${VARIANT}');
    // npm ci runs no onnxruntime-node script (it would fetch CUDA from NuGet), and no .npmrc key npm 11 warns about is needed for that.
    const pkg = JSON.parse(readFileSync(ROOT + 'package.json', 'utf8')) as { allowScripts: Record<string, boolean> };
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    expect(existsSync(ROOT + '.npmrc') ? readFileSync(ROOT + '.npmrc', 'utf8') : '').not.toMatch(/onnxruntime/);
    // CUDA provider libraries after npm ci (whose allowScripts skip onnxruntime-node's script), for the gpu variant only.
    expect(runText('deps')).toMatch(/npm ci[^\n]*\s*\\?\s*&& if \[ "\$VARIANT" = "gpu" \]; then ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js; fi/);
    expect(stageEnv(stage('os-gpu', all))['PACS_TRIAGE_MODEL__EXECUTION_PROVIDERS']).toBe('cuda,cpu');
    expect(stageEnv(stage('os-cpu', all))['PACS_TRIAGE_MODEL__EXECUTION_PROVIDERS']).toBeUndefined();
    // node-gyp for better-sqlite3 needs these in the build stage.
    expect(runText('deps')).toMatch(/apt-get install[^\n]*python3[^\n]*make[^\n]*g\+\+/);
  });

  it('lets every COPY source through docker/Dockerfile.dockerignore, and they exist', () => {
    const rules = readFileSync(ROOT + 'docker/Dockerfile.dockerignore', 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => ({ include: l.startsWith('!'), re: globToRegExp(l.replace(/^!/, '')) }));
    // Docker's rule: the last matching pattern wins; a pattern that matches a folder covers its contents.
    const ignored = (p: string): boolean => {
      const parts = p.split('/');
      let out = false;
      for (const r of rules) if (parts.some((_, i) => r.re.test(parts.slice(0, i + 1).join('/')))) out = !r.include;
      return out;
    };
    const sources = all.flatMap((s) => copies(s.name).filter((c) => c.from === undefined).flatMap((c) => c.sources));
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) {
      expect(existsSync(path.join(ROOT, source)), source).toBe(true);
      expect(ignored(source), source).toBe(false);
    }
    expect(ignored('node_modules')).toBe(true);
    expect(ignored('models/training/train.py')).toBe(true);
    expect(ignored('src/cli.ts')).toBe(false);
  });
});

/** A .dockerignore pattern: `**` any depth, `*` and `?` within one path segment. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] as string;
    if (ch === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

describe('docker/healthcheck.mjs', () => {
  let server: Server;
  let port = 0;
  let status = 200;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? status : 404;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  // Asynchronous: the server above answers from this process's event loop.
  const check = (env: Record<string, string>): Promise<number | null> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [ROOT + 'docker/healthcheck.mjs'], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: 'ignore', timeout: 20_000 });
      child.on('error', reject);
      child.on('exit', (code) => resolve(code));
    });

  it('exits 0 when /healthz answers 200 (a wildcard host is reached on loopback), 1 otherwise', async () => {
    status = 200;
    expect(await check({ PACS_TRIAGE_API__PORT: String(port), PACS_TRIAGE_API__HOST: '0.0.0.0' })).toBe(0);
    status = 503;
    expect(await check({ PACS_TRIAGE_API__PORT: String(port) })).toBe(1);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await check({ PACS_TRIAGE_API__PORT: String(closedPort) })).toBe(1);
  });
});
