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
  /** The first model (the only one without config `models`). */
  model: TriageModel;
  /** Every model of the service, in config order. */
  models: TriageModel[];
  mappings: Mappings;
  store: Store;
  close(): Promise<void>;
}

/** The model folders the service runs: config `models`, else model.dir. */
export function modelDirs(config: Config): string[] {
  return config.models ?? [config.model.dir];
}

/** Loads every model; two with the same manifest id would share selection rules and result keys, so that is refused. */
async function loadModels(config: Config, log: Logger): Promise<TriageModel[]> {
  const models: TriageModel[] = [];
  try {
    for (const dir of modelDirs(config)) {
      const model = await TriageModel.load({ ...config.model, dir }, log);
      models.push(model);
      const same = models.find((m) => m !== model && m.manifest.id === model.manifest.id);
      if (same) {
        throw new TriageError('CONFIG_INVALID', `configuration is invalid:\n  - models: ${same.loaded.dir} and ${dir} have the same manifest id ${model.manifest.id}; each model needs its own id (selection rules and results are keyed by it)`, { where: 'models' });
      }
    }
  } catch (err) {
    await Promise.all(models.map((m) => m.close()));
    throw err;
  }
  return models;
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
  const models = await loadModels(config, log);
  const closeModels = (): Promise<unknown> => Promise.all(models.map((m) => m.close()));
  let mappings: Mappings;
  let store: Store;
  try {
    mappings = loadMappings(config.mappings.dir, [...new Set(models.flatMap((m) => m.manifest.findings.map((f) => f.code)))]);
    store = await openStore(config, storePath);
  } catch (err) {
    await closeModels();
    throw err;
  }
  return {
    model: models[0] as TriageModel,
    models,
    mappings,
    store,
    close: async () => {
      await store.close();
      await closeModels();
    },
  };
}
