import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from './migrations.ts';

/**
 * Makes `db.prepare` return one compiled statement per SQL text: every method prepares its
 * statement where it runs it (readable), and compiling them again for each job cost ~2 ms of
 * every study's CPU. The texts are constants or built from constants (filters, IN lists of a
 * page), so the cache stays small; it stops growing at 500 entries all the same.
 */
function cachePreparedStatements(db: Database.Database): void {
  const compile = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let statement = cache.get(sql);
    if (statement === undefined) {
      statement = compile(sql);
      if (cache.size < 500) cache.set(sql, statement);
    }
    return statement;
  }) as typeof db.prepare;
}

/**
 * The store holds patients' pictures and study ids: a folder we create is 0700 and the database
 * files 0600, whatever the umask. SQLite gives its -wal and -shm files the database file's mode;
 * they are set again after opening all the same. A folder that already existed is the
 * operator's, and keeps its mode.
 */
function privateFiles(file: string): void {
  const dir = path.dirname(path.resolve(file));
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
}

/** Opens (and migrates) the database; `:memory:` gives the in-process store of `analyze` and unit tests. */
export function openDatabase(file: string): Database.Database {
  if (file !== ':memory:') privateFiles(file);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // FULL, explicitly: better-sqlite3 is built to default a reopened WAL database to NORMAL,
  // where a power loss can drop the last commits — acknowledged work nobody sends again (a
  // webhook's 202, a retraction or feedback the API accepted). An fsync per commit is the price.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  cachePreparedStatements(db);
  migrate(db);
  if (file !== ':memory:') for (const f of [`${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  // A job left running by a crashed process is not reset here (another worker may share the
  // store): its lease expires and claim() takes it again.
  return db;
}
