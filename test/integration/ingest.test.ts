/**
 * Ingest modes against a real Orthanc: (b) QIDO-RS polling as for any DICOMweb PACS (the time
 * window in the PACS's time zone, paging, the seen-set), and (c) the webhook fed by the Lua
 * script shipped in docker/orthanc/, run by Orthanc itself.
 */
import type { Store } from '../../src/state/ports.ts';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { DicomWebClient } from '../../src/adapters/dicomweb/client.ts';
import { OrthancClient, orthancInstanceId, orthancStudyId, PRIORITY_METADATA } from '../../src/adapters/orthanc/client.ts';
import { readPart10, writePart10 } from '../../src/dicom/part10.ts';
import { localDateTime } from '../../src/pipeline/ingest/dicomweb-qido.ts';
import { ownSeries } from '../../src/pipeline/ingest/own-writes.ts';
import { openSqliteStore } from '../../src/state/sqlite/index.ts';
import { startOrthanc, type OrthancServer } from '../../src/sandbox/orthanc.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { cli, waitFor } from '../harness/cli.ts';

const DEMO = 'test/fixtures/demo/dicom';
const demoFiles = readdirSync(DEMO).filter((f) => f.endsWith('.dcm')).sort().map((f) => path.join(DEMO, f));
const ROOT = '1.2.826.0.1.3680043.10.999.77';
const MANIFEST = JSON.parse(readFileSync('models/cxr-triage/manifest.json', 'utf8')) as { id: string; deviceUid: string };
const UID_ROOT = '1.2.826.0.1.3680043.10.999';

/** A demo file as a new study `n`, acquired at `at` (local time in `timeZone`). */
function studyAt(file: string, n: number, at: number, timeZone: string): Uint8Array {
  const ds = readPart10(readFileSync(file));
  const { date, time } = localDateTime(at, timeZone);
  ds['StudyInstanceUID'] = `${ROOT}.${n}`;
  ds['SeriesInstanceUID'] = `${ROOT}.${n}.1`;
  ds['SOPInstanceUID'] = `${ROOT}.${n}.1.1`;
  ds['StudyDate'] = date;
  ds['StudyTime'] = time;
  return writePart10(ds);
}

function summaryOf(stdout: string): { enqueued: number; done: number; skipped: number; failed: number; outcomes: { status: string; unchanged?: boolean }[] } {
  return JSON.parse(stdout) as ReturnType<typeof summaryOf>;
}

describe.skipIf(!requireOrthanc())('ingest (b): QIDO-RS polling of a DICOMweb PACS', () => {
  const TZ = 'Asia/Tokyo';
  let orthanc: OrthancServer;
  let dicomweb: DicomWebClient;
  let configFile: string;
  let storePath: string;

  beforeAll(async () => {
    orthanc = await startOrthanc({ dicomServer: false });
    dicomweb = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, auth: orthanc.auth, timeoutMs: 10_000 });
    const now = Date.now();
    // Three recent studies (in the window) and one from 3 hours ago (outside a 2-hour lookback).
    await dicomweb.store(undefined, [
      studyAt(demoFiles[0]!, 1, now - 10 * 60_000, TZ),
      studyAt(demoFiles[1]!, 2, now - 20 * 60_000, TZ),
      studyAt(demoFiles[2]!, 3, now - 30 * 60_000, TZ),
      studyAt(demoFiles[3]!, 4, now - 3 * 3_600_000, TZ),
    ]);
    const dir = mkdtempSync(path.join(tmpdir(), 'pacs-triage-qido-'));
    storePath = path.join(dir, 'jobs.sqlite');
    configFile = path.join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        pacs: { baseUrl: orthanc.baseUrl, auth: orthanc.auth, kind: 'dicomweb' },
        ingest: { modes: ['dicomweb-qido'], qido: { timeZone: TZ, lookbackHours: 2, overlapMinutes: 60, pageSize: 2 } },
        store: { path: storePath },
        uidRoot: UID_ROOT,
      }),
    );
  }, 120_000);

  afterAll(async () => {
    dicomweb?.close();
    await orthanc?.cleanup();
  });

  it('enqueues the studies of the window (paged by 2), not the older one, and processes them', async () => {
    const run = await cli(['run-once', '--config', configFile, '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(summaryOf(run.stdout)).toMatchObject({ enqueued: 3, done: 3, failed: 0 });
    const store = openSqliteStore(storePath);
    try {
      expect((await store.jobs()).map((j) => [j.studyInstanceUID, j.source, j.state]).sort()).toEqual([
        [`${ROOT}.1`, 'dicomweb-qido', 'done'],
        [`${ROOT}.2`, 'dicomweb-qido', 'done'],
        [`${ROOT}.3`, 'dicomweb-qido', 'done'],
      ]);
      expect(await store.get(`${ROOT}.4`)).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('the overlap finds a study that reached the PACS late; the seen-set re-polls only changed studies (our SR), which end unchanged', async () => {
    // Acquired 40 minutes ago, arrived after the first poll: inside the 60-minute overlap.
    await dicomweb.store(undefined, [studyAt(demoFiles[4]!, 5, Date.now() - 40 * 60_000, TZ)]);
    const again = summaryOf((await cli(['run-once', '--config', configFile, '--json'])).stdout);
    // Study 5 is new; 1–3 gained our SR (one more series and instance), so they are polled once
    // more and end as unchanged, writing nothing.
    expect(again).toMatchObject({ enqueued: 4, done: 4, failed: 0 });
    expect(again.outcomes.filter((o) => o.unchanged === true)).toHaveLength(3);
    const third = await cli(['run-once', '--config', configFile, '--json']);
    // Only study 5 changed (its SR) since; then nothing at all.
    expect(summaryOf(third.stdout)).toMatchObject({ enqueued: 1, done: 1 });
    const fourth = await cli(['run-once', '--config', configFile, '--json']);
    expect(summaryOf(fourth.stdout)).toMatchObject({ enqueued: 0, done: 0 });
  });
});

interface WebhookRig {
  orthanc: OrthancServer;
  dicomweb: DicomWebClient;
  store: Store;
  /** A run-once configuration on the same store, ingest mode webhook. */
  configFile: string;
  orthancLines: string[];
  /** The webhook app's log lines (debug). */
  appLines: string[];
  close(): Promise<void>;
}

/**
 * The webhook route on a store of its own, and an Orthanc running the shipped Lua script that
 * posts to it: StableStudy by default, every instance with `perInstance` (the route then has
 * ingest.stableAgeS 0.5 s and knows our own series).
 */
async function startWebhookRig(o: { secret: string; tag: string; perInstance?: boolean }): Promise<WebhookRig> {
  const dir = mkdtempSync(path.join(tmpdir(), `pacs-triage-webhook-${o.tag}-`));
  const storePath = path.join(dir, 'jobs.sqlite');
  const store = openSqliteStore(storePath);
  const orthancLines: string[] = [];
  const appLines: string[] = [];
  const app = createApp({
    store,
    shadow: false,
    status: () => ({ provider: 'cpu', model: 'm@1' }),
    log: pino({ level: 'debug' }, { write: (line: string) => void appLines.push(line) }),
    webhook: { secret: o.secret, ...(o.perInstance ? { stableAgeMs: 500, isOwnSeries: ownSeries(UID_ROOT, MANIFEST) } : {}) },
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/orthanc`;
  const orthanc = await startOrthanc({
    dicomServer: false,
    onLog: (line) => orthancLines.push(line),
    extraConfig: {
      LuaScripts: [path.resolve('docker/orthanc/on-stable-study.lua')],
      PacsTriage: { WebhookUrl: url, WebhookSecret: o.secret, ...(o.perInstance ? { WebhookEvent: 'instance' } : {}) },
    },
  });
  const dicomweb = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, auth: orthanc.auth, timeoutMs: 10_000 });
  const configFile = path.join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      pacs: { baseUrl: orthanc.baseUrl, auth: orthanc.auth },
      ingest: { modes: ['webhook'], webhook: { secret: o.secret }, ...(o.perInstance ? { stableAgeS: 0.5 } : {}) },
      store: { path: storePath },
      uidRoot: UID_ROOT,
    }),
  );
  return {
    orthanc,
    dicomweb,
    store,
    configFile,
    orthancLines,
    appLines,
    close: async () => {
      dicomweb.close();
      await orthanc.cleanup();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
}


describe.skipIf(!requireOrthanc())('ingest (c): webhook from Orthanc\'s Lua OnStableStudy (docker/orthanc/on-stable-study.lua)', () => {
  let rig: WebhookRig;
  beforeAll(async () => {
    rig = await startWebhookRig({ secret: 'integration-webhook-secret-42', tag: 'stable' });
  }, 120_000);
  afterAll(async () => rig?.close());

  it('Orthanc posts each stable study with the secret (HttpPost); run-once processes the queued job', async () => {
    const uid = `${ROOT}.50`;
    await rig.dicomweb.store(undefined, [studyAt(demoFiles[4]!, 50, Date.now(), 'UTC')]);
    const job = await waitFor('the webhook to enqueue the study', async () => await rig.store.get(uid), 30_000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; Orthanc said:\n${rig.orthancLines.slice(-20).join('\n')}`);
    });
    expect(job).toMatchObject({ source: 'webhook', state: 'queued' });
    expect(job.orthancId).toMatch(/^[0-9a-f]{8}-/);
    const run = await cli(['run-once', '--config', rig.configFile, '--json']);
    expect(run.code).toBe(0);
    expect(summaryOf(run.stdout)).toMatchObject({ enqueued: 0, done: 1, failed: 0 });
    expect((await rig.store.get(uid))?.state).toBe('done');
  });
});


/** Instance `k` of series `s` of study `n` (a demo file under new UIDs). */
function instanceOf(n: number, s: number, k: number): Uint8Array {
  const ds = readPart10(readFileSync(demoFiles[(n + k) % demoFiles.length]!));
  ds['StudyInstanceUID'] = `${ROOT}.${n}`;
  ds['SeriesInstanceUID'] = `${ROOT}.${n}.${s}`;
  ds['SOPInstanceUID'] = `${ROOT}.${n}.${s}.${k}`;
  return writePart10(ds);
}

describe.skipIf(!requireOrthanc())('ingest (a) with ingest.stableAgeS: the changes feed read per instance', () => {
  let orthanc: OrthancServer;
  let dicomweb: DicomWebClient;
  let configFile: string;

  beforeAll(async () => {
    orthanc = await startOrthanc({ dicomServer: false });
    dicomweb = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, auth: orthanc.auth, timeoutMs: 10_000 });
    const dir = mkdtempSync(path.join(tmpdir(), 'pacs-triage-settle-'));
    configFile = path.join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        pacs: { baseUrl: orthanc.baseUrl, auth: orthanc.auth },
        ingest: { modes: ['orthanc-changes'], stableAgeS: 0.5 },
        store: { path: path.join(dir, 'jobs.sqlite') },
        uidRoot: UID_ROOT,
      }),
    );
  }, 120_000);

  afterAll(async () => {
    dicomweb?.close();
    await orthanc?.cleanup();
  });

  it('a study is taken once its instances settled, without Orthanc\'s StableStudy; our own SR does not bring it back; a new series does', async () => {
    await dicomweb.store(undefined, [instanceOf(60, 1, 1), instanceOf(60, 1, 2)]);
    const first = await cli(['run-once', '--config', configFile, '--json']);
    expect(first.code).toBe(0);
    // Two NewInstance changes, one study; run-once waited for it to settle (0.5 s), not for StableStudy.
    expect(summaryOf(first.stdout)).toMatchObject({ enqueued: 1, done: 1, failed: 0 });
    const ours = await dicomweb.studyInstances(`${ROOT}.60`);
    expect(ours.filter((m) => m.Modality === 'SR')).toHaveLength(1);
    // The priority was written to the study Orthanc's id is computed for (no /tools/lookup).
    const rest = new OrthancClient({ baseUrl: orthanc.baseUrl, auth: orthanc.auth, timeoutMs: 10_000 });
    const id = await rest.findStudy(`${ROOT}.60`);
    const patientId = String(readPart10(instanceOf(60, 1, 1))['PatientID']);
    expect(orthancStudyId(patientId, `${ROOT}.60`)).toBe(id);
    expect(orthancInstanceId(patientId, `${ROOT}.60`, `${ROOT}.60.1`, `${ROOT}.60.1.1`)).toBe(
      ((await rest.http.json({ method: 'POST', path: 'tools/lookup', body: `${ROOT}.60.1.1` })) as { ID: string }[])[0]?.ID,
    );
    expect(await rest.studyMetadata(id!, PRIORITY_METADATA)).toMatch(/^(stat|urgent|asap|routine)$/);
    rest.close();
    // Our SR was a NewInstance too: recognised by its series UID, nothing to run.
    expect(summaryOf((await cli(['run-once', '--config', configFile, '--json'])).stdout)).toMatchObject({ enqueued: 0, done: 0 });
    await dicomweb.store(undefined, [instanceOf(60, 2, 1)]);
    // Run again (whether the result changes depends on which image the selection takes).
    expect(summaryOf((await cli(['run-once', '--config', configFile, '--json'])).stdout)).toMatchObject({ enqueued: 1, done: 1, failed: 0 });
  });
});

describe.skipIf(!requireOrthanc())('ingest (c) per instance: the Lua script posts every stored instance (WebhookEvent "instance")', () => {
  let rig: WebhookRig;
  beforeAll(async () => {
    rig = await startWebhookRig({ secret: 'integration-webhook-secret-43', tag: 'instance', perInstance: true });
  }, 120_000);
  afterAll(async () => rig?.close());

  it('each instance pushes the study back to settle; our own SR is posted and ignored', async () => {
    const uid = `${ROOT}.70`;
    const posted = (): number => rig.appLines.filter((l) => l.includes('"ingest.enqueued"') && l.includes(uid)).length;
    await rig.dicomweb.store(undefined, [instanceOf(70, 1, 1)]);
    await rig.dicomweb.store(undefined, [instanceOf(70, 1, 2)]);
    await waitFor('both instances to be posted', async () => (posted() >= 2 ? true : undefined), 30_000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; Orthanc said:\n${rig.orthancLines.slice(-20).join('\n')}`);
    });
    const job = await rig.store.get(uid);
    expect(job).toMatchObject({ source: 'webhook', state: 'queued' });
    // Due 0.5 s after the later post, not at once.
    expect((await rig.store.nextDueAt())! - job!.updatedAt).toBe(500);
    await new Promise((r) => setTimeout(r, 600));
    const run = await cli(['run-once', '--config', rig.configFile, '--json']);
    expect(run.code).toBe(0);
    expect(summaryOf(run.stdout)).toMatchObject({ done: 1, failed: 0 });
    await waitFor('our SR to be posted back', async () => (rig.appLines.some((l) => l.includes('"webhook.own_instance"')) ? true : undefined), 30_000);
    expect((await rig.store.get(uid))?.state).toBe('done');
    expect(posted()).toBe(2);
  });
});
