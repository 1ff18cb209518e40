/**
 * The result key and the identifiers derived from it (design: "Idempotency").
 *
 * The result key is a SHA-256 over a canonical JSON of everything that decides a result: the
 * study, the source instances used, the FHIR resources used (with their versionIds), the model
 * id + version, and the mappings version. Every DICOM UID and FHIR identifier we write is derived
 * from it (or from a stable part of it), so a rerun on the same input reproduces the same result
 * and any changed input gives a new one. Pure functions, no I/O.
 *
 * UID policy (decided here, used by the SR encoder):
 * - SR SOP Instance UID: from the full result key — changes with any change of the key.
 * - SR Series Instance UID: from (Study Instance UID, model id, Device UID) — all SRs written for
 *   one study by one trained model land in one series, so viewers show one "AI results" series
 *   whose newest instance (with Predecessor Documents) supersedes the older ones, instead of a new
 *   series per rerun. The Device UID is part of it because General Equipment is a series-level
 *   module: a retrained model is different equipment, so it starts its own series.
 * - Tracking Unique Identifier per finding: from (Study Instance UID, model id, finding code) —
 *   the same finding of the same study keeps its tracking UID across reruns and retrains, which is
 *   what tracking identifiers are for.
 */
import { createHash } from 'node:crypto';
import { TriageError } from './errors.ts';

export interface FhirResourceVersion {
  /** `ResourceType/id` */
  ref: string;
  /** meta.versionId; absent when the server does not version (then only the id counts). */
  versionId?: string;
}

export interface ResultKeyParts {
  studyInstanceUID: string;
  sourceSopInstanceUIDs: readonly string[];
  fhirResources: readonly FhirResourceVersion[];
  modelId: string;
  modelVersion: string;
  mappingsVersion: string;
}

/** JSON with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new TriageError('INTERNAL', 'canonicalJson: non-finite number', { where: 'domain.uids' });
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function requireNonEmpty(value: string, name: string): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TriageError('INTERNAL', `result key: ${name} is required`, { where: 'domain.uids' });
  }
}

/** The stable hex digest (64 hex chars) that identifies one result. Order of the lists does not matter. */
export function resultKey(parts: ResultKeyParts): string {
  requireNonEmpty(parts.studyInstanceUID, 'studyInstanceUID');
  requireNonEmpty(parts.modelId, 'modelId');
  requireNonEmpty(parts.modelVersion, 'modelVersion');
  requireNonEmpty(parts.mappingsVersion, 'mappingsVersion');
  if (parts.sourceSopInstanceUIDs.length === 0) {
    throw new TriageError('INTERNAL', 'result key: at least one source SOP Instance UID is required', {
      where: 'domain.uids',
    });
  }
  const sources = [...new Set(parts.sourceSopInstanceUIDs)].sort();
  const fhir = parts.fhirResources
    .map((r) => {
      requireNonEmpty(r.ref, 'fhirResources[].ref');
      return { ref: r.ref, versionId: r.versionId ?? null };
    })
    .sort((a, b) => compare(a.ref, b.ref) || compare(a.versionId ?? '', b.versionId ?? ''));
  const canonical = canonicalJson({
    v: 1,
    studyInstanceUID: parts.studyInstanceUID,
    sourceSopInstanceUIDs: sources,
    fhirResources: fhir,
    modelId: parts.modelId,
    modelVersion: parts.modelVersion,
    mappingsVersion: parts.mappingsVersion,
  });
  return sha256Hex(canonical);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The versioned reference list of the FHIR resources a result used (for `resultKey` and FHIR basis). */
export function fhirResourceVersions(
  resources: readonly { resourceType: string; id?: string; meta?: { versionId?: string } }[],
): FhirResourceVersion[] {
  return resources.map((r) => {
    if (!r.id) {
      throw new TriageError('INTERNAL', `FHIR ${r.resourceType} without an id cannot be part of a result`, {
        where: 'domain.uids',
      });
    }
    return { ref: `${r.resourceType}/${r.id}`, ...(r.meta?.versionId ? { versionId: r.meta.versionId } : {}) };
  });
}

const UID_COMPONENT = /^(0|[1-9][0-9]*)$/;

/** A DICOM UID (PS3.5 9.1): 1–64 chars, digits and dots, ≥ 2 components, no leading zeros, no empty components. */
export function isValidUid(uid: unknown): uid is string {
  if (typeof uid !== 'string' || uid.length === 0 || uid.length > 64) return false;
  const parts = uid.split('.');
  if (parts.length < 2) return false;
  return parts.every((p) => UID_COMPONENT.test(p));
}

/** What a derived UID is for; part of the hash so the UIDs of one key never collide with each other. */
export type UidPurpose = 'sr-series' | 'sr-instance' | `tracking:${string}`;

/** At least this many decimal digits of digest after the root (≈ 79 bits). */
export const MIN_UID_SUFFIX_DIGITS = 24;

/** Longest root `deriveUid` accepts (so the suffix keeps MIN_UID_SUFFIX_DIGITS digits). */
export const MAX_UID_ROOT_LENGTH = 64 - 1 - MIN_UID_SUFFIX_DIGITS;

/** Throws CONFIG_INVALID unless `root` can carry derived UIDs. */
export function assertUidRoot(root: string, where = 'uidRoot'): void {
  if (!isValidUid(root)) {
    throw new TriageError('CONFIG_INVALID', `${where}: "${root}" is not a valid DICOM UID root (digits and dots, no leading zeros)`, {
      where,
    });
  }
  if (root.length > MAX_UID_ROOT_LENGTH) {
    throw new TriageError(
      'CONFIG_INVALID',
      `${where}: "${root}" is ${root.length} characters; at most ${MAX_UID_ROOT_LENGTH} leave room for ${MIN_UID_SUFFIX_DIGITS} digits of derived suffix`,
      { where },
    );
  }
}

/**
 * A deterministic DICOM UID under `root` for (`key`, `purpose`).
 *
 * The suffix is the SHA-256 of key + purpose read as a decimal integer, truncated to fit 64
 * characters. Under the `2.25` arc (ISO/IEC 9834-8, UUID-derived UIDs) the suffix is instead the
 * decimal of a name-based UUID (version 8, RFC 9562) made from the same digest, as that arc requires.
 */
export function deriveUid(root: string, key: string, purpose: UidPurpose): string {
  assertUidRoot(root);
  if (typeof key !== 'string' || key === '') {
    throw new TriageError('INTERNAL', 'deriveUid: key is required', { where: 'domain.uids' });
  }
  const digest = createHash('sha256').update(`${purpose}\u0000${key}`, 'utf8').digest();
  if (root === '2.25') {
    const bytes = Buffer.from(digest.subarray(0, 16));
    bytes[6] = (bytes[6]! & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 4122/9562 variant
    const n = BigInt(`0x${bytes.toString('hex')}`);
    return `2.25.${n.toString(10)}`;
  }
  let digits = BigInt(`0x${digest.toString('hex')}`).toString(10);
  if (digits.startsWith('0')) digits = `1${digits.slice(1)}`; // only when the digest is 0…
  const room = 64 - root.length - 1;
  return `${root}.${digits.slice(0, room)}`;
}

/** The key the SR series UID is derived from (see the policy at the top). */
export function srSeriesKey(studyInstanceUID: string, modelId: string, deviceUid: string): string {
  return sha256Hex(canonicalJson({ v: 1, studyInstanceUID, modelId, deviceUid }));
}

/** The key tracking UIDs are derived from (see the policy at the top). */
export function trackingKey(studyInstanceUID: string, modelId: string): string {
  return sha256Hex(canonicalJson({ v: 1, studyInstanceUID, modelId }));
}

/** A deterministic RFC 9562 version 8 UUID (lower-case, hyphenated) from a name; for `urn:uuid:` fullUrls. */
export function deterministicUuid(name: string): string {
  const bytes = Buffer.from(createHash('sha256').update(name, 'utf8').digest().subarray(0, 16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The series our SRs of a study go into: one per study, model and device. */
export function srSeriesInstanceUID(uidRoot: string, studyInstanceUID: string, modelId: string, deviceUid: string): string {
  return deriveUid(uidRoot, srSeriesKey(studyInstanceUID, modelId, deviceUid), 'sr-series');
}

/**
 * The series our rejection notes (IOCM KOS) of a study go into: derived from the study alone, so
 * ingest recognises them without asking anyone and without a SOP hash per instance.
 */
export function rejectionNoteSeriesUID(uidRoot: string, studyInstanceUID: string): string {
  return deriveUid(uidRoot, sha256Hex(canonicalJson({ v: 1, rejectionNotes: studyInstanceUID })), 'sr-series');
}
