/**
 * Owns the lifecycle of a real Orthanc process (Debian's `orthanc` + `orthanc-dicomweb`
 * packages): writes a config into a fresh directory, picks free ports, spawns, waits for
 * the REST API, stops gracefully, restarts on the same storage, kills, cleans up.
 *
 * Used by the test harness (test/harness/orthanc.ts re-exports it) and by `npm run sandbox`.
 *
 * Orthanc has no bind-address option: it listens on every interface. `RemoteAccessAllowed:
 * false` plus HTTP basic auth limit the damage, but the tests themselves are meant to run in
 * a network namespace that has only loopback (see .ci/run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ORTHANC_USER_METADATA } from './orthanc-config.ts';
import { type OrthancAuth, type OrthancOptions, OrthancStartError, PLUGIN_DIRS, findOrthancBinary, findDicomWebPlugin, setprivPath, freePorts, live, installExitHook, PORT_IN_USE } from './orthanc-process.ts';

export { OrthancStartError, findDicomWebPlugin, findOrthancBinary, freePorts, type OrthancAuth, type OrthancOptions } from './orthanc-process.ts';

export class OrthancServer {
  readonly auth: OrthancAuth;
  private readonly opts: OrthancOptions;
  private dir: string | undefined;
  private ownsDir: boolean;
  private ports: { http: number; dicom: number } | undefined;
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private readonly logLines: string[] = [];
  /** Milliseconds the last start() took from spawn to the first answer of GET /system. */
  lastStartMs: number | undefined;

  constructor(options: OrthancOptions = {}) {
    this.opts = options;
    this.auth = {
      username: options.username ?? 'triage',
      password: options.password ?? randomBytes(12).toString('base64url'),
    };
    this.dir = options.workDir;
    this.ownsDir = options.workDir === undefined;
  }

  get httpPort(): number {
    return this.requirePorts().http;
  }
  get dicomPort(): number {
    return this.requirePorts().dicom;
  }
  get aet(): string {
    return this.opts.dicomAet ?? 'ORTHANC';
  }
  /** http://127.0.0.1:<port> (no trailing slash). */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }
  /** http://127.0.0.1:<port>/dicom-web (no trailing slash). */
  get dicomWebUrl(): string {
    return `${this.baseUrl}/dicom-web`;
  }
  /** Value for an Authorization header. */
  get authorization(): string {
    return `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
  }
  get workDir(): string {
    if (!this.dir) throw new Error('Orthanc has not been started yet');
    return this.dir;
  }
  get configPath(): string {
    return join(this.workDir, 'orthanc.json');
  }
  get storageDir(): string {
    return join(this.workDir, 'storage');
  }
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  /** The last `lines` lines Orthanc printed. */
  logTail(lines = 60): string {
    return this.logLines.slice(-lines).join('\n');
  }

  /** The config this instance runs with. */
  config(): Record<string, unknown> {
    const ports = this.requirePorts();
    const config: Record<string, unknown> = {
      Name: 'pacs-triage-test',
      StorageDirectory: join(this.workDir, 'storage'),
      IndexDirectory: join(this.workDir, 'index'),
      StorageCompression: false,
      HttpServerEnabled: true,
      HttpPort: ports.http,
      HttpDescribeErrors: true,
      DicomServerEnabled: this.opts.dicomServer ?? true,
      DicomPort: ports.dicom,
      DicomAet: this.aet,
      DicomCheckCalledAet: false,
      StableAge: 1,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: true,
      RegisteredUsers: { [this.auth.username]: this.auth.password },
      DicomModalities: {},
      OrthancPeers: {},
      OrthancExplorerEnabled: false,
      WebDavEnabled: false,
      ExecuteLuaEnabled: false,
      RestApiWriteToFileSystemEnabled: false,
      SaveJobs: false,
      // pacs-triage stores the worklist priority and its result pointer as user metadata.
      UserMetadata: { ...ORTHANC_USER_METADATA },
      LuaScripts: [],
      Plugins: [] as string[],
    };
    if (this.opts.dicomWeb ?? true) {
      const plugin = this.opts.dicomWebPlugin ?? findDicomWebPlugin();
      if (!plugin) {
        throw new Error(
          'Orthanc DICOMweb plugin not found (looked in ' +
            PLUGIN_DIRS.join(', ') +
            '; install the Debian package orthanc-dicomweb or set ORTHANC_DICOMWEB_PLUGIN)',
        );
      }
      config.Plugins = [plugin];
      config.DicomWeb = { Enable: true, Root: '/dicom-web/', EnableWado: true, WadoRoot: '/wado' };
    }
    return { ...config, ...this.opts.extraConfig };
  }

  /** Spawns Orthanc and resolves once GET /system answers with auth. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`Orthanc is already running (pid ${this.child?.pid})`);
    const binary = this.opts.binary ?? findOrthancBinary();
    if (!binary) {
      throw new Error('Orthanc executable not found (install the Debian package orthanc, or set ORTHANC_BIN)');
    }
    if (!this.dir) this.dir = await mkdtemp(join(tmpdir(), 'pacs-triage-orthanc-'));
    await mkdir(join(this.dir, 'storage'), { recursive: true });
    await mkdir(join(this.dir, 'index'), { recursive: true });

    const fixedPorts = this.ports !== undefined || this.opts.httpPort !== undefined;
    const attempts = fixedPorts ? 1 : 3;
    for (let attempt = 1; ; attempt++) {
      if (!this.ports) {
        const [http, dicom] = await freePorts(2);
        this.ports = { http: this.opts.httpPort ?? http!, dicom: this.opts.dicomPort ?? dicom! };
      }
      try {
        await this.spawnOnce(binary);
        return;
      } catch (err) {
        // Somebody grabbed a port between freePorts() and Orthanc's bind: pick new ones.
        if (attempt < attempts && err instanceof OrthancStartError && PORT_IN_USE.test(err.logTail)) {
          this.ports = undefined;
          continue;
        }
        throw err;
      }
    }
  }

  private async spawnOnce(binary: string): Promise<void> {
    await writeFile(this.configPath, JSON.stringify(this.config(), null, 2));
    this.pushLog(`--- pacs-triage: starting Orthanc on HTTP ${this.httpPort} / DICOM ${this.dicomPort} ---`);
    const args: string[] = [];
    if (this.opts.logLevel === 'verbose') args.push('--verbose');
    if (this.opts.logLevel === 'trace') args.push('--trace');
    args.push(this.configPath);
    const setpriv = setprivPath();
    const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, args];

    const t0 = performance.now();
    const child = spawn(cmd, argv, { cwd: this.workDir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    installExitHook();
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        resolve(code ?? (signal ? -1 : null));
      });
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) this.pushLog(line);
      });
      stream?.on('end', () => partial && this.pushLog(partial));
    }

    const timeoutMs = this.opts.startTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    let died = false;
    void this.exited.then(() => (died = true));
    void spawnError.then((e) => {
      lastError = e;
      died = true;
    });
    while (Date.now() < deadline) {
      if (died) break;
      try {
        const res = await fetch(`${this.baseUrl}/system`, {
          headers: { authorization: this.authorization },
          signal: AbortSignal.timeout(2000),
        });
        await res.arrayBuffer();
        if (res.ok) {
          this.lastStartMs = performance.now() - t0;
          return;
        }
        lastError = new Error(`GET /system answered ${res.status}`);
        if (res.status === 401 || res.status === 403) break; // wrong server on that port, or bad config
      } catch (err) {
        lastError = err;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!died) {
      child.kill('SIGKILL');
    }
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))]);
    // Let the pipes drain so the tail holds the fatal message.
    await new Promise((r) => setTimeout(r, 50));
    const why = died
      ? `Orthanc exited during startup (exit ${child.exitCode ?? child.signalCode})`
      : `Orthanc did not answer GET /system within ${timeoutMs} ms (last error: ${String(lastError)})`;
    throw new OrthancStartError(`${why}; command: ${[cmd, ...argv].join(' ')}`, this.logTail());
  }

  private pushLog(line: string): void {
    this.logLines.push(line);
    if (this.logLines.length > 500) this.logLines.splice(0, this.logLines.length - 500);
    this.opts.onLog?.(line);
  }

  /** Graceful stop: SIGTERM, wait for exit (SIGKILL after stopTimeoutMs). Returns the exit code. */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child || !this.running) return child?.exitCode ?? null;
    child.kill('SIGTERM');
    const timeoutMs = this.opts.stopTimeoutMs ?? 20_000;
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([this.exited, new Promise<'timeout'>((r) => (timer = setTimeout(r, timeoutMs, 'timeout')))]);
    // A pending timer keeps the event loop alive: `npm run sandbox` took the whole timeout to exit after Ctrl-C.
    clearTimeout(timer);
    if (code === 'timeout') {
      child.kill('SIGKILL');
      await this.exited;
      throw new Error(`Orthanc did not stop within ${timeoutMs} ms of SIGTERM; killed.\n${this.logTail(20)}`);
    }
    return code ?? null;
  }

  /** SIGKILL and wait for the process to be gone (simulates a crash; storage stays). */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** stop() then start() on the same storage, config and ports. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /**
   * Ends Orthanc and deletes the work dir if we created it (or removeWorkDirOnCleanup). When the
   * storage is about to be deleted Orthanc is SIGKILLed (a graceful stop costs ~2.5-3.5 s);
   * when it is kept, or with { graceful: true }, it is stopped with SIGTERM.
   */
  async cleanup(options: { graceful?: boolean } = {}): Promise<void> {
    const remove = this.opts.removeWorkDirOnCleanup ?? this.ownsDir;
    if (options.graceful ?? !remove) {
      try {
        await this.stop();
      } catch {
        await this.kill();
      }
    } else {
      await this.kill();
    }
    if (remove && this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.cleanup();
  }

  /** fetch() against the REST API with auth; `path` is relative to baseUrl ("/system"). */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', this.authorization);
    return fetch(`${this.baseUrl}${path}`, { ...init, headers });
  }

  /** JSON GET/POST helper that throws on non-2xx. */
  async json<T = unknown>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.request(path, init);
    const text = await res.text();
    if (!res.ok) throw new Error(`Orthanc ${init.method ?? 'GET'} ${path}: ${res.status} ${text.slice(0, 500)}`);
    return JSON.parse(text) as T;
  }

  /** Stores one DICOM Part 10 file through POST /instances. */
  async uploadInstance(dicom: Uint8Array): Promise<OrthancUploadResult> {
    return this.json<OrthancUploadResult>('/instances', {
      method: 'POST',
      headers: { 'content-type': 'application/dicom' },
      body: new Uint8Array(dicom.buffer as ArrayBuffer, dicom.byteOffset, dicom.byteLength),
    });
  }

  /** Stores DICOM files through STOW-RS (one multipart request); returns the DICOM JSON response. */
  async stow(dicoms: Uint8Array[]): Promise<unknown> {
    const boundary = `pacs-triage-${randomBytes(8).toString('hex')}`;
    const parts: Buffer[] = [];
    for (const d of dicoms) {
      parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), Buffer.from(d), Buffer.from('\r\n'));
    }
    parts.push(Buffer.from(`--${boundary}--\r\n`));
    const res = await this.request('/dicom-web/studies', {
      method: 'POST',
      headers: {
        'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
        accept: 'application/dicom+json',
      },
      body: Buffer.concat(parts),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`STOW-RS failed: ${res.status} ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : {};
  }

  /** GET /statistics (counts of stored patients, studies, series, instances). */
  async statistics(): Promise<{ CountStudies: number; CountInstances: number }> {
    return this.json('/statistics');
  }

  private requirePorts(): { http: number; dicom: number } {
    if (!this.ports) throw new Error('Orthanc has not been started yet (ports are chosen by start())');
    return this.ports;
  }
}

export interface OrthancUploadResult {
  ID: string;
  Path: string;
  Status: 'Success' | 'AlreadyStored' | string;
  ParentPatient: string;
  ParentStudy: string;
  ParentSeries: string;
}

/** Convenience: construct and start. */
export async function startOrthanc(options: OrthancOptions = {}): Promise<OrthancServer> {
  const server = new OrthancServer(options);
  await server.start();
  return server;
}
