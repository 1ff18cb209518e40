/**
 * What a store engine gives its contract suites: fresh empty stores (with an injected clock),
 * and the engine-specific hooks a few contracts need. Every engine runs every suite
 * (test/unit/state/sqlite/store.test.ts; test/integration/postgres-store.test.ts).
 */
import type { Store } from '../../../../src/state/ports.ts';

export interface StoreEngine {
  name: string;
  /** A new, empty store whose clock is `clock` (default: Date.now). */
  open(clock?: () => number): Promise<Store>;
  /** The same data through a new connection, as after a restart (`store` is closed first). */
  reopen(store: Store, clock?: () => number): Promise<Store>;
  /** Runs a statement of the engine's own SQL against the store's data (for the append-only check). */
  exec(store: Store, sql: string): Promise<void>;
}
