import { logEvent, type EventLogger } from '../../domain/log-events.ts';
import * as ort from 'onnxruntime-node';
import { TriageError } from '../../domain/errors.ts';
import type { Manifest } from '../../config/manifest.ts';
import { contractProblems, formatProblems, type Graph, type GraphValue } from './contract.ts';

export type ExecutionProvider = 'cuda' | 'webgpu' | 'cpu';

export type SessionLogger = EventLogger;

export interface OpenedSession {
  session: ort.InferenceSession;
  provider: ExecutionProvider;
  /** Providers that were tried first and could not load, with why. */
  skipped: { provider: ExecutionProvider; reason: string }[];
}

/** Creates a session for one provider; a seam so tests can make a provider fail to load. */
export type SessionFactory = (onnxPath: string, provider: ExecutionProvider) => Promise<ort.InferenceSession>;

/** How the CPU provider uses threads (config model.cpu). */
export interface CpuThreading {
  /** Intra-op threads; absent: onnxruntime's default (one per core). */
  threads?: number;
  /**
   * Idle intra-op threads spin waiting for work (onnxruntime's default). Off here: the service
   * shares its cores with its own I/O (and, on small machines, with the PACS and FHIR server),
   * and spinning threads burn that CPU between batches. Measured on 2 cores with Orthanc and the
   * sandbox FHIR server: the service's CPU per study fell by a fifth with spinning off.
   */
  spinning: boolean;
}

export function sessionFactoryFor(cpu: CpuThreading = { spinning: false }): SessionFactory {
  const spin = cpu.spinning ? '1' : '0';
  return (onnxPath, provider) =>
    ort.InferenceSession.create(onnxPath, {
      // Only the one provider: onnxruntime appends CPU for unsupported nodes by itself, and a
      // list like ['cuda','cpu'] would hide which provider actually loaded.
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      ...(cpu.threads === undefined ? {} : { intraOpNumThreads: cpu.threads }),
      extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
    });
}

export const defaultSessionFactory: SessionFactory = sessionFactoryFor();

/**
 * Tries each provider in order of preference and keeps the first that loads. onnxruntime-node
 * throws (no silent fallback) when the CUDA libraries are missing or no GPU adapter exists, so
 * a failure here is logged and the next provider tried.
 */
export async function openSession(
  onnxPath: string,
  providers: readonly ExecutionProvider[],
  log: SessionLogger,
  factory: SessionFactory = defaultSessionFactory,
): Promise<OpenedSession> {
  if (providers.length === 0) {
    throw new TriageError('CONFIG_INVALID', 'model.executionProviders is empty: name at least one of cuda, webgpu, cpu');
  }
  const skipped: OpenedSession['skipped'] = [];
  for (const provider of providers) {
    try {
      const session = await factory(onnxPath, provider);
      logEvent(log, 'model.provider.selected', { provider, skipped: skipped.map((s) => s.provider) });
      return { session, provider, skipped };
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0] ?? String(err);
      skipped.push({ provider, reason });
      logEvent(log, 'model.provider.unavailable', { provider, reason });
    }
  }
  throw new TriageError(
    'MODEL_LOAD_FAILED',
    `no execution provider could load ${onnxPath}: ${skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`,
  );
}

/** The session's inputs and outputs as the contract check reads them. */
export function graphOf(session: ort.InferenceSession): Graph {
  const values = (list: readonly ort.InferenceSession.ValueMetadata[] | undefined, names: readonly string[]): GraphValue[] =>
    list && list.length === names.length
      ? list.map((v) => (v.isTensor ? { name: v.name, type: v.type, shape: v.shape } : { name: v.name, shape: [] }))
      : names.map((name) => ({ name, shape: [] }));
  return { inputs: values(session.inputMetadata, session.inputNames), outputs: values(session.outputMetadata, session.outputNames) };
}

/** Refuses a model whose graph does not take and give what its manifest says, listing every mismatch with its fix. */
export function checkSessionMatchesManifest(session: ort.InferenceSession, manifest: Manifest): void {
  const problems = contractProblems(graphOf(session), manifest);
  if (problems.length > 0) {
    throw new TriageError('MANIFEST_INVALID', `manifest ${manifest.id}@${manifest.version} does not match its ONNX graph:\n${formatProblems(problems)}`);
  }
}
