/** The commands that run the pipeline against the servers: serve, run-once, process, backfill, retract. */
import { TriageError } from '../domain/errors.ts';
import { backfill, processOne, retractOne, runOnce } from '../compose/one-shot.ts';
import { serve } from '../compose/serve.ts';
import type { JobOutcome } from '../pipeline/worker.ts';
import { configFor, loggerFor, studyUidArgument, type Command } from './command.ts';

export function summarise(o: JobOutcome): object {
  switch (o.status) {
    case 'done':
      return {
        status: o.status,
        study: o.result.studyInstanceUID,
        priority: o.result.priority,
        unchanged: o.unchanged,
        sr: o.result.srSopInstanceUID,
        ...(o.result.warnings && o.result.warnings.length > 0 ? { warnings: o.result.warnings.map((w) => w.cause) } : {}),
      };
    case 'skipped':
      return { status: o.status, reason: o.reason };
    case 'failed':
      return { status: o.status, code: o.code, reason: o.reason };
  }
}

/** One line per warning cause among the done studies: how many it touched and its fix. */
export function warningLines(outcomes: readonly JobOutcome[]): string[] {
  const byCause = new Map<string, { fix: string; message: string; studies: number }>();
  for (const o of outcomes) {
    if (o.status !== 'done') continue;
    for (const w of o.result.warnings ?? []) {
      const known = byCause.get(w.cause) ?? { fix: w.fix, message: w.message, studies: 0 };
      known.studies++;
      byCause.set(w.cause, known);
    }
  }
  return [...byCause].map(([cause, w]) => `warning (${w.studies} stud${w.studies === 1 ? 'y' : 'ies'}, ${cause}): ${w.message}; fix: ${w.fix}`);
}

export const serveCommand: Command = {
  name: 'serve',
  synopsis: 'serve',
  description: 'Watch the PACS (the ingest modes), process studies, serve the API and the worklist page, until SIGTERM.',
  options: {},
  async run(values) {
    await serve(configFor(values), loggerFor(values, false));
    return 0;
  },
};

export const runOnceCommand: Command = {
  name: 'run-once',
  synopsis: 'run-once [--json]',
  description: 'One ingest pass and every due job, then exit (1 when a study failed).',
  options: { json: { type: 'boolean', default: false } },
  async run(values, _positionals, out) {
    const { enqueued, outcomes } = await runOnce(configFor(values), loggerFor(values));
    const count = (status: string): number => outcomes.filter((o) => o.status === status).length;
    const summary = { enqueued, done: count('done'), skipped: count('skipped'), failed: count('failed') };
    out.stdout(
      values['json']
        ? JSON.stringify({ ...summary, outcomes: outcomes.map(summarise) })
        : [`enqueued ${enqueued}; done ${summary.done}, skipped ${summary.skipped}, failed ${summary.failed}`, ...warningLines(outcomes)].join('\n'),
    );
    return summary.failed > 0 ? 1 : 0;
  },
};

export const processCommand: Command = {
  name: 'process',
  synopsis: 'process <StudyInstanceUID> [--json]',
  description: 'Process one study now, whatever the ingest saw.',
  options: { json: { type: 'boolean', default: false } },
  async run(values, positionals, out) {
    const uid = studyUidArgument(positionals, 'process');
    const outcome = await processOne(configFor(values), uid, loggerFor(values));
    out.stdout(values['json'] ? JSON.stringify(summarise(outcome)) : JSON.stringify(summarise(outcome), null, 2));
    return outcome.status === 'failed' ? 1 : 0;
  },
};

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

export const backfillCommand: Command = {
  name: 'backfill',
  synopsis: 'backfill --since DATE [--until DATE] [--json]',
  description: 'Every study of a StudyDate range (QIDO-RS), processed now, with progress on stderr. Dates as 2026-11-28.',
  options: { since: { type: 'string' }, until: { type: 'string' }, json: { type: 'boolean', default: false } },
  async run(values, _positionals, out) {
    const sinceArg = values['since'] as string | undefined;
    const untilArg = values['until'] as string | undefined;
    if (sinceArg === undefined) throw new TriageError('USAGE', 'backfill needs --since DATE');
    const since = dicomDate(sinceArg, '--since');
    const until = untilArg === undefined ? new Date().toISOString().slice(0, 10).replace(/-/g, '') : dicomDate(untilArg, '--until');
    if (until < since) throw new TriageError('USAGE', '--until is before --since');
    const progress = values['json'] ? () => undefined : progressReporter((s) => process.stderr.write(s), process.stderr.isTTY === true);
    const { found, outcomes } = await backfill(configFor(values), { since, until }, loggerFor(values), progress);
    const count = (status: string): number => outcomes.filter((o) => o.status === status).length;
    const waiting = outcomes.filter((o) => o.status === 'failed' && o.retryAt !== undefined).length;
    const summary = {
      found,
      done: count('done'),
      unchanged: outcomes.filter((o) => o.status === 'done' && o.unchanged).length,
      skipped: count('skipped'),
      failed: count('failed') - waiting,
      waiting,
    };
    out.stdout(
      values['json']
        ? JSON.stringify({ since, until, ...summary, outcomes: outcomes.map(summarise) })
        : `backfill ${since}–${until}: ${found} studies found; done ${summary.done} (${summary.unchanged} unchanged), skipped ${summary.skipped}, failed ${summary.failed}, waiting to retry ${summary.waiting}`,
    );
    return summary.failed + summary.waiting > 0 ? 1 : 0;
  },
};

export const retractCommand: Command = {
  name: 'retract',
  synopsis: 'retract <StudyInstanceUID> --reason TEXT [--by NAME] [--json]',
  description: `Mark the study's result wrong: RiskAssessment entered-in-error, an IOCM rejection note in the PACS.
It stays pending (for serve) while an upstream is away.`,
  options: { reason: { type: 'string' }, by: { type: 'string' }, json: { type: 'boolean', default: false } },
  async run(values, positionals, out) {
    const uid = studyUidArgument(positionals, 'retract');
    const reason = values['reason'] as string | undefined;
    const by = values['by'] as string | undefined;
    if (reason === undefined || reason.trim() === '') throw new TriageError('USAGE', 'retract needs --reason "why the result is wrong"');
    const { retraction, created, outcome } = await retractOne(configFor(values), uid, { reason, ...(by ? { by } : {}) }, loggerFor(values));
    const summary = {
      study: uid,
      created,
      state: retraction.state,
      ...(retraction.errorCode ? { code: retraction.errorCode, reason: retraction.lastError } : {}),
      written: retraction.written,
      notes: retraction.notes,
    };
    out.stdout(
      values['json']
        ? JSON.stringify(summary)
        : `${uid}: ${created ? '' : 'already retracted; '}${retraction.state}${retraction.errorCode ? ` (${retraction.errorCode}: ${retraction.lastError ?? ''})` : ''}`,
    );
    return outcome?.status === 'failed' && outcome.retryAt === undefined ? 1 : 0;
  },
};
