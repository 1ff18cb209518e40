/**
 * No patient data outside the result. Sentinel MRNs and a sentinel patient name go into every
 * input — the DICOM header, the FHIR Patient, order and report, and the bodies of the FHIR
 * server's error answers, which echo the search as real servers' OperationOutcomes do — while
 * one running `serve` goes through the fault scenarios (retried 500/429/503, a refused search
 * that fails its job, a failed write-back, an unreadable file in the watched folder). Then the
 * logs, the job reasons, every API answer, the metrics and the state files on disk are searched
 * for the sentinels: zero hits. The result itself (the SR in the PACS) carries the name, as it must.
 */
import type { Bundle } from '@medplum/fhirtypes';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/records.ts';
import { readPart10, writePart10 } from '../../src/dicom/part10.ts';
import { freePorts } from '../../src/sandbox/orthanc.ts';
import { truncated } from '../harness/hostile-dicom.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { RIG_API_TOKEN, startRig, type Rig } from '../harness/rig.ts';

const ROOT = '1.2.826.0.1.3680043.10.994';
const DEMO = 'test/fixtures/demo/dicom/demo01.dcm';
const MRN_SYSTEM = 'urn:pacs-triage:synthetic:mrn';
/** Strings that appear nowhere in the code base or the fixtures, so any hit is a leak. */
const FAMILY = 'QZXSENTINELFAMILY';
const GIVEN = 'QZXSENTINELGIVEN';
const mrn = (n: number): string => `QZX-MRN-${n}-7731`;
const SENTINELS = [FAMILY, GIVEN, 'QZX-MRN-'];

/** An OperationOutcome that echoes the request and the patient, as some servers answer. */
const echo = (n: number): unknown => ({
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code: 'processing', diagnostics: `search identifier=${MRN_SYSTEM}|${mrn(n)} for ${FAMILY}, ${GIVEN} failed` }],
  text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${FAMILY} ${mrn(n)}</div>` },
});

/** Every occurrence of a sentinel in `text`, with a little context. */
function hits(text: string): string[] {
  const found: string[] = [];
  const upper = text.toUpperCase();
  for (const s of SENTINELS) {
    for (let i = upper.indexOf(s); i >= 0; i = upper.indexOf(s, i + 1)) found.push(text.slice(Math.max(0, i - 60), i + 60));
  }
  return found;
}

/** Every regular file under `dir`, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

describe.skipIf(!requireOrthanc())('PHI sentinels through the fault scenarios: zero hits outside the result', () => {
  let rig: Rig;
  let serve: ChildProcess;
  let port: number;
  let watched: string;
  let output = '';

  const get = (p: string, token: string | undefined = RIG_API_TOKEN): Promise<Response> =>
    fetch(`http://127.0.0.1:${port}${p}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const jobs = async (): Promise<Job[]> => ((await (await get('/api/jobs?limit=200')).json()) as { items: Job[] }).items;
  async function within<T>(what: string, ms: number, probeFn: () => Promise<T | undefined>): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await probeFn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms; serve said:\n${output.slice(-3_000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  /** Study n: the demo image under new UIDs, with sentinel MRN n, the sentinel name and accession. */
  function study(n: number): Uint8Array {
    const ds = readPart10(readFileSync(DEMO));
    ds['StudyInstanceUID'] = `${ROOT}.${n}`;
    ds['SeriesInstanceUID'] = `${ROOT}.${n}.1`;
    ds['SOPInstanceUID'] = `${ROOT}.${n}.1.1`;
    ds['PatientID'] = mrn(n);
    ds['PatientName'] = [{ Alphabetic: `${FAMILY}^${GIVEN}` }];
    ds['OtherPatientIDs'] = `${mrn(n)}-OLD`;
    // Accession number and study description are study identifiers the worklist keeps and shows
    // (issue 16); the patient's name and MRN are not, so only those carry sentinels.
    ds['AccessionNumber'] = `ACC${n}`;
    return writePart10(ds);
  }
  /** Patient, order and report on the FHIR server for study n; the report names the patient. */
  async function seed(n: number): Promise<void> {
    const pat = `pat-qzx-${n}`;
    const resources: { resourceType: string; id: string; [k: string]: unknown }[] = [
      { resourceType: 'Patient', id: pat, identifier: [{ system: MRN_SYSTEM, value: mrn(n) }], name: [{ family: FAMILY, given: [GIVEN] }], gender: 'female', birthDate: '1970-01-01' },
      {
        resourceType: 'ServiceRequest',
        id: `sr-qzx-${n}`,
        status: 'active',
        intent: 'order',
        subject: { reference: `Patient/${pat}`, display: `${FAMILY}, ${GIVEN}` },
        identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, system: 'urn:pacs-triage:synthetic:accession', value: `ACC${n}` }],
        code: { text: 'XR chest' },
        reasonCode: [{ text: `${FAMILY} ${GIVEN} (${mrn(n)}): sudden pleuritic chest pain` }],
      },
      {
        resourceType: 'DiagnosticReport',
        id: `dr-qzx-${n}`,
        status: 'final',
        code: { text: 'XR chest' },
        subject: { reference: `Patient/${pat}`, display: FAMILY },
        effectiveDateTime: '2026-11-01T10:00:00Z',
        conclusion: `Patient ${FAMILY} ${GIVEN}, MRN ${mrn(n)}: small left pleural effusion.`,
      },
    ];
    await rig.fhir.seed({ resourceType: 'Bundle', type: 'transaction', entry: resources.map((r) => ({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } })) } as Bundle);
  }

  beforeAll(async () => {
    rig = await startRig('phi');
    [port] = (await freePorts(1)) as [number];
    watched = path.join(rig.dir, 'watched');
    mkdirSync(watched);
    const config = rig.config('serve.json', {
      api: { port },
      fhir: { timeoutMs: 2_000 },
      ingest: { pollIntervalS: 1, modes: ['orthanc-changes', 'folder'], folder: { path: watched, stableAgeS: 1 } },
      worker: { concurrency: 2, maxAttempts: 4, retryBaseDelayMs: 100, retryMaxDelayMs: 300 },
      corrections: { deletedSweep: false },
    });
    for (const n of [1, 2, 3, 4, 5, 6]) await seed(n);
    serve = spawn(process.execPath, ['src/bin.mjs', 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    serve.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    serve.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await within('serve listening', 60_000, async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) || undefined);
  }, 120_000);

  afterAll(async () => {
    serve?.kill('SIGTERM');
    await new Promise((r) => (serve?.exitCode !== null ? r(undefined) : serve.once('exit', r)));
    await rig?.close();
  });

  it('runs the fault scenarios: retried ones end done, refused ones end failed with a reason', async () => {
    const f = rig.fhir.faults;
    const about = (n: number) => (req: { originalUrl: string; body?: unknown }) => req.originalUrl.includes(encodeURIComponent(mrn(n))) || req.originalUrl.includes(mrn(n));
    // 1: 500 twice and 429 once on the patient search, each body echoing the MRN and name → retried, done.
    f.failNext(2, 500, { body: echo(1), match: about(1) }).failNext(1, 429, { body: echo(1), retryAfterSeconds: 1, match: about(1) });
    // 2: the search refused for good (400, echoing) → failed, with a reason.
    f.failNext(100, 400, { body: echo(2), match: about(2) });
    // 3: the write-back refused once (503, echoing the patient) → retried, done.
    let postFaultServed = false;
    f.failNext(1, 503, { body: echo(3), match: (req) => req.method === 'POST' && (postFaultServed = true) });
    // 4: a malformed answer whose text carries the name → retried, done.
    f.failNext(1, 200, { body: `{"resourceType":"Bundle","entry":[{"resource":{"name":"${FAMILY}"`, match: about(4) });
    // 5: the FHIR server keeps answering 500 with the echo → failed after its attempts.
    f.failNext(100, 500, { body: echo(5), match: about(5) });
    await rig.dicomweb.store(undefined, [study(1), study(2), study(3), study(4), study(5)]);
    // 6: a file in the watched folder, cut short inside the pixel data, whose header names the patient.
    writeFileSync(path.join(watched, "cut-6.dcm"), truncated(Buffer.from(study(6)), 20_000));

    const states = await within('every study settled', 120_000, async () => {
      const all = await jobs();
      const mine = [1, 2, 3, 4, 5, 6].map((n) => all.find((j) => j.studyInstanceUID === `${ROOT}.${n}`));
      return mine.every((j) => j && (j.state === 'done' || j.state === 'failed')) ? mine.map((j) => `${j!.state}${j!.errorCode ? ` ${j!.errorCode}` : ''}`) : undefined;
    });
    expect(states).toEqual(['done', 'failed UPSTREAM_REJECTED', 'done', 'done', 'failed UPSTREAM_UNAVAILABLE', 'failed DICOM_UNREADABLE']);
    // The result is where the name belongs: the SR of study 1 in the PACS names the patient.
    // (This is also the search's positive control: it finds the sentinels where they belong.)
    const sr = (await rig.dicomweb.studyInstances(`${ROOT}.1`)).find((i) => i.Modality === 'SR');
    expect(sr).toBeDefined();
    const srBytes = await rig.dicomweb.retrieveInstance(`${ROOT}.1`, sr!.SeriesInstanceUID, sr!.SOPInstanceUID);
    expect(hits(srBytes.toString('latin1')).length).toBeGreaterThan(0);
    // The retried faults were served: study 1 took more than one attempt, and the write-back fault was used.
    const all = await jobs();
    expect(all.find((j) => j.studyInstanceUID === `${ROOT}.1`)?.attempts).toBeGreaterThan(1);
    expect(all.find((j) => j.studyInstanceUID === `${ROOT}.5`)?.attempts).toBe(4);
    expect(postFaultServed).toBe(true);
  }, 180_000);

  it('zero hits in the logs, the job reasons, every API answer, the metrics and the state files', async () => {
    const answers: Record<string, string> = {};
    const paths = ['/healthz', '/readyz', '/metrics', '/openapi.json', '/api/worklist?limit=200', '/api/jobs?limit=200'];
    for (const n of [1, 2, 3, 4, 5, 6]) {
      paths.push(`/api/studies/${ROOT}.${n}`, `/api/studies/${ROOT}.${n}/feedback`);
    }
    for (const p of paths) {
      const res = await get(p);
      answers[p] = `${res.status} ${await res.text()}`;
    }
    answers['/readyz (no token)'] = await (await get('/readyz', '')).text();
    // Sanity: the answers are the real ones, not empty errors.
    expect(answers['/api/jobs?limit=200']).toContain(`${ROOT}.2`);
    expect(answers['/metrics']).toContain('pacs_triage_');
    expect(answers[`/api/studies/${ROOT}.1`]).toMatch(/^200 /);

    const reasons = (await jobs()).filter((j) => j.reason).map((j) => `${j.studyInstanceUID}: ${j.reason}`);
    expect(reasons.length).toBeGreaterThanOrEqual(3);

    // Stop serve so the WAL is checkpointed into the database file too; both are searched.
    serve.kill('SIGTERM');
    await new Promise((r) => (serve.exitCode !== null ? r(undefined) : serve.once('exit', r)));
    const stateFiles = files(path.dirname(rig.storePath)).filter((f) => !f.startsWith(watched) && !f.endsWith('.json'));
    const folderFiles = files(watched).filter((f) => f.endsWith('.txt') || f.endsWith('.json'));
    expect(stateFiles.some((f) => f.endsWith('.sqlite'))).toBe(true);
    expect(folderFiles.length).toBeGreaterThan(0);

    const found: Record<string, string[]> = {};
    const check = (where: string, text: string): void => {
      const h = hits(text);
      if (h.length > 0) found[where] = h.slice(0, 5);
    };
    check('serve log', output);
    for (const r of reasons) check('job reason', r);
    for (const [p, text] of Object.entries(answers)) check(`GET ${p}`, text);
    for (const f of stateFiles) {
      const bytes = readFileSync(f);
      // Text may be stored as UTF-8 or UTF-16; search both readings.
      check(f, bytes.toString('latin1'));
      check(`${f} (utf16)`, bytes.toString('utf16le'));
    }
    // Notes written next to files put aside are reasons too (their names are the file's own name,
    // which the sender chose; the note's text must not add to it).
    for (const f of folderFiles) check(f, readFileSync(f, 'latin1'));
    console.info(`[phi sentinel] searched ${output.length} log bytes, ${reasons.length} reasons, ${paths.length + 1} API answers, ${stateFiles.length} state files, ${folderFiles.length} folder notes`);
    expect(found).toEqual({});
  }, 60_000);
});
