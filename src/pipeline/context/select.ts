import type { InstanceMeta } from '../../domain/types.ts';
import type { SelectionRules } from '../../config/mappings.ts';

export type Selection =
  | { selected: true; rule: string; instance: InstanceMeta; candidates: number }
  | { selected: false; reason: string };

type Matcher = string | number | (string | number)[];

function matchesOne(actual: unknown, expected: string | number): boolean {
  const values = Array.isArray(actual) ? actual : [actual];
  return values.some((value) => {
    if (value === undefined || value === null) return false;
    const text = String(value);
    if (typeof expected === 'string' && expected.length > 1 && expected.startsWith('/') && expected.endsWith('/')) {
      return new RegExp(expected.slice(1, -1), 'i').test(text);
    }
    return text.trim().toLowerCase() === String(expected).toLowerCase();
  });
}

function matches(instance: InstanceMeta, field: string, matcher: Matcher): boolean {
  const actual = (instance as unknown as Record<string, unknown>)[field];
  return (Array.isArray(matcher) ? matcher : [matcher]).some((m) => matchesOne(actual, m));
}

/**
 * Picks the instance the model reads from a study's instances, by the rules in
 * mappings/series-selection.yaml. Pure; a study with nothing selected says why.
 */
export function selectInstance(instances: readonly InstanceMeta[], rules: SelectionRules): Selection {
  if (instances.length === 0) return { selected: false, reason: 'the study has no instances' };
  for (const rule of rules.rules) {
    const candidates = instances.filter(
      (inst) =>
        Object.entries(rule.match).every(([field, m]) => matches(inst, field, m)) &&
        !Object.entries(rule.exclude ?? {}).some(([field, m]) => matches(inst, field, m)),
    );
    if (candidates.length === 0) continue;
    const ranked = [...candidates].sort((a, b) => rank(a, rules) - rank(b, rules) || order(a) - order(b));
    return { selected: true, rule: rule.name, instance: ranked[0] as InstanceMeta, candidates: candidates.length };
  }
  const seen = [...new Set(instances.map((i) => `${i.Modality ?? '?'}/${i.BodyPartExamined ?? '?'}`))].join(', ');
  return { selected: false, reason: `no series matches the selection rules (${rules.rules.map((r) => r.name).join(', ')}); the study has Modality/BodyPart ${seen}` };
}

function rank(instance: InstanceMeta, rules: SelectionRules): number {
  let score = 0;
  for (const [field, preferred] of Object.entries(rules.prefer ?? {})) {
    const value = String((instance as unknown as Record<string, unknown>)[field] ?? '').toUpperCase();
    const i = preferred.map((p) => p.toUpperCase()).indexOf(value);
    score = score * 100 + (i === -1 ? 99 : i);
  }
  return score;
}

function order(instance: InstanceMeta): number {
  return (instance.SeriesNumber ?? 0) * 100000 + (instance.InstanceNumber ?? 0);
}
