/** The commands that look at things: jobs (list, retry), doctor, evaluate. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { TriageError } from '../domain/errors.ts';
import type { JobState } from '../domain/records.ts';
import { PACKAGE_ROOT } from '../config/load.ts';
import { TriageModel } from '../adapters/model/index.ts';
import { evaluate } from '../evaluate/evaluate.ts';
import { formatReport } from '../evaluate/report-format.ts';
import { writeReliabilityPlots } from '../evaluate/reliability-plot.ts';
import { doctor } from '../compose/doctor.ts';
import { openStore } from '../compose/runtime.ts';
import { configFor, loggerFor, type Command } from './command.ts';

const JOB_STATES = ['queued', 'running', 'done', 'failed', 'skipped'];

export const jobsCommand: Command = {
  name: 'jobs',
  synopsis: 'jobs [list] [--state S] [--json]  |  jobs retry <StudyInstanceUID>',
  description: `list: the job list from the store (failed ones with their reasons), newest first.
retry: queue a failed (or finished) study again, attempts reset.`,
  options: { state: { type: 'string' }, json: { type: 'boolean', default: false } },
  async run(values, positionals, out) {
    const [sub = 'list', ...rest] = positionals;
    const state = values['state'] as string | undefined;
    if (sub !== 'list' && sub !== 'retry') throw new TriageError('USAGE', `jobs: unknown subcommand "${sub}" (list, retry)`);
    if (state !== undefined && !JOB_STATES.includes(state)) throw new TriageError('USAGE', `--state must be one of ${JOB_STATES.join(', ')}`);
    const store = await openStore(configFor(values));
    try {
      if (sub === 'retry') {
        const uid = rest[0];
        if (uid === undefined || rest.length > 1) throw new TriageError('USAGE', 'jobs retry takes exactly one StudyInstanceUID');
        const job = await store.requeue(uid);
        if (!job) throw new TriageError('NOT_FOUND', `no job for study ${uid} in the store`);
        out.stdout(values['json'] ? JSON.stringify({ job }) : `${uid}: ${job.state}`);
        return 0;
      }
      const jobs = await store.jobs(state === undefined ? {} : { state: state as JobState });
      if (values['json']) {
        out.stdout(JSON.stringify({ jobs }));
      } else {
        out.stdout(`${'state'.padEnd(8)} ${'class'.padEnd(8)} ${'study'.padEnd(64)} ${'tries'.padStart(5)}  reason`);
        for (const j of jobs) {
          out.stdout(
            `${j.state.padEnd(8)} ${j.class.padEnd(8)} ${j.studyInstanceUID.padEnd(64)} ${String(j.attempts).padStart(5)}  ${j.reason ? `${j.errorCode ? `${j.errorCode}: ` : ''}${j.reason}` : ''}`,
          );
        }
        out.stdout(`${jobs.length} job${jobs.length === 1 ? '' : 's'}`);
      }
      return 0;
    } finally {
      await store.close();
    }
  },
};

export const doctorCommand: Command = {
  name: 'doctor',
  synopsis: 'doctor [--json]',
  description: `Check what will break before the first study: the model, the mappings against it, the PACS (REST and
DICOMweb roots, STOW-RS, Orthanc's user metadata) and the FHIR server (transactions, conditional create, the
search parameters the mappings use). Nothing is stored or changed. Each check is ok, warn or FAIL, with
the fix; exit 1 when one fails. --json: { ok, paths, checks: [{ name, status, detail, fix? }] }.`,
  options: { json: { type: 'boolean', default: false } },
  async run(values, _positionals, out) {
    const configFile = values.config ?? process.env['PACS_TRIAGE_CONFIG'];
    const report = await doctor(configFor(values), loggerFor(values), { configFile });
    if (values['json']) {
      out.stdout(JSON.stringify(report));
    } else {
      out.stdout(`config    ${report.paths.config ?? '(no file: defaults and PACS_TRIAGE_* environment)'}`);
      out.stdout(`model     ${report.paths.model}`);
      out.stdout(`mappings  ${report.paths.mappings}`);
      for (const c of report.checks) {
        out.stdout(`${STATUS_LABEL[c.status]} ${c.name.padEnd(30)} ${c.detail}`);
        if (c.fix) out.stdout(`${' '.repeat(36)}fix: ${c.fix}`);
      }
    }
    return report.ok ? 0 : 1;
  },
};

const STATUS_LABEL = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

export const evaluateCommand: Command = {
  name: 'evaluate',
  synopsis: 'evaluate [--data DIR] [--json] [--plots DIR]',
  description: `Run an evaluation set (default: the model's held-out set) through the production path, with the two
ablations (text masked, image blanked; a model without text: the image alone). Per variant: AUROC with its
95% CI, precision, recall, F1 at the manifest's thresholds, Brier score, expected calibration error and a
reliability table. A broken case is named with its id and file. The set's format: models/README.md.
  --data DIR      the evaluation set: DIR/index.json (format pacs-triage-evalset/1) and its files
  --json          the report as JSON
  --plots DIR     a reliability diagram per variant, DIR/reliability-<variant>.png`,
  options: { data: { type: 'string' }, json: { type: 'boolean', default: false }, plots: { type: 'string' } },
  async run(values, _positionals, out) {
    const config = configFor(values);
    const model = await TriageModel.load(config.model, loggerFor(values));
    try {
      const given = values['data'] as string | undefined;
      const data = given ?? (existsSync('models/testset') ? 'models/testset' : path.join(PACKAGE_ROOT, 'models/testset'));
      const report = await evaluate(model, data);
      out.stdout(values['json'] ? JSON.stringify(report) : formatReport(report));
      const plots = values['plots'] as string | undefined;
      if (plots !== undefined) {
        const files = await writeReliabilityPlots(report, plots);
        // On stderr with --json, so that stdout stays one JSON document.
        (values['json'] ? out.stderr : out.stdout)(`reliability plots: ${files.join(', ')}`);
      }
      return 0;
    } finally {
      await model.close();
    }
  },
};
