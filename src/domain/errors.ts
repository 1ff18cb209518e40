/**
 * The one error currency of pacs-triage. Every failure that crosses a stage boundary is a
 * TriageError with a stable code; whether it is worth retrying is a property of the code,
 * so workers decide "retry or give up" in one place (after medplum's outcomes.ts).
 */
export const ERROR_CODES = {
  CONFIG_INVALID: { retryable: false, http: 500 },
  USAGE: { retryable: false, http: 400 },
  MANIFEST_INVALID: { retryable: false, http: 500 },
  MODEL_LOAD_FAILED: { retryable: false, http: 500 },
  DICOM_UNREADABLE: { retryable: false, http: 422 },
  DICOM_NO_PIXEL_DATA: { retryable: false, http: 422 },
  DICOM_UNSUPPORTED_SYNTAX: { retryable: false, http: 422 },
  DICOM_UNSUPPORTED_IMAGE: { retryable: false, http: 422 },
  /** Larger than a limit allows (file, inflated data set, declared pixels or frames): refused before allocating. */
  DICOM_TOO_LARGE: { retryable: false, http: 413 },
  /** Sequences nested past limits.dicom.maxDepth: a crafted file. */
  DICOM_TOO_DEEP: { retryable: false, http: 422 },
  NOTHING_SELECTED: { retryable: false, http: 422 },
  FHIR_INVALID: { retryable: false, http: 422 },
  /** The FHIR server answered something that is not FHIR JSON (a proxy page, a truncated body). */
  FHIR_MALFORMED: { retryable: true, http: 502 },
  CONFLICT: { retryable: false, http: 409 },
  PATIENT_NOT_FOUND: { retryable: false, http: 422 },
  PATIENT_AMBIGUOUS: { retryable: false, http: 422 },
  UPSTREAM_UNAVAILABLE: { retryable: true, http: 503 },
  UPSTREAM_TIMEOUT: { retryable: true, http: 504 },
  UPSTREAM_THROTTLED: { retryable: true, http: 503 },
  UPSTREAM_REJECTED: { retryable: false, http: 502 },
  UPSTREAM_AUTH: { retryable: false, http: 502 },
  /** An answer larger than limits.*ResponseBytes (or a Bundle with more entries than allowed): aborted while it streamed in. */
  UPSTREAM_TOO_LARGE: { retryable: false, http: 502 },
  /** A study whose StudyInstanceUID is not a DICOM UID: refused before it is queued. */
  INVALID_UID: { retryable: false, http: 422 },
  /**
   * The TLS handshake failed on a certificate (untrusted CA, wrong host name, expired, a client
   * certificate the server wants and did not get). Retrying cannot fix it — only a change of
   * configuration or certificates can — so it is terminal, like a 401.
   */
  TLS_FAILED: { retryable: false, http: 502 },
  NOT_FOUND: { retryable: false, http: 404 },
  INTERNAL: { retryable: false, http: 500 },
} as const satisfies Record<string, { retryable: boolean; http: number }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface TriageErrorOptions {
  cause?: unknown;
  /** Where the error happened: a stage, an upstream name, a config path. Never patient data. */
  where?: string;
  /** Upstream HTTP status, when there was one. */
  status?: number;
  /** Seconds the upstream asked us to wait (Retry-After). */
  retryAfterS?: number;
}

export class TriageError extends Error {
  readonly code: ErrorCode;
  readonly where: string | undefined;
  readonly status: number | undefined;
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message: string, options: TriageErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TriageError';
    this.code = code;
    this.where = options.where;
    this.status = options.status;
    this.retryAfterS = options.retryAfterS;
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  toJSON(): { code: ErrorCode; message: string; retryable: boolean; where?: string; status?: number } {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.where === undefined ? {} : { where: this.where }),
      ...(this.status === undefined ? {} : { status: this.status }),
    };
  }
}

/** Anything thrown becomes a TriageError; unknown errors are INTERNAL and not retried. */
export function asTriageError(err: unknown, where?: string): TriageError {
  if (err instanceof TriageError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TriageError('INTERNAL', message, { cause: err, ...(where === undefined ? {} : { where }) });
}

/** Maps an upstream HTTP status to the error code that says whether to retry. */
export function codeForHttpStatus(status: number): ErrorCode {
  if (status === 429) return 'UPSTREAM_THROTTLED';
  if (status === 401 || status === 403) return 'UPSTREAM_AUTH';
  if (status === 404) return 'NOT_FOUND';
  if (status === 408 || status === 504) return 'UPSTREAM_TIMEOUT';
  if (status >= 500) return 'UPSTREAM_UNAVAILABLE';
  return 'UPSTREAM_REJECTED';
}
