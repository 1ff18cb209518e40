/**
 * Guards for tests that need external programs. In CI (process.env.CI set) a missing program
 * is an error, never a silent skip; locally the test is skipped with a warning.
 *
 *   describe.skipIf(!requireOrthanc())('needs Orthanc', () => { ... });
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { delimiter, join } from 'node:path';
import { findDicomWebPlugin, findOrthancBinary } from '../../src/sandbox/orthanc.ts';
import { findPostgresBin, postgresRunAs } from './postgres.ts';

function isCi(): boolean {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

const warned = new Set<string>();

function missing(what: string, hint: string): false {
  const message = `${what} is not available: ${hint}`;
  if (isCi()) {
    throw new Error(`${message}. CI is set, so tests that need it fail instead of skipping.`);
  }
  if (!warned.has(message)) {
    warned.add(message);
    console.warn(`[pacs-triage tests] SKIPPING tests: ${message}`);
  }
  return false;
}

/**
 * True when a usable Orthanc (with the DICOMweb plugin unless `dicomWeb: false`) is installed.
 * Throws when it is missing and CI is set; otherwise warns once and returns false.
 */
export function requireOrthanc(options: { dicomWeb?: boolean } = {}): boolean {
  if (!findOrthancBinary()) {
    return missing('Orthanc', 'install the Debian package `orthanc` or set ORTHANC_BIN');
  }
  if ((options.dicomWeb ?? true) && !findDicomWebPlugin()) {
    return missing('The Orthanc DICOMweb plugin', 'install the Debian package `orthanc-dicomweb` or set ORTHANC_DICOMWEB_PLUGIN');
  }
  warnIfNotIsolated();
  return true;
}

/**
 * True when `name` is a program on PATH (the first-hour test runs the README's curl commands).
 * Throws when it is missing and CI is set; otherwise warns once and returns false.
 */
export function requireCommand(name: string, hint: string): boolean {
  const found = (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), fsConstants.X_OK);
      return dir !== '';
    } catch {
      return false;
    }
  });
  return found || missing(`The program \`${name}\``, hint);
}

/**
 * True when a private PostgreSQL cluster can be started (test/harness/postgres.ts): initdb and
 * pg_ctl installed, and a user other than root to run them when we are root. Throws when it is
 * missing and CI is set; otherwise warns once and returns false.
 */
export function requirePostgres(): boolean {
  if (!findPostgresBin()) {
    return missing('PostgreSQL', 'install the Debian package `postgresql` (15) or set PG_BIN to the folder holding initdb and pg_ctl');
  }
  if (!postgresRunAs()) {
    return missing(
      'A user to run PostgreSQL',
      'as root, the tests run PostgreSQL as the `postgres` user (the Debian package creates it) or in a nested user namespace (util-linux unshare --map-user); neither works here',
    );
  }
  return true;
}

/** True when this process sees only loopback interfaces (a `unshare --net` or `--network none` sandbox). */
export function onlyLoopback(): boolean {
  return Object.values(networkInterfaces()).every((addrs) => (addrs ?? []).every((a) => a.internal));
}

let isolationWarned = false;
/**
 * Orthanc listens on every interface. In CI the suite is meant to run in a loopback-only network
 * namespace (.ci/run); warn once when it is not. Called by requireOrthanc().
 */
export function warnIfNotIsolated(): void {
  if (isolationWarned || !isCi() || onlyLoopback()) return;
  isolationWarned = true;
  console.warn(
    '[pacs-triage tests] WARNING: CI is set but the tests see non-loopback network interfaces; the Orthanc ' +
      'instances they start listen on every interface (auth on, remote HTTP refused). Run the suite through .ci/run.',
  );
}
