/** Small SQL helpers the SQLite modules share. */
import type Database from 'better-sqlite3';

/** `(?, ?, ?)` for an IN list. */
export function placeholders(n: number): string {
  return `(${Array.from({ length: n }, () => '?').join(', ')})`;
}

/** Runs `fn` in a write transaction taken at once (BEGIN IMMEDIATE): a read-modify-write that two processes cannot interleave. */
export function writeTransaction<T>(db: Database.Database, fn: () => T): T {
  return db.transaction(fn).immediate();
}

