/**
 * What a command is: its name, its help, its options (node:util parseArgs), and `run`, which
 * parses nothing itself — it gets the parsed values and calls the composition root.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Logger } from 'pino';
import { TriageError } from '../domain/errors.ts';
import { isValidUid } from '../domain/uids.ts';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createLogger } from '../observability/logging.ts';

export type Out = { stdout: (s: string) => void; stderr: (s: string) => void };

export const COMMON_OPTIONS = {
  config: { type: 'string' },
  model: { type: 'string' },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export const COMMON_HELP = `Common options:
  --config FILE     YAML or JSON configuration (also PACS_TRIAGE_CONFIG)
  --model DIR       model folder with manifest.json (default models/cxr-triage)
  --verbose         log at info level (default: warnings only for one-shot commands)
  -h, --help        this help`;

export type Values = { [key: string]: string | boolean | undefined } & { config?: string; model?: string; verbose?: boolean };

export interface Command {
  name: string;
  /** `<name> <arguments>` as the global help lists it. */
  synopsis: string;
  /** What it does, a few lines. */
  description: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Values, positionals: string[], out: Out): Promise<number>;
}

/** The command's own help: synopsis, description, its options and the common ones. */
export function helpOf(command: Command): string {
  return `Usage: pacs-triage ${command.synopsis}\n\n${command.description}\n\n${COMMON_HELP}`;
}

export function parse(command: Command, args: string[]): { values: Values; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options: { ...COMMON_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    return { values: parsed.values as Values, positionals: parsed.positionals };
  } catch (err) {
    throw new TriageError('USAGE', `${(err as Error).message} (pacs-triage ${command.name} --help)`);
  }
}

export function configFor(values: Values): Config {
  return loadConfig({
    ...(values.config === undefined ? {} : { file: values.config }),
    ...(values.model === undefined ? {} : { overrides: { model: { dir: values.model } } }),
  });
}

/** One-shot commands log warnings only unless --verbose. */
export function loggerFor(values: Values, quiet = true): Logger {
  return createLogger(values.verbose ? (quiet ? 'info' : 'debug') : quiet ? 'warn' : 'info');
}

/** A StudyInstanceUID argument: a DICOM UID, or a usage error (nothing else may reach the store or a path). */
export function studyUidArgument(positionals: string[], command: string): string {
  const uid = onePositional(positionals, command, 'StudyInstanceUID');
  if (!isValidUid(uid)) throw new TriageError('USAGE', `${command}: "${String(uid).slice(0, 80)}" is not a DICOM UID (digits and dots, at most 64 characters)`);
  return uid;
}

/** Exactly one positional, or a usage error naming what is wanted. */
export function onePositional(positionals: string[], command: string, what: string): string {
  const [value] = positionals;
  if (value === undefined || positionals.length > 1) throw new TriageError('USAGE', `${command} takes exactly one ${what}`);
  return value;
}
