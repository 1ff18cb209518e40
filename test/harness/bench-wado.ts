/**
 * Micro-benchmark: one WADO-RS instance retrieval (~512 KiB CT) from a real Orthanc on
 * loopback, node:http (keep-alive Agent) vs global fetch (undici). Also times Orthanc start/stop.
 *
 *   unshare --net bash -c 'ip link set lo up && node --import tsx test/harness/bench-wado.ts [iterations]'
 */
import http from 'node:http';
import { OrthancServer } from '../../src/sandbox/orthanc.ts';
import { makeSyntheticCt } from '../../src/sandbox/synthetic-dicom.ts';

const iterations = Number(process.argv[2] ?? 300);

function stats(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return `p50 ${q(0.5).toFixed(2)} ms  p90 ${q(0.9).toFixed(2)} ms  p99 ${q(0.99).toFixed(2)} ms  mean ${mean.toFixed(2)} ms  (n=${s.length})`;
}

const orthanc = new OrthancServer({ dicomServer: false });
const starts: number[] = [];
const stops: number[] = [];
await orthanc.start();
starts.push(orthanc.lastStartMs ?? NaN);
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  await orthanc.stop();
  stops.push(performance.now() - t);
  await orthanc.start();
  starts.push(orthanc.lastStartMs ?? NaN);
}
try {
  const ct = makeSyntheticCt({ rows: 512, columns: 512 });
  await orthanc.uploadInstance(ct.buffer);
  const path = `/dicom-web/studies/${ct.studyInstanceUid}/series/${ct.seriesInstanceUid}/instances/${ct.sopInstanceUid}`;
  const url = `${orthanc.baseUrl}${path}`;
  const accept = 'multipart/related; type="application/dicom"';
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  const viaHttp = (): Promise<{ bytes: number; encoding: string | undefined }> =>
    new Promise((resolve, reject) => {
      const req = http.get(url, { agent, headers: { authorization: orthanc.authorization, accept } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
          else resolve({ bytes: Buffer.concat(chunks).length, encoding: res.headers['content-encoding'] });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  const viaFetch = async (identity: boolean): Promise<{ bytes: number; encoding: string | undefined }> => {
    const headers: Record<string, string> = { authorization: orthanc.authorization, accept };
    if (identity) headers['accept-encoding'] = 'identity';
    const res = await fetch(url, { headers });
    const body = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    return { bytes: body.length, encoding: res.headers.get('content-encoding') ?? undefined };
  };

  const cases: [string, () => Promise<{ bytes: number; encoding: string | undefined }>][] = [
    ['node:http (keep-alive agent)', viaHttp],
    ['fetch (default accept-encoding)', () => viaFetch(false)],
    ['fetch (accept-encoding: identity)', () => viaFetch(true)],
  ];
  const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
  const info = new Map<string, string>();
  for (const [name, fn] of cases) {
    const t = performance.now();
    const r = await fn();
    info.set(name, `first (cold) ${(performance.now() - t).toFixed(2)} ms, ${r.bytes} bytes, content-encoding ${r.encoding ?? 'none'}`);
    for (let i = 0; i < 30; i++) await fn(); // warm-up
  }
  for (let i = 0; i < iterations; i++) {
    for (const [name, fn] of cases) {
      const t = performance.now();
      await fn();
      samples.get(name)?.push(performance.now() - t);
    }
  }
  console.log(`instance: ${ct.buffer.length} bytes; Orthanc ${(await orthanc.json<{ Version: string }>('/system')).Version}`);
  console.log(`Orthanc start (spawn -> GET /system 200): ${starts.map((s) => s.toFixed(0)).join(', ')} ms`);
  console.log(`Orthanc graceful stop (SIGTERM -> exit, DICOM listener off): ${stops.map((s) => s.toFixed(0)).join(', ')} ms`);
  for (const [name] of cases) {
    console.log(`${name.padEnd(36)} ${stats(samples.get(name) ?? [])}\n${''.padEnd(36)} ${info.get(name)}`);
  }
  agent.destroy();
} finally {
  await orthanc.cleanup();
}
