/**
 * Write-back: the stored result to the PACS (the SR, then the priority metadata) and to the FHIR
 * server (the transaction with the RiskAssessment, then the order's priority). The two chains
 * are independent and run side by side; each write is audited and its flag saved the moment it
 * succeeds, so a crash or an outage resumes at the first write not done.
 */
import type { FhirResource, InstanceMeta } from '../../domain/types.ts';
import type { AuditEntry, StoredResult } from '../../domain/records.ts';
import { TriageError } from '../../domain/errors.ts';
import type { PipelineDeps } from '../ports.ts';
import type { Timed } from '../timing.ts';
import { configurationRefusal, warned, withWarning, type OptionalWrite } from './optional-writes.ts';

/**
 * A retryable failure of a write after the result was stored: the job waits for the upstream
 * (it is not dead-lettered after maxAttempts) and the next attempt writes the stored result
 * without running the model again.
 */
export class WriteBackPending extends TriageError {
  constructor(
    readonly target: 'pacs' | 'fhir',
    cause: TriageError,
  ) {
    super(cause.code, `waiting for ${target}: ${cause.message}`, {
      cause,
      where: `write.${target}`,
      ...(cause.status === undefined ? {} : { status: cause.status }),
      ...(cause.retryAfterS === undefined ? {} : { retryAfterS: cause.retryAfterS }),
    });
  }
}

/**
 * Whether every write the result asks for is done (everything, in shadow mode, where nothing is
 * written). An optional write refused for a configuration reason counts as done: its warning
 * stands for it, and a rerun with the same inputs writes nothing.
 */
export function fullyWritten(result: StoredResult, shadow: boolean): boolean {
  if (shadow) return true;
  return (
    result.written.pacs &&
    (result.written.metadata || warned(result, 'metadata')) &&
    (result.written.fhir || result.notes.some((n) => n.startsWith('fhir skipped'))) &&
    (result.written.order !== false || warned(result, 'order'))
  );
}

export interface WriteBackInput {
  result: StoredResult;
  /** The source instance (the priority is set on its study). */
  instance: InstanceMeta;
  sr: { part10: Uint8Array; seriesInstanceUID: string; sopInstanceUID: string };
  /** The FHIR transaction; undefined when no patient was found (or no FHIR server). */
  fhir: FhirResource | undefined;
  /** The study's order, when its priority is written too; with the version it had before our last write. */
  order?: { resource: FhirResource; fromVersion?: string };
}

/** Runs both write chains; throws the failure that decides the job (a waiting one wins over a terminal one). */
export async function writeBack(input: WriteBackInput, deps: PipelineDeps, timed: Timed, alongside: Promise<void> = Promise.resolve()): Promise<void> {
  const { result, instance, sr, fhir, order } = input;
  const { store, sink, metrics } = deps;
  const uid = result.studyInstanceUID;
  const audited = async <T>(entry: Pick<AuditEntry, 'target' | 'action' | 'resource'>, run: () => Promise<T>): Promise<T> => {
    const base = { ...entry, studyInstanceUID: uid, resultKey: result.resultKey, modelVersion: `${result.modelId}@${result.modelVersion}` };
    try {
      const value = await run();
      await store.audit({ ...base, outcome: 'ok' });
      metrics?.writes.inc({ target: entry.target, action: entry.action, outcome: 'ok' });
      return value;
    } catch (err) {
      const e = err instanceof TriageError ? err : new TriageError('INTERNAL', (err as Error).message, { cause: err });
      await store.audit({ ...base, outcome: 'error', detail: `${e.code}${e.status ? ` ${e.status}` : ''}` });
      metrics?.writes.inc({ target: entry.target, action: entry.action, outcome: 'error' });
      throw e.retryable ? new WriteBackPending(entry.target as 'pacs' | 'fhir', e) : e;
    }
  };
  /**
   * An optional write: refused for a configuration reason, it leaves a warning on the result
   * (saved, reported once per cause) instead of failing the job; anything else is thrown as is.
   */
  const optional = async (write: OptionalWrite, run: () => Promise<void>): Promise<void> => {
    if (warned(result, write)) return;
    try {
      await run();
    } catch (err) {
      const warning = err instanceof TriageError && !(err instanceof WriteBackPending) ? configurationRefusal(write, err) : undefined;
      if (!warning) throw err;
      withWarning(result, warning);
      await store.saveResult(result);
      deps.warnings?.report(warning, uid);
    }
  };
  const pacsWrites = async (): Promise<void> => {
    await timed('write.pacs', async () => {
      if (result.written.pacs) return;
      await audited({ target: 'pacs', action: 'store-sr', resource: `SR ${sr.sopInstanceUID}` }, () =>
        sink.storeSr(uid, sr.part10, { patientId: instance.PatientID ?? '', seriesInstanceUID: sr.seriesInstanceUID, sopInstanceUID: sr.sopInstanceUID }),
      );
      result.written.pacs = true;
      await store.saveResult(result);
    });
    await timed('write.priority', async () => {
      if (result.written.metadata) return;
      await optional('metadata', async () => {
        await audited({ target: 'pacs', action: 'set-priority', resource: `priority ${result.priority}` }, () => sink.setPriority(instance, result));
        result.written.metadata = true;
        await store.saveResult(result);
      });
    });
  };
  const fhirWrites = async (): Promise<void> => {
    if (fhir && !result.written.fhir) {
      await timed('write.fhir', async () => {
        const ref = await audited({ target: 'fhir', action: 'transaction', resource: `RiskAssessment for SR ${sr.sopInstanceUID}` }, () => sink.writeFhir(uid, fhir));
        result.written.fhir = true;
        if (ref) result.riskAssessmentRef = ref;
        await store.saveResult(result);
      });
    }
    const writeOrder = sink.writeOrderPriority?.bind(sink);
    if (order && writeOrder && result.written.order === false) {
      await timed('write.order', () =>
        optional('order', async () => {
          const ref = `ServiceRequest/${order.resource.id ?? ''}`;
          if (order.resource['priority'] !== result.priority) {
            const toVersion = await audited({ target: 'fhir', action: 'order-priority', resource: `${ref} priority ${result.priority}` }, () =>
              writeOrder(order.resource, result.priority),
            );
            result.orderPriority = { ref, ...(order.fromVersion ? { fromVersion: order.fromVersion } : {}), ...(toVersion ? { toVersion } : {}) };
          }
          result.written.order = true;
          await store.saveResult(result);
        }),
      );
    }
  };
  const settled = await Promise.allSettled([pacsWrites(), fhirWrites(), alongside]);
  const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) {
    // Both chains may fail (each failure is in the audit log). A write still waiting for its
    // upstream wins over a terminal one: the job waits, the next attempt writes what it can,
    // and a terminal error that persists then ends the job with its own reason.
    throw failures.find((e) => e instanceof WriteBackPending) ?? failures[0];
  }
}
