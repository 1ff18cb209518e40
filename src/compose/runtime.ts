/** What every mode that runs the pipeline opens: the model, the mappings checked against it, and the store. */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { TriageError } from '../domain/errors.ts';
import { loadMappings, type Mappings } from '../config/mappings.ts';
import { TriageModel } from '../adapters/model/index.ts';
import type { Store } from '../state/ports.ts';
import { openPostgresStore } from '../state/postgres/index.ts';
import { openSqliteStore } from '../state/sqlite/index.ts';

export interface Runtime {
  model: TriageModel;
  mappings: Mappings;
  store: Store;
  close(): Promise<void>;
}

/**
 * The store `config.store` names. A `path` given here (`:memory:` for `analyze`) is a SQLite
 * store of this process alone, whatever the configured engine: a local run shares nothing.
 */
export async function openStore(config: Config, path?: string): Promise<Store> {
  const store = config.store;
  if (path !== undefined || store.kind === 'sqlite') return openSqliteStore(path ?? store.path);
  if (store.url === undefined) throw new TriageError('CONFIG_INVALID', 'store.kind postgres needs store.url', { where: 'store.url' });
  return openPostgresStore({ url: store.url, schema: store.schema, poolSize: store.poolSize, ...(store.tls ? { tls: store.tls } : {}) });
}

export async function openRuntime(config: Config, log: Logger, storePath?: string): Promise<Runtime> {
  const model = await TriageModel.load(config.model, log);
  let mappings: Mappings;
  let store: Store;
  try {
    mappings = loadMappings(config.mappings.dir, model.manifest.findings.map((f) => f.code));
    store = await openStore(config, storePath);
  } catch (err) {
    await model.close();
    throw err;
  }
  return {
    model,
    mappings,
    store,
    close: async () => {
      await store.close();
      await model.close();
    },
  };
}
