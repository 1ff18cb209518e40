/** The command line: finds the command, parses its arguments, runs it, and turns any error into a message and an exit code. */
import { asTriageError, type TriageError } from './domain/errors.ts';
import { analyzeCommand } from './commands/analyze.ts';
import { doctorCommand, evaluateCommand, jobsCommand } from './commands/admin.ts';
import { modelCommand } from './commands/model.ts';
import { COMMON_HELP, helpOf, parse, type Command, type Out } from './commands/command.ts';
import { backfillCommand, processCommand, retractCommand, runOnceCommand, serveCommand } from './commands/service.ts';

export { progressReporter } from './commands/service.ts';

const COMMANDS: readonly Command[] = [analyzeCommand, serveCommand, runOnceCommand, processCommand, backfillCommand, jobsCommand, retractCommand, doctorCommand, modelCommand, evaluateCommand];

const USAGE = `pacs-triage — multimodal (image + EHR text) triage for a PACS and a FHIR server

Usage: pacs-triage <command> [options]      (pacs-triage <command> --help for its options)

Commands:
${COMMANDS.map((c) => `  ${c.synopsis}\n${summaryOf(c).map((l) => `                      ${l}`).join('\n')}`).join('\n')}

${COMMON_HELP}

Exit codes: 0 success, 1 some input failed, 2 usage or configuration error.`;

/** The description without its option lines (those are in the command's own --help). */
function summaryOf(c: Command): string[] {
  const lines = c.description.split('\n');
  const options = lines.findIndex((l) => l.startsWith('  '));
  return options < 0 ? lines : lines.slice(0, options);
}

const defaultOut: Out = { stdout: (s) => process.stdout.write(s + '\n'), stderr: (s) => process.stderr.write(s + '\n') };

/** Runs one command; returns the exit code. Bad input gives a message, never a stack trace. */
export async function main(argv: string[], out: Out = defaultOut): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    out.stdout(USAGE);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    out.stderr(`pacs-triage: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    const { values, positionals } = parse(command, rest);
    if (values['help']) {
      out.stdout(helpOf(command));
      return 0;
    }
    return await command.run(values, positionals, out);
  } catch (err) {
    const e = asTriageError(err, name);
    out.stderr(`pacs-triage ${name}: ${e.code}: ${e.message}`);
    if (e.code === 'INTERNAL' && process.env['PACS_TRIAGE_DEBUG'] === '1' && err instanceof Error) out.stderr(err.stack ?? '');
    return usageLike(e) ? 2 : 1;
  }
}

function usageLike(e: TriageError): boolean {
  return e.code === 'USAGE' || e.code === 'CONFIG_INVALID' || e.code === 'MANIFEST_INVALID';
}
