/**
 * The optional writes — the Orthanc study metadata and the order's priority — are conveniences:
 * the SR and the RiskAssessment are the result. When a PACS or FHIR server refuses one for a
 * reason only its configuration can change (metadata not declared, a 403, an update it does not
 * allow), retrying cannot help and failing the job would hide a result that was written: the
 * job ends done with a warning that names the fix. Transient failures (5xx, timeouts) are not
 * warnings; they keep the write-back's retries.
 */
import { logEvent, type EventLogger } from '../../domain/log-events.ts';
import type { TriageError } from '../../domain/errors.ts';
import type { StoredResult, WriteWarning } from '../../domain/records.ts';
import { PRIORITY_METADATA, RESULT_METADATA, UNDECLARED_METADATA, USER_METADATA_FIX } from '../../adapters/orthanc/client.ts';

export type OptionalWrite = WriteWarning['write'];

/** The warning for an optional write refused for a configuration reason; undefined for any other failure. Pure. */
export function configurationRefusal(write: OptionalWrite, e: TriageError): WriteWarning | undefined {
  const status = e.status === undefined ? '' : ` (${e.status})`;
  if (write === 'metadata') {
    if (e.code === 'CONFIG_INVALID' && e.where === UNDECLARED_METADATA) {
      return {
        write,
        cause: 'pacs-metadata-undeclared',
        message: `Orthanc does not know the study metadata ${PRIORITY_METADATA} and ${RESULT_METADATA}: the triage priority is not set in the PACS`,
        fix: `declare ${USER_METADATA_FIX} in orthanc.json and restart Orthanc`,
      };
    }
    if (e.code === 'UPSTREAM_AUTH') {
      return {
        write,
        cause: 'pacs-metadata-forbidden',
        message: `the PACS refused to let pacs-triage write study metadata${status}: the triage priority is not set in the PACS`,
        fix: `allow the PACS user (pacs.auth) to PUT /studies/{id}/metadata/${PRIORITY_METADATA} and /${RESULT_METADATA} (Orthanc's authorization plugin, or the proxy in front of it)`,
      };
    }
    if (e.status === 405) {
      return {
        write,
        cause: 'pacs-metadata-not-allowed',
        message: `the PACS does not allow writing study metadata${status}: the triage priority is not set in the PACS`,
        fix: `let PUT through to Orthanc's /studies/{id}/metadata (the proxy in front of it refuses the method)`,
      };
    }
    return undefined;
  }
  if (e.code === 'UPSTREAM_AUTH') {
    return {
      write,
      cause: 'fhir-order-forbidden',
      message: `the FHIR server refused to let pacs-triage update the order's priority${status}`,
      fix: 'grant the FHIR client write access to ServiceRequest (SMART scope system/ServiceRequest.write), or set fhir.writeOrderPriority: false',
    };
  }
  if (e.status === 405) {
    return {
      write,
      cause: 'fhir-order-not-allowed',
      message: `the FHIR server does not allow updating a ServiceRequest${status}`,
      fix: 'set fhir.writeOrderPriority: false (this server keeps orders read-only)',
    };
  }
  return undefined;
}

/** The result with this warning (one per cause). */
export function withWarning(result: StoredResult, warning: WriteWarning): void {
  result.warnings = [...(result.warnings ?? []).filter((w) => w.cause !== warning.cause), warning];
}

/** Whether an optional write of the result was given up with a warning (it counts as done: never retried for this result). */
export function warned(result: StoredResult, write: OptionalWrite): boolean {
  return (result.warnings ?? []).some((w) => w.write === write);
}

/** A job's reason for a done study whose optional writes were refused: each warning and its fix, on one line. */
export function warningReason(result: Pick<StoredResult, 'warnings'> | undefined): string | undefined {
  const warnings = result?.warnings ?? [];
  return warnings.length === 0 ? undefined : warnings.map((w) => `warning: ${w.message}; fix: ${w.fix}`).join(' | ');
}

export interface ActiveWarning {
  warning: WriteWarning;
  /** Studies it was reported for since this process started. */
  studies: number;
  firstAt: number;
  lastAt: number;
}

/**
 * The warnings this process has met, by cause: each is logged once (the first study it hit, not
 * every study after it), and /readyz lists them with how many studies they touched.
 */
export class WriteWarnings {
  private readonly byCause = new Map<string, ActiveWarning>();

  constructor(private readonly log: EventLogger | undefined) {}

  report(warning: WriteWarning, study: string, now = Date.now()): void {
    const known = this.byCause.get(warning.cause);
    if (known) {
      known.studies++;
      known.lastAt = now;
      known.warning = warning;
      return;
    }
    this.byCause.set(warning.cause, { warning, studies: 1, firstAt: now, lastAt: now });
    logEvent(this.log, 'study.warning', { study, warning: `${warning.cause}: ${warning.message}`, fix: warning.fix });
  }

  list(): ActiveWarning[] {
    return [...this.byCause.values()];
  }
}
