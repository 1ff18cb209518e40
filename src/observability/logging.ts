import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Structured logs on stderr (stdout belongs to command output such as --json). Events are named
 * (`event` field) and carry ids (job, study UID) — never patient names, IDs or report text.
 */
export function createLogger(level: string = process.env['PACS_TRIAGE_LOG_LEVEL'] ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { service: 'pacs-triage' },
      redact: { paths: ['*.PatientName', '*.PatientID', '*.text', '*.password', '*.token', '*.authorization'], censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
