/**
 * Wake-ups between replicas: one LISTEN connection per store, opened for the first subscriber
 * and closed after the last. A pooled connection cannot listen (the pool hands it to others),
 * so it is a client of its own. When it breaks it comes back with a growing delay, and every
 * subscriber is woken once then: a NOTIFY sent meanwhile was lost.
 */
import pg from 'pg';
import type { TriageError } from '../../domain/errors.ts';
import type { WakeKind } from '../ports.ts';
import { storeError } from './database.ts';
import { WAKE_CHANNEL } from './sql.ts';

const KINDS: readonly WakeKind[] = ['job', 'retraction'];
const RETRY_MS = { first: 500, max: 30_000 };

export interface WakeSubscription {
  onWake(listener: (kind: WakeKind) => void): () => void;
  close(): Promise<void>;
}

export function wakeSubscription(config: pg.ClientConfig, schema: string, onError: (err: TriageError) => void): WakeSubscription {
  const listeners = new Set<(kind: WakeKind) => void>();
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let delay = RETRY_MS.first;
  let closed = false;

  const wake = (kind: WakeKind): void => {
    for (const listener of [...listeners]) {
      try {
        listener(kind);
      } catch {
        // A subscriber's own failure is its business; the others are still woken.
      }
    }
  };

  const wanted = (): boolean => !closed && listeners.size > 0;

  const drop = (c: pg.Client): void => {
    if (client !== c) return;
    client = undefined;
    c.removeAllListeners('notification');
    c.end().catch(() => undefined);
    if (wanted() && timer === undefined) {
      timer = setTimeout(() => {
        timer = undefined;
        void connect(true);
      }, delay);
      timer.unref();
      delay = Math.min(delay * 2, RETRY_MS.max);
    }
  };

  const connect = async (again: boolean): Promise<void> => {
    if (!wanted() || client !== undefined) return;
    const c = new pg.Client(config);
    client = c;
    c.on('error', (err) => {
      if (client === c) onError(storeError(err));
      drop(c);
    });
    c.on('end', () => drop(c));
    c.on('notification', (msg) => {
      if (msg.channel !== WAKE_CHANNEL || msg.payload === undefined) return;
      const [from, kind] = msg.payload.split(':');
      if (from === schema && (kind === 'job' || kind === 'retraction')) wake(kind);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${WAKE_CHANNEL}`);
    } catch (err) {
      // Unless it was dropped on purpose meanwhile (the last subscriber left, the store closed).
      if (client === c) {
        onError(storeError(err));
        drop(c);
      }
      return;
    }
    if (client !== c) return;
    if (!wanted()) {
      drop(c);
      return;
    }
    delay = RETRY_MS.first;
    if (again) for (const kind of KINDS) wake(kind);
  };

  return {
    onWake(listener) {
      listeners.add(listener);
      void connect(false);
      return () => {
        listeners.delete(listener);
        if (!wanted() && client) drop(client);
      };
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      const c = client;
      client = undefined;
      if (c) await c.end().catch(() => undefined);
    },
  };
}
