/**
 * README "The first hour", run as written: each step's shell block is read from README.md and run
 * with bash from the repository root, the long-running ones (the sandbox, serve) in process groups
 * of their own as in a terminal, the others in a shell that has first run the README's `env`
 * block, as the second terminal has. So a README command that stops working fails here, and a
 * step the test needs that the README lacks fails too.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readPart10 } from '../../src/dicom/part10.ts';
import { spawnGroup, type GroupRun } from '../harness/process-group.ts';
import { requireCommand, requireOrthanc } from '../harness/require-servers.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const STEPS = ['sandbox', 'env', 'doctor', 'serve', 'upload', 'worklist', 'jobs', 'sr', 'risk', 'more'] as const;
type Step = (typeof STEPS)[number];

/** The README's first-hour blocks: a fenced `sh` block right after `<!-- first-hour: NAME -->`. */
function readmeSteps(): { order: string[]; blocks: Map<string, string> } {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const order: string[] = [];
  const blocks = new Map<string, string>();
  for (const m of readme.matchAll(/<!-- first-hour: ([a-z-]+) -->\n```sh\n([\s\S]*?)\n```/g)) {
    order.push(m[1]!);
    blocks.set(m[1]!, m[2]!);
  }
  return { order, blocks };
}

/** The environment of a fresh terminal: none of npm's, vitest's or pacs-triage's own variables. */
function terminalEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|INIT_CWD$|VITEST|PACS_TRIAGE_|NODE_OPTIONS$|NODE_ENV$|TEST$)/i.test(k)));
}

interface ShellRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a script to its end with bash in the repository root. */
function bash(script: string, timeoutMs = 120_000): Promise<ShellRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -eo pipefail\n${script}`], { cwd: ROOT, env: terminalEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const modeOf = (file: string): string => (statSync(file).mode & 0o777).toString(8);

const ready = [requireOrthanc(), requireCommand('curl', 'install the Debian package `curl` (the README uploads the study with it)')].every(Boolean);

describe.skipIf(!ready)('the first hour (README), step by step', () => {
  const { order, blocks } = readmeSteps();
  const block = (step: Step): string => {
    const text = blocks.get(step);
    if (text === undefined) throw new Error(`README.md has no <!-- first-hour: ${step} --> block`);
    return text;
  };
  /** A step of the second terminal: the variables loaded first, as the README does once there. */
  const inSecondTerminal = (step: Step): Promise<ShellRun> => bash(`${block('env')}\n${block(step)}`);

  let sandbox: GroupRun | undefined;
  let serve: GroupRun | undefined;
  let vars: Record<string, string> = {};
  let printed: { token: string; page: string } | undefined;
  let upload: { ParentStudy: string; Status: string } | undefined;

  afterAll(async () => {
    await serve?.stop('SIGTERM');
    await sandbox?.stop('SIGTERM');
  }, 90_000);

  it('the README has every step, in order', () => {
    expect(order).toEqual([...STEPS]);
  });

  it('npm run sandbox: prints the token, the page and the next commands, and writes .sandbox/ for this user only', async () => {
    sandbox = spawnGroup(block('sandbox'), { cwd: ROOT, env: terminalEnv() });
    await sandbox.waitForOutput(/Ctrl-C to stop\./, 120_000);
    const out = sandbox.stdout();
    const token = out.match(/^ {2}API token +(\S+)$/m)?.[1];
    const page = out.match(/^ {2}page +(http:\/\/127\.0\.0\.1:\d+\/)/m)?.[1];
    expect(token).toMatch(/^[0-9a-f]{48}$/);
    expect(page).toBeDefined();
    printed = { token: token!, page: page! };
    // What it tells the user to type next is what the README says (and so what this test runs).
    const next = out.slice(out.indexOf('Next (README'));
    for (const step of ['env', 'doctor', 'serve', 'upload'] as const) expect(next).toContain(`  ${block(step)}\n`);
    // Orthanc's reach, said truthfully for where it runs.
    expect(out).toMatch(/listens on (port \d+ of EVERY network interface|every interface, but this network namespace has\nonly loopback)/);

    const envFile = path.join(ROOT, '.sandbox', 'env');
    const configFile = path.join(ROOT, '.sandbox', 'pacs-triage.yaml');
    expect([modeOf(envFile), modeOf(configFile)]).toEqual(['600', '600']);
    const loaded = await bash(`${block('env')}\nenv -0`);
    expect(loaded.code).toBe(0);
    vars = Object.fromEntries(loaded.stdout.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    expect(vars).toMatchObject({ PACS_TRIAGE_CONFIG: configFile, API_TOKEN: printed.token, API_URL: printed.page.replace(/\/$/, '') });
    expect(vars['ORTHANC_AUTH']).toMatch(/^triage:.+/);
    expect(vars['FHIR_URL']).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/fhir\/R4$/);
  }, 150_000);

  it('doctor: every check ok, exit 0', async () => {
    const run = await inSecondTerminal('doctor');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const checks = run.stdout.split('\n').filter((l) => /^(ok|warn|FAIL) /.test(l));
    expect(checks.length).toBeGreaterThanOrEqual(10);
    expect(checks.filter((l) => !l.startsWith('ok '))).toEqual([]);
    for (const name of ['model', 'Orthanc user metadata', 'pacs may store (STOW-RS)', 'FHIR transaction']) expect(run.stdout).toMatch(new RegExp(`^ok +${name.replace(/[()]/g, '\\$&')} `, 'm'));
  }, 120_000);

  it('serve starts, and the page asks for the token the sandbox printed', async () => {
    serve = spawnGroup(block('serve'), { cwd: ROOT, env: terminalEnv() });
    const apiUrl = vars['API_URL']!;
    await serve.waitForOutput(/"event":"api\.listening"/, 120_000);
    const page = await fetch(printed!.page);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('API token');
    expect((await fetch(`${apiUrl}/api/worklist`)).status).toBe(401);
    const withToken = await fetch(`${apiUrl}/api/worklist`, { headers: { authorization: `Bearer ${printed!.token}` } });
    expect(withToken.status).toBe(200);
    expect(await withToken.json()).toMatchObject({ total: 0 });
  }, 150_000);

  it('one command uploads the demo study; the worklist shows it triaged', async () => {
    const run = await inSecondTerminal('upload');
    expect(run.code, run.stderr).toBe(0);
    upload = JSON.parse(run.stdout) as { ParentStudy: string; Status: string };
    expect(upload.Status).toBe('Success');

    const studyUid = String(readPart10(readFileSync(path.join(ROOT, 'test/fixtures/demo/dicom/demo01.dcm')))['StudyInstanceUID']);
    type Worklist = { total: number; items: { studyInstanceUID: string; state: string; priority?: string; findings: { code: string; positive: boolean }[] }[] };
    let worklist: Worklist | undefined;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const step = await inSecondTerminal('worklist');
      expect(step.code, step.stderr).toBe(0);
      worklist = JSON.parse(step.stdout) as Worklist;
      if (worklist.items[0]?.state === 'done') break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(worklist?.total).toBe(1);
    expect(worklist?.items[0]).toMatchObject({ studyInstanceUID: studyUid, state: 'done', priority: 'stat' });
    expect(worklist?.items[0]?.findings).toContainEqual(expect.objectContaining({ code: 'pneumothorax', positive: true }));

    // `npx pacs-triage jobs` finds the job store through PACS_TRIAGE_CONFIG alone (no --config).
    const jobs = await inSecondTerminal('jobs');
    expect(jobs.code, jobs.stderr).toBe(0);
    expect(jobs.stdout).toMatch(new RegExp(`^done +live +${studyUid.replace(/\./g, '\\.')} +1 *$`, 'm'));
    expect(jobs.stdout).toContain('1 job');
  }, 150_000);

  it('the SR is in the study in Orthanc (Explorer is on), and the RiskAssessment on the FHIR server names it', async () => {
    const auth = `Basic ${Buffer.from(vars['ORTHANC_AUTH']!).toString('base64')}`;
    expect((await fetch(`${vars['ORTHANC_URL']}/app/explorer.html`, { headers: { authorization: auth } })).status).toBe(200);

    const sr = await inSecondTerminal('sr');
    expect(sr.code, sr.stderr).toBe(0);
    const series = JSON.parse(sr.stdout) as { ParentStudy: string; Instances: string[]; MainDicomTags: Record<string, string> }[];
    expect(series).toHaveLength(1);
    expect(series[0]).toMatchObject({ ParentStudy: upload!.ParentStudy, MainDicomTags: { Modality: 'SR', SeriesDescription: 'AI triage results - not for diagnostic use' } });
    const instance = (await (await fetch(`${vars['ORTHANC_URL']}/instances/${series[0]!.Instances[0]}`, { headers: { authorization: auth } })).json()) as { MainDicomTags: { SOPInstanceUID: string } };

    const risk = await inSecondTerminal('risk');
    expect(risk.code, risk.stderr).toBe(0);
    const bundle = JSON.parse(risk.stdout) as { entry?: { resource: { resourceType: string; subject: { reference: string }; identifier: { system: string; value: string }[]; prediction: { probabilityDecimal: number }[] } }[] };
    const assessments = (bundle.entry ?? []).map((e) => e.resource).filter((r) => r.resourceType === 'RiskAssessment');
    expect(assessments).toHaveLength(1);
    expect(assessments[0]!.subject.reference).toBe('Patient/pat-demo01');
    expect(assessments[0]!.identifier).toContainEqual(expect.objectContaining({ system: 'urn:dicom:uid', value: `urn:oid:${instance.MainDicomTags.SOPInstanceUID}` }));
    expect(assessments[0]!.prediction.length).toBeGreaterThan(0);
    for (const p of assessments[0]!.prediction) expect(p.probabilityDecimal).toBeGreaterThanOrEqual(0);
  }, 60_000);

  it('the other five demo studies in one loop: demo01 is already stored and not triaged again, the rest reach the worklist ranked', async () => {
    const run = await inSecondTerminal('more');
    expect(run.code, run.stderr).toBe(0);
    const statuses = [...run.stdout.matchAll(/"Status" : "(\w+)"/g)].map((m) => m[1]);
    expect(statuses.sort()).toEqual(['AlreadyStored', 'Success', 'Success', 'Success', 'Success', 'Success']);

    type Worklist = { total: number; items: { state: string; priority?: string }[] };
    let worklist: Worklist | undefined;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      worklist = JSON.parse((await inSecondTerminal('worklist')).stdout) as Worklist;
      if (worklist.total === 6 && worklist.items.every((i) => i.state === 'done')) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(worklist?.items.map((i) => i.state)).toEqual(Array(6).fill('done'));
    const rank = { stat: 0, asap: 1, urgent: 2, routine: 3 } as Record<string, number>;
    const ranks = worklist!.items.map((i) => rank[i.priority ?? ''] ?? 9);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));

    const risk = JSON.parse((await inSecondTerminal('risk')).stdout) as { entry?: { resource: { resourceType: string } }[] };
    expect((risk.entry ?? []).filter((e) => e.resource.resourceType === 'RiskAssessment')).toHaveLength(1);
  }, 150_000);

  it('Ctrl-C ends serve and the sandbox, which takes its Orthanc and .sandbox/ with it', async () => {
    const timed = async (run: GroupRun): Promise<number> => {
      const t0 = Date.now();
      expect(await run.stop('SIGINT')).toBe(true);
      return Date.now() - t0;
    };
    // Orthanc stops gracefully in ~3 s; the sandbox once sat out a forgotten 20 s timer after it.
    expect(await timed(serve!)).toBeLessThan(15_000);
    expect(await timed(sandbox!)).toBeLessThan(15_000);
    expect(sandbox!.stdout()).toContain('stopping...');
    expect(existsSync(path.join(ROOT, '.sandbox'))).toBe(false);
  }, 90_000);
});
