/**
 * What `doctor` reports: checks that are `ok`, `warn` (works, with a limit worth knowing) or
 * `fail` (something will break), each with its detail and, when there is one, the fix.
 */
import { asTriageError, type TriageError } from '../../domain/errors.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to change, where (a configuration key, a mapping file, the server's own settings). */
  fix?: string;
}

export interface DoctorReport {
  /** No check failed (warnings allowed): `doctor` exits 0. */
  ok: boolean;
  /** What this run read, absolute; `config` null when no file was given (defaults and environment). */
  paths: { config: string | null; model: string; mappings: string };
  checks: Check[];
}

export const ok = (name: string, detail: string): Check => ({ name, status: 'ok', detail });
export const warn = (name: string, detail: string, fix?: string): Check => ({ name, status: 'warn', detail, ...(fix ? { fix } : {}) });
export const fail = (name: string, detail: string, fix?: string): Check => ({ name, status: 'fail', detail, ...(fix ? { fix } : {}) });

/**
 * Runs one check; a thrown error becomes its failure, with its code and the fix `fixFor` names
 * (the generic upstream fix when it names none).
 */
export async function attempt(name: string, run: () => Promise<Check>, fixFor: (e: TriageError) => string | undefined = () => undefined): Promise<Check> {
  try {
    return await run();
  } catch (err) {
    const e = asTriageError(err, name);
    return fail(name, `${e.code}: ${e.message}`, fixFor(e));
  }
}

/**
 * The fix for a failed call to an upstream, from what failed: refused credentials, a refused
 * user, nothing answering, a timeout, a certificate. `key` is its configuration key (pacs, fhir).
 */
export function upstreamFix(e: TriageError, key: 'pacs' | 'fhir'): string | undefined {
  if (e.status === 401) return `the server refused the credentials: check ${key}.auth`;
  if (e.status === 403) return `the user in ${key}.auth is not allowed to do this: grant it on the server`;
  if (e.code === 'UPSTREAM_UNAVAILABLE' && e.status === undefined) return `nothing answered: check ${key}.baseUrl, that the server runs, and that it is reachable from here`;
  if (e.code === 'UPSTREAM_TIMEOUT') return `no answer within ${key}.timeoutMs: check the network, or raise ${key}.timeoutMs`;
  if (e.code === 'TLS_FAILED') return `check ${key}.tls (the CA, the client certificate and key) and the host name in ${key}.baseUrl against the server's certificate`;
  return undefined;
}
