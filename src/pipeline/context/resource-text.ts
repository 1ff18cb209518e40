import type { FhirResource } from '../../domain/types.ts';
import type { ReportTextSource } from '../../config/mappings.ts';

/**
 * Reads the text of one FHIR resource: the order's reason, a report's conclusion or plain-text
 * attachment, an observation's value. How a text becomes part of the model's input is the
 * manifest's text template (text-template.ts); this only says what the resource says.
 */

interface Coding {
  system?: string;
  code?: string;
  display?: string;
}
export interface CodeableConcept {
  text?: string;
  coding?: Coding[];
}
interface Attachment {
  contentType?: string;
  data?: string;
  url?: string;
}

/** A text that was not read, and why (no text of the resource: safe to log). */
export interface Unread {
  resource: string;
  reason: string;
}

export function refOf(resource: FhirResource): string {
  return `${resource.resourceType}/${resource.id ?? ''}`;
}

/** reasonCode[*].text, else its first coding's display, joined with "; " (the manifest's {reason}). */
export function orderReason(resource: FhirResource): string {
  const reasons = (resource['reasonCode'] as CodeableConcept[] | undefined) ?? [];
  return reasons
    .map((c) => c.text ?? c.coding?.[0]?.display ?? '')
    .filter((s) => s.trim() !== '')
    .join('; ');
}

export function effectiveDate(resource: FhirResource): string {
  const effective = resource['effectiveDateTime'];
  if (typeof effective === 'string') return effective;
  const issued = resource['issued'];
  return typeof issued === 'string' ? issued : '';
}

export function hasCoding(resource: FhirResource, system: string, code: string): boolean {
  const concept = resource['code'] as CodeableConcept | undefined;
  return concept?.coding?.some((c) => c.system === system && c.code === code) ?? false;
}

/**
 * A report's text from the first of `sources` that has some. `conclusion` verbatim;
 * `presentedForm` is the first attachment that is text/plain with inline data.
 */
export function reportText(resource: FhirResource, sources: readonly ReportTextSource[], unread?: Unread[]): string | undefined {
  for (const source of sources) {
    if (source === 'conclusion') {
      const conclusion = resource['conclusion'];
      if (typeof conclusion === 'string' && conclusion.trim() !== '') return conclusion;
      continue;
    }
    const forms = (resource['presentedForm'] as Attachment[] | undefined) ?? [];
    for (const [i, form] of forms.entries()) {
      const read = attachmentText(form);
      if ('text' in read) {
        if (read.text.trim() !== '') return read.text;
        continue;
      }
      unread?.push({ resource: refOf(resource), reason: `presentedForm[${i}]: ${read.reason}` });
    }
  }
  return undefined;
}

/**
 * The text of an attachment that is text/plain with base64 `data`, decoded in its charset
 * (UTF-8 when none is given). Anything else is not read, with the reason:
 * - another content type (PDF, HTML, RTF, images): the model reads plain sentences, and markup or
 *   a binary document would reach it as noise;
 * - only a `url`: fetching it would be a second, unauthenticated-or-differently-authorised request
 *   to a place the mapping does not name, per study, at triage time; sites that keep report
 *   text only behind URLs should put it in `conclusion` or inline `data`;
 * - bytes that are not valid in the charset: garbage must not become model input.
 */
export function attachmentText(form: Attachment): { text: string } | { reason: string } {
  const type = parseContentType(form.contentType);
  if (!type) return { reason: 'no contentType' };
  if (type.mediaType !== 'text/plain') return { reason: `${type.mediaType} is not text/plain` };
  if (typeof form.data !== 'string') return { reason: form.url ? 'only a url (not fetched)' : 'no data' };
  const base64 = form.data.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 === 1) return { reason: 'data is not base64' };
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(type.charset ?? 'utf-8', { fatal: true, ignoreBOM: false });
  } catch {
    return { reason: `unknown charset ${type.charset ?? ''}` };
  }
  try {
    return { text: decoder.decode(Buffer.from(base64, 'base64')) };
  } catch {
    return { reason: `data is not valid ${decoder.encoding}` };
  }
}

function parseContentType(value: string | undefined): { mediaType: string; charset?: string } | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const [media = '', ...params] = value.split(';');
  let charset: string | undefined;
  for (const param of params) {
    const [k, v] = param.split('=');
    if (k?.trim().toLowerCase() === 'charset' && v) charset = v.trim().replace(/^"(.*)"$/, '$1');
  }
  return { mediaType: media.trim().toLowerCase(), ...(charset ? { charset } : {}) };
}

/** One decimal, a trailing ".0" dropped: the same in Python (f"{v:.1f}") for values with ≤ 1 decimal. */
export function formatNumber(value: number): string {
  return value.toFixed(1).replace(/\.0$/, '');
}

/**
 * An observation's {value} and {unit}. valueQuantity and valueString as the manifest says;
 * the other simple types the way a clinician would write them: a coded value by its text (else
 * its first coding's display), an integer as is, a boolean as "yes"/"no". Ranges, ratios,
 * periods and components are not read: no single "{value} {unit}" says them faithfully.
 */
export function observationValue(resource: FhirResource): { value: string; unit: string } | undefined {
  const quantity = resource['valueQuantity'] as { value?: number; unit?: string; code?: string; comparator?: string } | undefined;
  if (quantity && typeof quantity.value === 'number') {
    return { value: `${quantity.comparator ?? ''}${formatNumber(quantity.value)}`, unit: quantity.unit ?? quantity.code ?? '' };
  }
  const str = resource['valueString'];
  if (typeof str === 'string') return { value: str, unit: '' };
  const concept = resource['valueCodeableConcept'] as CodeableConcept | undefined;
  if (concept) {
    const text = concept.text?.trim() ? concept.text : concept.coding?.find((c) => c.display?.trim())?.display;
    return text === undefined ? undefined : { value: text, unit: '' };
  }
  const int = resource['valueInteger'];
  if (typeof int === 'number' && Number.isInteger(int)) return { value: String(int), unit: '' };
  const bool = resource['valueBoolean'];
  if (typeof bool === 'boolean') return { value: bool ? 'yes' : 'no', unit: '' };
  return undefined;
}
