import type { FhirResource } from '../../domain/types.ts';
import type { Manifest, TextSection } from '../../adapters/model/manifest.ts';

/**
 * Renders the clinical text the model reads, exactly as the model manifest's text template says
 * (models/MANIFEST.md, "Text template"). Pure: the same resources always give the same text,
 * and the Python generator renders the same string (pinned by the golden test).
 */
export interface RenderedText {
  text: string;
  /** The resources that contributed a part, in rendering order (the RiskAssessment's basis). */
  used: FhirResource[];
}

export function renderClinicalText(resources: readonly FhirResource[], template: Manifest['text']): RenderedText {
  const parts: string[] = [];
  const used: FhirResource[] = [];
  for (const section of template.sections) {
    for (const { resource, text } of renderSection(section, resources)) {
      const part = collapse(text);
      if (part.length === 0) continue;
      parts.push(part);
      if (!used.includes(resource)) used.push(resource);
    }
  }
  return { text: parts.length > 0 ? parts.join(template.joiner) : template.empty, used };
}

interface Part {
  resource: FhirResource;
  text: string;
}

function renderSection(section: TextSection, resources: readonly FhirResource[]): Part[] {
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
      const withConclusion = ofType.filter((r) => typeof r['conclusion'] === 'string' && r['conclusion'].trim() !== '');
      const sorted = stableSortBy(withConclusion, effectiveDate, section.order === 'newest-first' ? -1 : 1);
      const parts = sorted.map((resource) => ({
        resource,
        text: fill(section.template, { date: effectiveDate(resource).slice(0, 10), conclusion: String(resource['conclusion']) }),
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

interface Coding {
  system?: string;
  code?: string;
  display?: string;
}
interface CodeableConcept {
  text?: string;
  coding?: Coding[];
}

function orderReason(resource: FhirResource): string {
  const reasons = (resource['reasonCode'] as CodeableConcept[] | undefined) ?? [];
  return reasons
    .map((c) => c.text ?? c.coding?.[0]?.display ?? '')
    .filter((s) => s.trim() !== '')
    .join('; ');
}

function effectiveDate(resource: FhirResource): string {
  const effective = resource['effectiveDateTime'];
  if (typeof effective === 'string') return effective;
  const issued = resource['issued'];
  return typeof issued === 'string' ? issued : '';
}

function hasCoding(resource: FhirResource, system: string, code: string): boolean {
  const concept = resource['code'] as CodeableConcept | undefined;
  return concept?.coding?.some((c) => c.system === system && c.code === code) ?? false;
}

/** One decimal, a trailing ".0" dropped: the same in Python (f"{v:.1f}") for values with ≤ 1 decimal. */
export function formatNumber(value: number): string {
  return value.toFixed(1).replace(/\.0$/, '');
}

function observationValue(resource: FhirResource): { value: string; unit: string } | undefined {
  const quantity = resource['valueQuantity'] as { value?: number; unit?: string; code?: string } | undefined;
  if (quantity && typeof quantity.value === 'number') {
    return { value: formatNumber(quantity.value), unit: quantity.unit ?? quantity.code ?? '' };
  }
  const str = resource['valueString'];
  if (typeof str === 'string') return { value: str, unit: '' };
  return undefined;
}
