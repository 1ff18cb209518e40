/**
 * The one InstanceMeta builder. Every reader — DICOM JSON from QIDO-RS, a dcmjs-naturalized
 * file, the native fast path — first gives a keyword-named record (dcmjs's natural form: a value
 * or an array of values, person names as `{ Alphabetic }` or `A^B=ideographic`), and this turns
 * it into InstanceMeta by the rules of the attribute table. So a missing UID, padding, person
 * names and numbers mean the same thing whichever way the instance arrived. Pure.
 */
import { TriageError } from '../domain/errors.ts';
import type { InstanceMeta } from '../domain/types.ts';
import { META_ATTRIBUTES } from './attributes.ts';

/** A keyword-named data set (dcmjs's "naturalized" form). */
export type NaturalDataset = Record<string, unknown>;

const UID_ORDER = ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID', 'SOPClassUID'];

export function firstValue(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : value;
}

/** Padding (trailing NUL and spaces, leading spaces) off; empty → undefined. */
export function stringValue(value: unknown): string | undefined {
  const v = firstValue(value);
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') return personNameValue(v);
  const s = String(v).replace(/[\0\s]+$/, '').trim();
  return s === '' ? undefined : s;
}

/** The Alphabetic group of a person name (`A^B=Ideographic=Phonetic`, or dcmjs's object form). */
export function personNameValue(value: unknown): string | undefined {
  const v = firstValue(value);
  if (typeof v === 'string') {
    const alphabetic = (v.split('=')[0] ?? '').replace(/\0+$/, '').trim();
    return alphabetic === '' ? undefined : alphabetic;
  }
  if (v !== null && typeof v === 'object' && 'Alphabetic' in v) {
    const a = (v as { Alphabetic?: unknown }).Alphabetic;
    return typeof a === 'string' && a.trim() !== '' ? a.trim() : undefined;
  }
  return undefined;
}

export function numberValue(value: unknown): number | undefined {
  const v = firstValue(value);
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(String(v).replace(/\0+$/, '').trim());
  return Number.isFinite(n) ? n : undefined;
}

export function stringValues(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = (Array.isArray(value) ? value : [value]).map((x) => String(x ?? '').replace(/\0+$/, '').trim());
  return list.length === 0 || list.every((x) => x === '') ? undefined : list;
}

/** The identifying UIDs, in the order errors name them. */
const REQUIRED_UIDS = META_ATTRIBUTES.filter((a) => a.kind === 'uid')
  .map((a) => a.keyword)
  .sort((a, b) => UID_ORDER.indexOf(a) - UID_ORDER.indexOf(b));

/**
 * InstanceMeta from a keyword-named data set. Throws DICOM_UNREADABLE (with `where`) when one of
 * the four identifying UIDs is missing: an instance that cannot be named cannot be processed.
 */
export function instanceMeta(ds: NaturalDataset, where = 'dicom'): InstanceMeta {
  const missing = REQUIRED_UIDS.filter((k) => stringValue(ds[k]) === undefined);
  if (missing.length > 0) {
    throw new TriageError('DICOM_UNREADABLE', `the instance has no ${missing.join(', ')}`, { where });
  }
  const meta = {} as Record<keyof InstanceMeta, unknown>;
  for (const a of META_ATTRIBUTES) {
    const raw = ds[a.keyword];
    const value =
      a.kind === 'uid' || a.kind === 'string'
        ? stringValue(raw)
        : a.kind === 'person'
          ? personNameValue(raw)
          : a.kind === 'number'
            ? numberValue(raw)
            : stringValues(raw);
    if (value !== undefined) meta[a.keyword] = value;
  }
  return meta as unknown as InstanceMeta;
}

/** The StudyInstanceUID of a study-level record (a QIDO-RS study search), undefined when absent. */
export function studyUidOf(ds: NaturalDataset): string | undefined {
  return stringValue(ds['StudyInstanceUID']);
}
