/** openStore: the engine config.store names; a path given by the caller is always a local SQLite store. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { openStore } from '../../../src/compose/runtime.ts';

describe('openStore', () => {
  it('opens SQLite by default, and for a path given (analyze\'s :memory:) even when postgres is configured', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'runtime-')), 'jobs.sqlite');
    const sqlite = await openStore(loadConfig({ env: { PACS_TRIAGE_STORE__PATH: file } }));
    expect(sqlite.engine).toBe('sqlite');
    await sqlite.close();
    const postgres = loadConfig({ env: { PACS_TRIAGE_STORE__KIND: 'postgres', PACS_TRIAGE_STORE__URL: 'postgres://postgres@127.0.0.1:1/pacs' } });
    const memory = await openStore(postgres, ':memory:');
    expect(memory.engine).toBe('sqlite');
    await memory.close();
  });

  it('opens PostgreSQL when configured: a server that cannot be reached is UPSTREAM_UNAVAILABLE (retryable)', async () => {
    const config = loadConfig({ env: { PACS_TRIAGE_STORE__KIND: 'postgres', PACS_TRIAGE_STORE__URL: 'postgres://postgres@127.0.0.1:1/pacs' } });
    await expect(openStore(config)).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true, where: 'state.postgres' });
  });
});
