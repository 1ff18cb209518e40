import { TriageError } from '../../domain/errors.ts';
import { DynamicBatcher } from './batcher.ts';
import { loadManifest, type LoadedManifest, type Manifest } from '../../config/manifest.ts';
import { idsTypeOf, type IdsType } from './contract.ts';
import { runModel, type ModelInput, type ModelOutput } from './run.ts';
import { checkSessionMatchesManifest, graphOf, openSession, sessionFactoryFor, type CpuThreading, type ExecutionProvider, type SessionFactory, type SessionLogger } from './session.ts';
import { TextTokenizer } from './tokenizer.ts';

export type { ExecutionProvider } from './session.ts';
export type { ModelInput, ModelOutput } from './run.ts';
export type { TextEncoding } from './tokenizer.ts';

export interface ModelOptions {
  dir: string;
  executionProviders: readonly ExecutionProvider[];
  maxBatch: number;
  maxWaitMs: number;
  cpu?: CpuThreading;
  sessionFactory?: SessionFactory;
}

/** The loaded model: manifest, tokenizer (when it reads text) and a session behind a dynamic batcher. */
export class TriageModel {
  private readonly batcher: DynamicBatcher<ModelInput, ModelOutput>;

  private constructor(
    readonly loaded: LoadedManifest,
    /** Absent for an image-only model. */
    readonly tokenizer: TextTokenizer | undefined,
    private readonly session: Awaited<ReturnType<typeof openSession>>['session'],
    readonly provider: ExecutionProvider,
    private readonly idsType: IdsType,
    options: ModelOptions,
  ) {
    this.batcher = new DynamicBatcher((items) => this.runBatch(items), options.maxBatch, options.maxWaitMs);
  }

  static async load(options: ModelOptions, log: SessionLogger): Promise<TriageModel> {
    const loaded = await loadManifest(options.dir);
    const text = loaded.manifest.text;
    const tokenizer = text && loaded.tokenizerPath ? await TextTokenizer.load(loaded.tokenizerPath, text) : undefined;
    const opened = await openSession(loaded.onnxPath, options.executionProviders, log, options.sessionFactory ?? sessionFactoryFor(options.cpu));
    try {
      checkSessionMatchesManifest(opened.session, loaded.manifest);
    } catch (err) {
      await opened.session.release();
      throw err;
    }
    return new TriageModel(loaded, tokenizer, opened.session, opened.provider, idsTypeOf(graphOf(opened.session), loaded.manifest), options);
  }

  get manifest(): Manifest {
    return this.loaded.manifest;
  }

  /** The clinical text as the model's input; undefined for a model that reads none. */
  encodeText(text: string): ModelInput['text'] {
    return this.tokenizer?.encode(text);
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
      return await runModel(this.session, this.manifest, items, this.tokenizer?.padId ?? 0, this.idsType);
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
