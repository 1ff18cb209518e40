/**
 * Crafted input, as an attacker would send it, into one running `serve` through every door: the
 * watched folder, the webhook and Orthanc's changes feed. Every file is generated here (nothing
 * large is committed). For each: a named error within 30 s; the service goes on (a normal study
 * still gets its result); /healthz answers within 250 ms throughout; serve's RSS stays under 1 GB.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/records.ts';
import { readPart10, writePart10 } from '../../src/dicom/part10.ts';
import { freePorts } from '../../src/sandbox/orthanc.ts';
import { deepNesting, deflateBomb, hugeDeclaredImage, hugeElementLength, truncated, withStudyUid } from '../harness/hostile-dicom.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { RIG_API_TOKEN, startRig, type Rig } from '../harness/rig.ts';

const ROOT = '1.2.826.0.1.3680043.10.995';
const SECRET = 'hostile-webhook-secret-0123';
const DEMO = 'test/fixtures/demo/dicom/demo01.dcm';
const GB = 1024 ** 3;

interface Probe {
  healthMaxMs: number;
  healthFailures: number;
  rssMaxBytes: number;
  stop(): void;
}

/** Samples /healthz (every 100 ms, timed) and serve's RSS (/proc) until stopped. */
function probe(port: number, pid: number): Probe {
  const p: Probe = { healthMaxMs: 0, healthFailures: 0, rssMaxBytes: 0, stop: () => undefined };
  let stopped = false;
  const health = async (): Promise<void> => {
    while (!stopped) {
      const start = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) });
        if (!res.ok) p.healthFailures++;
      } catch {
        p.healthFailures++;
      }
      p.healthMaxMs = Math.max(p.healthMaxMs, performance.now() - start);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const rss = setInterval(() => {
    try {
      const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      p.rssMaxBytes = Math.max(p.rssMaxBytes, kb * 1024);
    } catch {
      // the process ended
    }
  }, 50);
  void health();
  p.stop = () => {
    stopped = true;
    clearInterval(rss);
  };
  return p;
}

describe.skipIf(!requireOrthanc())('hostile input into one running serve: folder, webhook, changes feed', () => {
  let rig: Rig;
  let serve: ChildProcess;
  let port: number;
  let watched: string;
  let output = '';
  let health: Probe;

  const api = async <T>(p: string): Promise<T> => (await (await fetch(`http://127.0.0.1:${port}${p}`, { headers: { authorization: `Bearer ${RIG_API_TOKEN}` } })).json()) as T;
  const jobs = async (): Promise<Job[]> => (await api<{ items: Job[] }>('/api/jobs?limit=200')).items;
  const failedNote = (name: string): string | undefined => {
    const file = path.join(watched, '.failed', 'unreadable', `${name}.reason.txt`);
    return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  };
  async function within<T>(what: string, ms: number, probeFn: () => Promise<T | undefined>): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await probeFn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms; serve said:\n${output.slice(-3_000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  /** A demo instance under new UIDs (a normal study, or the carrier of a crafted edit). */
  function demo(n: number, edit?: (ds: Record<string, unknown>) => void): Uint8Array {
    const ds = readPart10(readFileSync(DEMO));
    ds['StudyInstanceUID'] = `${ROOT}.${n}`;
    ds['SeriesInstanceUID'] = `${ROOT}.${n}.1`;
    ds['SOPInstanceUID'] = `${ROOT}.${n}.1.1`;
    edit?.(ds);
    return writePart10(ds);
  }

  beforeAll(async () => {
    rig = await startRig('hostile');
    [port] = (await freePorts(1)) as [number];
    watched = path.join(rig.dir, 'watched');
    mkdirSync(watched);
    const config = rig.config('serve.json', {
      api: { port },
      ingest: { pollIntervalS: 1, modes: ['orthanc-changes', 'webhook', 'folder'], webhook: { secret: SECRET }, folder: { path: watched, stableAgeS: 1 } },
      worker: { concurrency: 2, maxAttempts: 1, retryBaseDelayMs: 100, retryMaxDelayMs: 200 },
      corrections: { deletedSweep: false },
    });
    serve = spawn(process.execPath, ['src/bin.mjs', 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    serve.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    serve.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await within('serve listening', 60_000, async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) || undefined);
    health = probe(port, serve.pid!);
  }, 120_000);

  afterAll(async () => {
    health?.stop();
    serve?.kill('SIGTERM');
    await new Promise((r) => (serve?.exitCode !== null ? r(undefined) : serve.once('exit', r)));
    await rig?.close();
  });

  it('the watched folder: each crafted file is put aside with its named error', async () => {
    const drops: [string, Buffer | (() => void), RegExp][] = [
      ['deep.dcm', deepNesting(`${ROOT}.10`, 20_000), /^DICOM_TOO_DEEP: /],
      ['bomb.dcm', deflateBomb(`${ROOT}.11`, 1 * GB), /^DICOM_TOO_LARGE: /],
      ['length.dcm', hugeElementLength(`${ROOT}.12`), /^DICOM_UNREADABLE: file is truncated/],
      ['traversal.dcm', withStudyUid('../../../etc/passwd'), /^DICOM_UNREADABLE: the StudyInstanceUID is not a valid UID/],
      ['markup.dcm', withStudyUid('<img src=x onerror=alert(1)>'), /^DICOM_UNREADABLE: the StudyInstanceUID is not a valid UID/],
      ['cut-header.dcm', truncated(Buffer.from(demo(13)), 300), /^DICOM_UNREADABLE: /],
      [
        'sparse.dcm',
        () => {
          const file = path.join(watched, 'sparse.dcm');
          copyFileSync(DEMO, file);
          const fd = openSync(file, 'r+');
          ftruncateSync(fd, 4 * GB);
          closeSync(fd);
        },
        /^DICOM_TOO_LARGE: the file has 4294967296 bytes/,
      ],
    ];
    for (const [name, content] of drops) {
      if (typeof content === 'function') content();
      else writeFileSync(path.join(watched, name), content);
    }
    for (const [name, , reason] of drops) {
      const note = await within(`a reason for ${name}`, 30_000, async () => failedNote(name));
      expect(note, name).toMatch(reason);
    }
  }, 120_000);

  it('the watched folder: images that declare what they do not hold fail as jobs, with their named errors', async () => {
    const drops: [string, string, Buffer, string][] = [
      ['rle-huge.dcm', `${ROOT}.20`, hugeDeclaredImage(`${ROOT}.20`, { rows: 30_000, columns: 30_000, syntax: 'rle' }), 'DICOM_TOO_LARGE'],
      ['native-huge.dcm', `${ROOT}.21`, hugeDeclaredImage(`${ROOT}.21`, { rows: 30_000, columns: 30_000, syntax: 'native' }), 'DICOM_TOO_LARGE'],
      ['frames.dcm', `${ROOT}.22`, hugeDeclaredImage(`${ROOT}.22`, { rows: 512, columns: 512, frames: 100_000, syntax: 'rle' }), 'DICOM_TOO_LARGE'],
      ['cut-pixels.dcm', `${ROOT}.23`, truncated(Buffer.from(demo(23)), 20_000), 'DICOM_UNREADABLE'],
    ];
    for (const [name, , bytes] of drops) writeFileSync(path.join(watched, name), bytes);
    for (const [name, uid, , code] of drops) {
      const job = await within(`the job of ${name}`, 30_000, async () => (await jobs()).find((j) => j.studyInstanceUID === uid && j.state === 'failed'));
      expect(job.errorCode, name).toBe(code);
    }
  }, 120_000);

  it('the webhook: markup and traversal in the body are refused with the field named; a flood leaves bounded rows', async () => {
    const post = (body: unknown): Promise<Response> =>
      fetch(`http://127.0.0.1:${port}/webhooks/orthanc`, { method: 'POST', headers: { 'x-pacs-triage-secret': SECRET, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    for (const uid of ['../../etc/passwd', '<script>alert(1)</script>', '1.2.3\u0000', 'x'.repeat(5_000)]) {
      const res = await post({ StudyInstanceUID: uid });
      expect([400, 413], uid.slice(0, 20)).toContain(res.status);
      expect(JSON.stringify(await res.json())).toMatch(/StudyInstanceUID|larger than/);
    }
    expect((await post({ StudyInstanceUID: `${ROOT}.30`, ChangeType: 'NewInstance', SeriesInstanceUID: `${ROOT}.30.1` })).status).toBe(409);
  }, 60_000);

  it('the changes feed: crafted instances stored in Orthanc fail with their named errors', async () => {
    const stored: [string, Uint8Array, string][] = [
      [`${ROOT}.40`, hugeDeclaredImage(`${ROOT}.40`, { rows: 30_000, columns: 30_000, syntax: 'native' }), 'DICOM_TOO_LARGE'],
      [`${ROOT}.41`, hugeDeclaredImage(`${ROOT}.41`, { rows: 30_000, columns: 30_000, syntax: 'rle' }), 'DICOM_TOO_LARGE'],
    ];
    for (const [, bytes] of stored) await rig.orthanc.uploadInstance(bytes);
    for (const [uid, , code] of stored) {
      const job = await within(`the job of ${uid}`, 30_000, async () => (await jobs()).find((j) => j.studyInstanceUID === uid && j.state === 'failed'));
      expect(job.errorCode, uid).toBe(code);
    }
  }, 90_000);

  it('the service goes on: a normal study still gets its result; /healthz stayed under 250 ms and serve under 1 GB throughout', async () => {
    await rig.dicomweb.store(undefined, [demo(50)]);
    const done = await within('the normal study done', 60_000, async () => (await jobs()).find((j) => j.studyInstanceUID === `${ROOT}.50` && j.state === 'done'));
    expect(done.state).toBe('done');
    health.stop();
    console.info(`[hostile input] /healthz max ${health.healthMaxMs.toFixed(0)} ms, serve RSS max ${(health.rssMaxBytes / 1024 ** 2).toFixed(0)} MiB`);
    expect(health.healthFailures, output.slice(-2_000)).toBe(0);
    expect(health.healthMaxMs, output.split('\n').filter((l) => l.includes('event_loop')).join('\n')).toBeLessThan(250);
    expect(health.rssMaxBytes).toBeGreaterThan(0);
    expect(health.rssMaxBytes).toBeLessThan(GB);
    expect(serve.exitCode).toBeNull();
    // Nothing was left in the watched folder's root: every file was settled or put aside.
    expect(readdirSync(watched).filter((f) => !f.startsWith('.'))).toEqual([]);
  }, 90_000);
});
