import type { FhirResource } from '../../domain/types.ts';
import type { TextSection, TextSpec } from '../../config/manifest.ts';
import type { FhirMapping, ReportTextSource } from '../../config/mappings.ts';
import { effectiveDate, hasCoding, observationValue, orderReason, reportText, type Unread } from './resource-text.ts';

export { formatNumber } from './resource-text.ts';

/**
 * Renders the clinical text the model reads, exactly as the model manifest's text template says
 * (models/MANIFEST.md, "Text template"). Pure: the same resources always give the same text,
 * and the Python generator renders the same string (pinned by the golden test).
 */
export interface RenderedText {
  text: string;
  /** The resources that contributed a part, in rendering order (the RiskAssessment's basis). */
  used: FhirResource[];
  /** Caps of the mapping that cut the input or the text: counts only, never text, safe to log. */
  capsHit: CapHit[];
  /** Texts that were not read (a PDF, a url-only attachment…), with the reason. */
  unread: Unread[];
}

export interface CapHit {
  cap: 'maxResources' | 'maxChars';
  limit: number;
  /** What there was: resources given (at least), characters rendered. */
  count: number;
}

/** What the site's mapping says about reading the resources; without it, the manifest's defaults and no caps. */
export type TextReading = Pick<FhirMapping, 'caps'> & { reports: Pick<FhirMapping['reports'], 'text'> };

/** What rendering needs of the manifest's text object. */
export type TextTemplate = Pick<TextSpec, 'sections' | 'joiner' | 'empty'>;

export function renderClinicalText(resources: readonly FhirResource[], template: TextTemplate, reading?: TextReading): RenderedText {
  const capsHit: CapHit[] = [];
  const unread: Unread[] = [];
  let input = resources;
  const maxResources = reading?.caps.maxResources;
  if (maxResources !== undefined && input.length > maxResources) {
    capsHit.push({ cap: 'maxResources', limit: maxResources, count: input.length });
    input = input.slice(0, maxResources);
  }
  const parts: Part[] = [];
  for (const section of template.sections) {
    for (const part of renderSection(section, input, reading?.reports.text ?? ['conclusion'], unread)) {
      const text = collapse(part.text);
      if (text.length > 0) parts.push({ resource: part.resource, text });
    }
  }
  let text = parts.length > 0 ? parts.map((p) => p.text).join(template.joiner) : template.empty;
  let kept = parts;
  const maxChars = reading?.caps.maxChars;
  if (maxChars !== undefined && text.length > maxChars) {
    capsHit.push({ cap: 'maxChars', limit: maxChars, count: text.length });
    text = cutAt(text, maxChars);
    // A resource whose part starts beyond the cut did not feed the model.
    let start = 0;
    kept = parts.filter((p) => {
      const inside = start < text.length;
      start += p.text.length + template.joiner.length;
      return inside;
    });
  }
  const used: FhirResource[] = [];
  for (const part of kept) if (!used.includes(part.resource)) used.push(part.resource);
  return { text, used, capsHit, unread };
}

/** The first `max` UTF-16 units, one less when that would split a surrogate pair. */
function cutAt(text: string, max: number): string {
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

interface Part {
  resource: FhirResource;
  text: string;
}

function renderSection(section: TextSection, resources: readonly FhirResource[], reportSources: readonly ReportTextSource[], unread: Unread[]): Part[] {
  const ofType = resources.filter((r) => r.resourceType === section.resourceType);
  switch (section.kind) {
    case 'orderReason': {
      const parts: Part[] = [];
      for (const resource of ofType) {
        const reason = orderReason(resource);
        if (reason === '') continue;
        parts.push({ resource, text: fill(section.template, { reason }) });
      }
      return cap(parts, section.max);
    }
    case 'priorReports': {
      const withText = ofType.flatMap((resource) => {
        const text = reportText(resource, reportSources, unread);
        return text === undefined ? [] : [{ resource, text }];
      });
      const sorted = stableSortBy(withText, (r) => effectiveDate(r.resource), section.order === 'newest-first' ? -1 : 1);
      const parts = sorted.map(({ resource, text }) => ({
        resource,
        text: fill(section.template, { date: effectiveDate(resource).slice(0, 10), conclusion: text }),
      }));
      return cap(parts, section.max);
    }
    case 'observations': {
      const parts: Part[] = [];
      for (const code of section.codes) {
        const matching = ofType.filter((r) => hasCoding(r, code.system, code.code));
        const ordered = stableSortBy(matching, effectiveDate, -1);
        const chosen = section.latestPerCode ? ordered.slice(0, 1) : ordered;
        for (const resource of chosen) {
          const value = observationValue(resource);
          if (value === undefined) continue;
          parts.push({ resource, text: fill(section.template, { label: code.label, value: value.value, unit: value.unit }) });
        }
      }
      return cap(parts, section.max);
    }
    default: {
      const never: never = section;
      throw new Error(`unknown text section ${JSON.stringify(never)}`);
    }
  }
}

function cap<T>(items: T[], max: number | undefined): T[] {
  return max === undefined ? items : items.slice(0, max);
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole);
}

function collapse(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function stableSortBy<T>(items: readonly T[], key: (item: T) => string, direction: 1 | -1): T[] {
  return items
    .map((item, index) => ({ item, index, key: key(item) }))
    .sort((a, b) => (a.key === b.key ? a.index - b.index : a.key < b.key ? -direction : direction))
    .map((entry) => entry.item);
}
