/**
 * One replica at a time runs a named thing (an ingest source's poller): a session-level
 * pg_try_advisory_lock on a connection of its own. The server lets the lock go when that
 * session ends — release, the process dying, the connection breaking — so a dead holder never
 * blocks the others. A heartbeat on the connection finds a break the socket has not reported,
 * and the holder then gives up at once (Store.tryLeadership in ports.ts has the semantics).
 */
import pg from 'pg';
import type { Leadership } from '../ports.ts';
import { LOCK_KEY, lockName, storeError } from './database.ts';

export const HEARTBEAT_MS = 5_000;

export async function tryLeadership(config: pg.ClientConfig, schema: string, name: string, heartbeatMs = HEARTBEAT_MS): Promise<Leadership | undefined> {
  const lock = [lockName(schema, `lead:${name}`)];
  // A heartbeat that gets no answer (a half-open connection) fails instead of waiting for TCP.
  const client = new pg.Client({ ...config, application_name: 'pacs-triage leader', query_timeout: 2 * heartbeatMs });
  let held = false;
  let heartbeat: NodeJS.Timeout | undefined;
  let settle: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const end = (): void => {
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = undefined;
    if (!held) return;
    held = false;
    settle();
    client.end().catch(() => undefined);
  };
  // Before connecting: an error event without a listener would end the process.
  client.on('error', end);
  client.on('end', end);

  try {
    await client.connect();
    const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS ok`, lock);
    if (rows[0]?.ok !== true) {
      await client.end();
      return undefined;
    }
  } catch (err) {
    await client.end().catch(() => undefined);
    throw storeError(err);
  }
  held = true;
  heartbeat = setInterval(() => {
    client.query('SELECT 1').catch(end);
  }, heartbeatMs);
  heartbeat.unref();

  return {
    name,
    ended,
    held: () => held,
    async release() {
      if (!held) return;
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = undefined;
      // Ending the session would release it as well; unlocking first frees it before the
      // connection has finished closing.
      await client.query(`SELECT pg_advisory_unlock(${LOCK_KEY})`, lock).catch(() => undefined);
      end();
    },
  };
}
