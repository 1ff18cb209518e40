/**
 * `npm run bench:http` — per-request cost of the HTTP clients pacs-triage could use, against a
 * real Orthanc and the sandbox FHIR server: Node's global fetch, fetch from the undici package
 * on an Agent with `keepAliveTimeoutThreshold` (and the keep-alive timeouts) set, undici's
 * `request` on such an Agent, and the project's own HttpClient (node:http). Not part of the
 * tests; run it on an otherwise idle machine.
 *
 *   npm run bench:http -- [--n 300] [--warmup 5] [--pauses 4] [--pause-ms 1200]
 *
 * Why: Orthanc answers `Keep-Alive: timeout=1`. undici (behind Node's fetch) subtracts its
 * `keepAliveTimeoutThreshold` (default 2000 ms) from that hint; a result <= 0 makes it close the
 * connection after each answer, so every request opens a new one. See src/adapters/http/client.ts.
 *
 * What is measured: per server and client, `--n` sequential GETs after `--warmup` untimed ones
 * (a new client per variant; the global fetch keeps its global pool), each timed from the call
 * to the end of the body. Then, against Orthanc only (its hint is 1 s; the FHIR server's is 5 s),
 * `--pauses` more requests each after `--pause-ms` of idleness: the connection Orthanc (or the
 * client) closed in the meantime must not be reused. "conns" counts TCP connections the process
 * opened during the phase (diagnostics channel `net.client.socket`, which node:http and undici
 * both go through); "err" counts failed requests (left out of the times).
 *
 * Requests: Orthanc `GET /dicom-web/studies?limit=1` (basic auth), FHIR `GET /Patient?_count=1`.
 * Orthanc listens on every interface, so the npm script runs this inside `unshare --net` with
 * only loopback (root needed, as for the tests).
 */
import { subscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent, fetch as undiciFetch, request as undiciRequest } from 'undici';
import { HttpClient, type Auth } from '../../src/adapters/http/client.ts';
import { startFhirServer } from '../../src/sandbox/fhir-server.ts';
import { startOrthanc } from '../../src/sandbox/orthanc.ts';
import { makeSyntheticCt } from '../../src/sandbox/synthetic-dicom.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '5' },
    pauses: { type: 'string', default: '4' },
    'pause-ms': { type: 'string', default: '1200' },
  },
});
const N = Number(values.n);
const WARMUP = Number(values.warmup);
const PAUSES = Number(values.pauses);
const PAUSE_MS = Number(values['pause-ms']);
const DEMO_BUNDLE = 'test/fixtures/demo/fhir-bundle.json';

const say = (line: string): void => void process.stderr.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};
const mean = (xs: number[]): number => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

// Every TCP connection this process opens as a client (net.connect / net.createConnection).
let connections = 0;
subscribe('net.client.socket', () => {
  connections++;
});

interface Target {
  name: string;
  /** Base URL without a trailing slash. */
  base: string;
  /** Path and query under base. */
  path: string;
  accept: string;
  auth: Auth;
  authorization: string | undefined;
}

/** One client instance: sends the target's GET, reads the whole body, returns the status. */
interface Client {
  get(): Promise<number>;
  close(): Promise<void>;
}

interface Variant {
  name: string;
  make(target: Target): Client;
}

function headersOf(t: Target): Record<string, string> {
  return { accept: t.accept, ...(t.authorization === undefined ? {} : { authorization: t.authorization }) };
}

function fetchVariant(name: string, agentOptions: Agent.Options | undefined): Variant {
  return {
    name,
    make(t) {
      const dispatcher = agentOptions === undefined ? undefined : new Agent(agentOptions);
      const url = `${t.base}/${t.path}`;
      return {
        async get() {
          if (dispatcher === undefined) {
            const res = await fetch(url, { headers: headersOf(t) });
            await res.arrayBuffer();
            return res.status;
          }
          const res = await undiciFetch(url, { headers: headersOf(t), dispatcher });
          await res.arrayBuffer();
          return res.status;
        },
        close: async () => dispatcher?.close(),
      };
    },
  };
}

function undiciRequestVariant(name: string, agentOptions: Agent.Options): Variant {
  return {
    name,
    make(t) {
      const dispatcher = new Agent(agentOptions);
      const url = `${t.base}/${t.path}`;
      return {
        async get() {
          const res = await undiciRequest(url, { headers: headersOf(t), dispatcher });
          await res.body.arrayBuffer();
          return res.statusCode;
        },
        close: () => dispatcher.close(),
      };
    },
  };
}

const httpClientVariant: Variant = {
  name: 'HttpClient (node:http, project)',
  make(t) {
    const client = new HttpClient({ baseUrl: t.base, auth: t.auth, timeoutMs: 10_000, name: t.name });
    return {
      async get() {
        return (await client.request({ path: t.path, headers: { accept: t.accept } })).status;
      },
      close: async () => client.close(),
    };
  },
};

const VARIANTS: Variant[] = [
  fetchVariant('(a) global fetch (Node bundled undici)', undefined),
  fetchVariant('(b0) undici fetch, Agent defaults (threshold 2000)', {}),
  fetchVariant('(b1) undici fetch, threshold 1000', { keepAliveTimeoutThreshold: 1000 }),
  fetchVariant('(b2) undici fetch, threshold 100', { keepAliveTimeoutThreshold: 100 }),
  fetchVariant('(c) undici fetch, threshold 100, keepAlive(Max)Timeout 500', {
    keepAliveTimeoutThreshold: 100,
    keepAliveTimeout: 500,
    keepAliveMaxTimeout: 500,
  }),
  undiciRequestVariant('(c\') undici request(), threshold 100', { keepAliveTimeoutThreshold: 100 }),
  httpClientVariant,
];

interface Row {
  target: string;
  variant: string;
  times: number[];
  conns: number;
  errors: number;
  firstError: string | undefined;
}

async function timed(client: Client, count: number, pauseMs: number): Promise<Omit<Row, 'target' | 'variant'>> {
  const times: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const before = connections;
  for (let i = 0; i < count; i++) {
    if (pauseMs > 0) await sleep(pauseMs);
    const t0 = performance.now();
    try {
      const status = await client.get();
      if (status < 200 || status >= 300) throw new Error(`HTTP ${status}`);
      times.push(performance.now() - t0);
    } catch (err) {
      errors++;
      const e = err as Error & { cause?: { code?: string; message?: string } };
      firstError ??= `${e.message}${e.cause ? ` (${e.cause.code ?? e.cause.message ?? ''})` : ''}`;
    }
  }
  return { times, conns: connections - before, errors, firstError };
}

function table(title: string, rows: Row[]): string {
  const lines = [
    `### ${title}`,
    '',
    '| server | client | n | mean ms | p50 ms | p95 ms | max ms | TCP conns | errors |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.target} | ${r.variant} | ${r.times.length} | ${round(mean(r.times))} | ${round(quantile(r.times, 0.5))} | ${round(quantile(r.times, 0.95))} | ${round(Math.max(...r.times))} | ${r.conns} | ${r.errors} |`,
    );
  }
  const errs = rows.filter((r) => r.firstError !== undefined);
  if (errs.length > 0) lines.push('', ...errs.map((r) => `- ${r.target} / ${r.variant}: first error: ${r.firstError}`));
  return lines.join('\n');
}

// ---------------------------------------------------------------- servers
const t0 = performance.now();
const orthanc = await startOrthanc({ dicomServer: false });
const fhir = await startFhirServer();
try {
  await fhir.seed(JSON.parse(readFileSync(DEMO_BUNDLE, 'utf8')));
  const study = makeSyntheticCt();
  await orthanc.uploadInstance(study.buffer);
  say(`servers up and seeded in ${Math.round(performance.now() - t0)} ms`);

  const targets: Target[] = [
    {
      name: 'Orthanc',
      base: orthanc.baseUrl,
      path: 'dicom-web/studies?limit=1',
      accept: 'application/dicom+json',
      auth: orthanc.auth,
      authorization: orthanc.authorization,
    },
    { name: 'FHIR', base: fhir.url, path: 'Patient?_count=1', accept: 'application/fhir+json', auth: undefined, authorization: undefined },
  ];

  // What each server says about keep-alive, and the versions under test.
  const system = await orthanc.json<{ Version: string }>('/system');
  const hints: string[] = [];
  for (const t of targets) {
    const probe = new HttpClient({ baseUrl: t.base, auth: t.auth, timeoutMs: 10_000, name: t.name });
    const res = await probe.request({ path: t.path, headers: { accept: t.accept } });
    probe.close();
    hints.push(`${t.name}: HTTP ${res.status}, ${res.body.length} B, Connection: ${String(res.headers.connection)}, Keep-Alive: ${String(res.headers['keep-alive'])}`);
  }
  const undiciPkg = JSON.parse(readFileSync('node_modules/undici/package.json', 'utf8')) as { version: string };
  const env = [
    `Node ${process.version} (bundled undici ${process.versions.undici}), undici package ${undiciPkg.version}, Orthanc ${system.Version}`,
    `n=${N} sequential after ${WARMUP} warm-up; pause phase: ${PAUSES} requests, each after ${PAUSE_MS} ms idle (Orthanc only)`,
    ...hints.map((h) => `- ${h}`),
  ];

  const warm: Row[] = [];
  const paused: Row[] = [];
  for (const t of targets) {
    for (const v of VARIANTS) {
      const client = v.make(t);
      try {
        for (let i = 0; i < WARMUP; i++) await client.get();
        const w = await timed(client, N, 0);
        warm.push({ target: t.name, variant: v.name, ...w });
        say(`${t.name} / ${v.name}: warm mean ${round(mean(w.times))} ms, ${w.conns} conns, ${w.errors} errors`);
        if (t.name === 'Orthanc' && PAUSES > 0) {
          const p = await timed(client, PAUSES, PAUSE_MS);
          paused.push({ target: t.name, variant: v.name, ...p });
          say(`${t.name} / ${v.name}: paused mean ${round(mean(p.times))} ms, ${p.conns} conns, ${p.errors} errors`);
        }
      } finally {
        await client.close();
      }
    }
  }

  process.stdout.write(
    [
      env.join('\n'),
      '',
      table(`Warm: ${N} sequential GETs`, warm),
      '',
      table(`After ${PAUSE_MS} ms idle (Orthanc's Keep-Alive hint is 1 s): ${PAUSES} GETs`, paused),
      '',
      `total ${Math.round((performance.now() - t0) / 1000)} s`,
      '',
    ].join('\n'),
  );
} finally {
  await fhir.close();
  await orthanc.cleanup();
}
