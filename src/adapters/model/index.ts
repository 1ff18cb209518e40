import { TriageError } from '../../domain/errors.ts';
import { DynamicBatcher } from './batcher.ts';
import { loadManifest, type LoadedManifest, type Manifest } from '../../config/manifest.ts';
import { runModel, type ModelInput, type ModelOutput } from './run.ts';
import { checkSessionMatchesManifest, openSession, sessionFactoryFor, type CpuThreading, type ExecutionProvider, type SessionFactory, type SessionLogger } from './session.ts';
import { TextTokenizer } from './tokenizer.ts';

export type { ExecutionProvider } from './session.ts';
export type { ModelInput, ModelOutput } from './run.ts';

export interface ModelOptions {
  dir: string;
  executionProviders: readonly ExecutionProvider[];
  maxBatch: number;
  maxWaitMs: number;
  cpu?: CpuThreading;
  sessionFactory?: SessionFactory;
}

/** The loaded model: manifest, tokenizer and a session behind a dynamic batcher. */
export class TriageModel {
  private readonly batcher: DynamicBatcher<ModelInput, ModelOutput>;

  private constructor(
    readonly loaded: LoadedManifest,
    readonly tokenizer: TextTokenizer,
    private readonly session: Awaited<ReturnType<typeof openSession>>['session'],
    readonly provider: ExecutionProvider,
    options: ModelOptions,
  ) {
    this.batcher = new DynamicBatcher((items) => this.runBatch(items), options.maxBatch, options.maxWaitMs);
  }

  static async load(options: ModelOptions, log: SessionLogger): Promise<TriageModel> {
    const loaded = await loadManifest(options.dir);
    const tokenizer = await TextTokenizer.load(loaded.tokenizerPath, loaded.manifest.text.maxLength);
    const opened = await openSession(loaded.onnxPath, options.executionProviders, log, options.sessionFactory ?? sessionFactoryFor(options.cpu));
    try {
      checkSessionMatchesManifest(opened.session, loaded.manifest);
    } catch (err) {
      await opened.session.release();
      throw err;
    }
    return new TriageModel(loaded, tokenizer, opened.session, opened.provider, options);
  }

  get manifest(): Manifest {
    return this.loaded.manifest;
  }

  /** One item; joins whatever batch is forming. */
  infer(input: ModelInput): Promise<ModelOutput> {
    return this.batcher.submit(input);
  }

  /** Told the size and duration of every batch run (metrics); set by whoever observes the model. */
  onBatch: ((size: number, seconds: number) => void) | undefined;

  /** A whole batch at once, bypassing the batcher (evaluation and benchmarks). */
  async runBatch(items: readonly ModelInput[]): Promise<ModelOutput[]> {
    const start = performance.now();
    try {
      return await runModel(this.session, this.manifest, items, this.tokenizer.padId);
    } catch (err) {
      throw new TriageError('INTERNAL', `inference failed: ${(err as Error).message}`, { cause: err, where: 'infer' });
    } finally {
      this.onBatch?.(items.length, (performance.now() - start) / 1000);
    }
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
