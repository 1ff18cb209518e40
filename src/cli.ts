import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TriageError, asTriageError } from './domain/errors.ts';
import { PACKAGE_ROOT, loadConfig } from './config/load.ts';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from './config/schema.ts';
import { createLogger, type Logger } from './logging.ts';
import { TriageModel } from './adapters/model/index.ts';
import { evaluate, formatReport } from './evaluate/evaluate.ts';
import { analyze, formatWorklist } from './commands/analyze.ts';
import { doctor } from './commands/doctor.ts';
import { backfill, processOne, retractOne, runOnce, serve } from './commands/service.ts';
import { openSqliteStore } from './state/sqlite/index.ts';
import type { JobState } from './domain/records.ts';

const USAGE = `pacs-triage — multimodal (image + EHR text) triage for a PACS and a FHIR server

Usage: pacs-triage <command> [options]

Commands:
  analyze <files|dirs…> [--fhir bundle.json] [--out DIR] [--json] [--no-select]
                      no servers: DICOM files (+ a FHIR Bundle for the clinical text) in; SR files
                      and RiskAssessment JSON into DIR (nothing written without --out); prints a
                      ranked worklist
  serve               watch the PACS (Orthanc /changes), process studies, serve the API
  run-once            one ingest pass and every due job, then exit
  process <StudyInstanceUID>
                      process one study now
  backfill --since DATE [--until DATE] [--json]
                      every study of a StudyDate range (QIDO-RS), processed now, with progress
  jobs [list] [--state S] [--json]
                      the job list from the store (failed ones with their reasons)
  jobs retry <StudyInstanceUID>
  retract <StudyInstanceUID> --reason TEXT [--by NAME] [--json]
                      mark the study's result wrong: RiskAssessment entered-in-error, an IOCM
                      rejection note in the PACS; stays pending (for serve) while an upstream is away
                      queue a failed (or finished) study again
  doctor              check the model, the mappings, the PACS and the FHIR server
  evaluate [--data DIR] [--json]
                      run an evaluation set (default: the model's held-out set) through the
                      production path, with the two ablations

Common options:
  --config FILE     YAML or JSON configuration (also PACS_TRIAGE_CONFIG)
  --model DIR       model folder with manifest.json (default models/cxr-triage)
  --verbose         log at info level (default: warnings only for one-shot commands)
  -h, --help        this help

Exit codes: 0 success, 1 some input failed, 2 usage or configuration error.`;

const common = {
  config: { type: 'string' },
  model: { type: 'string' },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

type Out = { stdout: (s: string) => void; stderr: (s: string) => void };
const defaultOut: Out = { stdout: (s) => process.stdout.write(s + '\n'), stderr: (s) => process.stderr.write(s + '\n') };

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...common, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new TriageError('USAGE', (err as Error).message);
  }
}

function configFor(values: { config?: string | undefined; model?: string | undefined }): Config {
  return loadConfig({
    ...(values.config === undefined ? {} : { file: values.config }),
    ...(values.model === undefined ? {} : { overrides: { model: { dir: values.model } } }),
  });
}

async function loadModel(config: Config, log: Logger): Promise<TriageModel> {
  return TriageModel.load(config.model, log);
}

async function cmdEvaluate(args: string[], out: Out): Promise<number> {
  const { values } = parse(args, { data: { type: 'string' }, json: { type: 'boolean', default: false } });
  const config = configFor(values);
  const log = createLogger(values.verbose ? 'info' : 'warn');
  const model = await loadModel(config, log);
  try {
    const data = values.data ?? (existsSync('models/testset') ? 'models/testset' : path.join(PACKAGE_ROOT, 'models/testset'));
    const report = await evaluate(model, data);
    out.stdout(values.json ? JSON.stringify(report) : formatReport(report));
    return 0;
  } finally {
    await model.close();
  }
}

async function cmdAnalyze(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parse(args, {
    fhir: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean', default: false },
    'no-select': { type: 'boolean', default: false },
  });
  const config = configFor(values);
  const log = createLogger(values.verbose ? 'info' : 'warn');
  const results = await analyze(
    config,
    {
      inputs: positionals,
      select: !values['no-select'],
      ...(values.fhir === undefined ? {} : { fhirBundle: values.fhir }),
      ...(values.out === undefined ? {} : { outDir: values.out }),
    },
    log,
  );
  if (values.json) {
    out.stdout(JSON.stringify({ studies: results }));
  } else {
    out.stdout(formatWorklist(results));
    if (values.out !== undefined) out.stdout(`\nSR files and RiskAssessment JSON written under ${values.out}/<StudyInstanceUID>/`);
  }
  for (const r of results) if (r.status === 'failed') out.stderr(`pacs-triage analyze: ${r.file ?? r.studyInstanceUID}: ${r.reason ?? 'failed'}`);
  return results.some((r) => r.status === 'failed') ? 1 : 0;
}

async function cmdRunOnce(args: string[], out: Out): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean', default: false } });
  const config = configFor(values);
  const log = createLogger(values.verbose ? 'info' : 'warn');
  const { enqueued, outcomes } = await runOnce(config, log);
  const count = (status: string): number => outcomes.filter((o) => o.status === status).length;
  const summary = { enqueued, done: count('done'), skipped: count('skipped'), failed: count('failed') };
  out.stdout(values.json ? JSON.stringify({ ...summary, outcomes: outcomes.map(summarise) }) : `enqueued ${enqueued}; done ${summary.done}, skipped ${summary.skipped}, failed ${summary.failed}`);
  return summary.failed > 0 ? 1 : 0;
}

function summarise(o: Awaited<ReturnType<typeof processOne>>): object {
  switch (o.status) {
    case 'done':
      return { status: o.status, study: o.result.studyInstanceUID, priority: o.result.priority, unchanged: o.unchanged, sr: o.result.srSopInstanceUID };
    case 'skipped':
      return { status: o.status, reason: o.reason };
    case 'failed':
      return { status: o.status, code: o.code, reason: o.reason };
  }
}

async function cmdProcess(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean', default: false } });
  const uid = positionals[0];
  if (uid === undefined || positionals.length > 1) throw new TriageError('USAGE', 'process takes exactly one StudyInstanceUID');
  const config = configFor(values);
  const outcome = await processOne(config, uid, createLogger(values.verbose ? 'info' : 'warn'));
  out.stdout(values.json ? JSON.stringify(summarise(outcome)) : JSON.stringify(summarise(outcome), null, 2));
  return outcome.status === 'failed' ? 1 : 0;
}

const JOB_STATES = ['queued', 'running', 'done', 'failed', 'skipped'];

/** `jobs list [--state S] [--json]` (the default) and `jobs retry <StudyInstanceUID>`. */
async function cmdJobs(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parse(args, { state: { type: 'string' }, json: { type: 'boolean', default: false } });
  const [sub = 'list', ...rest] = positionals;
  if (sub !== 'list' && sub !== 'retry') throw new TriageError('USAGE', `jobs: unknown subcommand "${sub}" (list, retry)`);
  if (values.state !== undefined && !JOB_STATES.includes(values.state)) throw new TriageError('USAGE', `--state must be one of ${JOB_STATES.join(', ')}`);
  const store = openSqliteStore(configFor(values).store.path);
  try {
    if (sub === 'retry') {
      const uid = rest[0];
      if (uid === undefined || rest.length > 1) throw new TriageError('USAGE', 'jobs retry takes exactly one StudyInstanceUID');
      const job = await store.requeue(uid);
      if (!job) throw new TriageError('NOT_FOUND', `no job for study ${uid} in the store`);
      out.stdout(values.json ? JSON.stringify({ job }) : `${uid}: ${job.state}`);
      return 0;
    }
    const jobs = await store.jobs(values.state === undefined ? {} : { state: values.state as JobState });
    if (values.json) {
      out.stdout(JSON.stringify({ jobs }));
    } else {
      out.stdout(`${'state'.padEnd(8)} ${'study'.padEnd(64)} ${'tries'.padStart(5)}  reason`);
      for (const j of jobs) {
        out.stdout(`${j.state.padEnd(8)} ${j.studyInstanceUID.padEnd(64)} ${String(j.attempts).padStart(5)}  ${j.reason ? `${j.errorCode ? `${j.errorCode}: ` : ''}${j.reason}` : ''}`);
      }
      out.stdout(`${jobs.length} job${jobs.length === 1 ? '' : 's'}`);
    }
    return 0;
  } finally {
    await store.close();
  }
}

/** YYYY-MM-DD or YYYYMMDD → YYYYMMDD (DICOM DA); anything else is a usage error. */
function dicomDate(value: string, option: string): string {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(value);
  if (!m || Number.isNaN(Date.parse(`${m[1]}-${m[2]}-${m[3]}`))) throw new TriageError('USAGE', `${option} must be a date like 2026-11-28 (got "${value}")`);
  return `${m[1]}${m[2]}${m[3]}`;
}

/** A progress line on stderr: redrawn in place on a terminal, every 10% otherwise. */
export function progressReporter(write: (s: string) => void, isTty: boolean, now: () => number = () => performance.now()): (done: number, total: number) => void {
  const start = now();
  let lastDecile = -1;
  return (done, total) => {
    const seconds = (now() - start) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? Math.round((total - done) / rate) : undefined;
    const width = 30;
    const filled = total === 0 ? width : Math.round((done / total) * width);
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}  ${rate.toFixed(1)} studies/s  ETA ${eta === undefined ? '?' : `${eta}s`}`;
    if (isTty) {
      write(`\r${line}${done === total ? '\n' : ''}`);
    } else {
      const decile = total === 0 ? 10 : Math.floor((done / total) * 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        write(`${line}\n`);
      }
    }
  };
}

async function cmdBackfill(args: string[], out: Out): Promise<number> {
  const { values } = parse(args, { since: { type: 'string' }, until: { type: 'string' }, json: { type: 'boolean', default: false } });
  if (values.since === undefined) throw new TriageError('USAGE', 'backfill needs --since DATE');
  const since = dicomDate(values.since, '--since');
  const until = values.until === undefined ? new Date().toISOString().slice(0, 10).replace(/-/g, '') : dicomDate(values.until, '--until');
  if (until < since) throw new TriageError('USAGE', '--until is before --since');
  const config = configFor(values);
  const progress = values.json ? () => undefined : progressReporter((s) => process.stderr.write(s), process.stderr.isTTY === true);
  const { found, outcomes } = await backfill(config, { since, until }, createLogger(values.verbose ? 'info' : 'warn'), progress);
  const count = (status: string): number => outcomes.filter((o) => o.status === status).length;
  const waiting = outcomes.filter((o) => o.status === 'failed' && o.retryAt !== undefined).length;
  const summary = { found, done: count('done'), unchanged: outcomes.filter((o) => o.status === 'done' && o.unchanged).length, skipped: count('skipped'), failed: count('failed') - waiting, waiting };
  out.stdout(
    values.json
      ? JSON.stringify({ since, until, ...summary, outcomes: outcomes.map(summarise) })
      : `backfill ${since}–${until}: ${found} studies found; done ${summary.done} (${summary.unchanged} unchanged), skipped ${summary.skipped}, failed ${summary.failed}, waiting to retry ${summary.waiting}`,
  );
  return summary.failed + summary.waiting > 0 ? 1 : 0;
}

async function cmdRetract(args: string[], out: Out): Promise<number> {
  const { values, positionals } = parse(args, { reason: { type: 'string' }, by: { type: 'string' }, json: { type: 'boolean', default: false } });
  const uid = positionals[0];
  if (uid === undefined || positionals.length > 1) throw new TriageError('USAGE', 'retract takes exactly one StudyInstanceUID');
  if (values.reason === undefined || values.reason.trim() === '') throw new TriageError('USAGE', 'retract needs --reason "why the result is wrong"');
  const config = configFor(values);
  const log = createLogger(values.verbose ? 'info' : 'warn');
  const { retraction, created, outcome } = await retractOne(config, uid, { reason: values.reason, ...(values.by ? { by: values.by } : {}) }, log);
  const summary = { study: uid, created, state: retraction.state, ...(retraction.errorCode ? { code: retraction.errorCode, reason: retraction.lastError } : {}), written: retraction.written, notes: retraction.notes };
  out.stdout(values.json ? JSON.stringify(summary) : `${uid}: ${created ? '' : 'already retracted; '}${retraction.state}${retraction.errorCode ? ` (${retraction.errorCode}: ${retraction.lastError ?? ''})` : ''}`);
  return outcome?.status === 'failed' && outcome.retryAt === undefined ? 1 : 0;
}

async function cmdServe(args: string[]): Promise<number> {
  const { values } = parse(args, {});
  const config = configFor(values);
  await serve(config, createLogger(values.verbose ? 'debug' : 'info'));
  return 0;
}

async function cmdDoctor(args: string[], out: Out): Promise<number> {
  const { values } = parse(args, {});
  const config = configFor(values);
  const checks = await doctor(config, createLogger('warn'));
  for (const c of checks) out.stdout(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(26)} ${c.detail}`);
  return checks.every((c) => c.ok) ? 0 : 1;
}

const COMMANDS: Record<string, (args: string[], out: Out) => Promise<number>> = {
  analyze: cmdAnalyze,
  serve: cmdServe,
  'run-once': cmdRunOnce,
  process: cmdProcess,
  jobs: cmdJobs,
  backfill: cmdBackfill,
  doctor: cmdDoctor,
  evaluate: cmdEvaluate,
  retract: cmdRetract,
};

/** Runs one command; returns the exit code. Bad input gives a message, never a stack trace. */
export async function main(argv: string[], out: Out = defaultOut): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    out.stdout(USAGE);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  if (run === undefined) {
    out.stderr(`pacs-triage: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out.stdout(USAGE);
    return 0;
  }
  try {
    return await run(rest, out);
  } catch (err) {
    const e = asTriageError(err, command);
    out.stderr(`pacs-triage ${command}: ${e.code}: ${e.message}`);
    if (e.code === 'INTERNAL' && process.env['PACS_TRIAGE_DEBUG'] === '1' && err instanceof Error) out.stderr(err.stack ?? '');
    return e.code === 'USAGE' || e.code === 'CONFIG_INVALID' || e.code === 'MANIFEST_INVALID' ? 2 : 1;
  }
}
