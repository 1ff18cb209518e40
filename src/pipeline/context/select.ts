import type { InstanceMeta } from '../../domain/types.ts';
import type { SelectionRules, SelectionRuleSet } from '../../config/mappings.ts';

/**
 * Which rule chose the instance and on which attributes: every attribute of its `match`, then the
 * attribute of its `matchAny` that matched (the first, in the order written). Recorded with the
 * result, so an image taken on its SeriesDescription rather than its BodyPartExamined says so.
 */
export interface SelectedBy {
  rule: string;
  attributes: string[];
}

export type Selection =
  | { selected: true; rule: string; selectedBy: SelectedBy; instance: InstanceMeta; candidates: number }
  | { selected: false; reason: string };

interface Range {
  min?: number;
  max?: number;
}
type One = string | number | Range;
type Matcher = One | One[];

function isRange(m: One): m is Range {
  return typeof m === 'object' && m !== null;
}

/** A DICOM number as text ("12", " 3.5 ", "1e3"); undefined when it is not one. */
function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const n = Number(value.trim());
  return Number.isFinite(n) ? n : undefined;
}

function inRange(n: number, r: Range): boolean {
  return (r.min === undefined || n >= r.min) && (r.max === undefined || n <= r.max);
}

function matchesOne(actual: unknown, expected: One): boolean {
  const values = Array.isArray(actual) ? actual : [actual];
  return values.some((value) => {
    if (value === undefined || value === null) return false;
    if (isRange(expected)) {
      const n = numberOf(value);
      return n !== undefined && inRange(n, expected);
    }
    const text = String(value);
    if (typeof expected === 'string' && expected.length > 1 && expected.startsWith('/') && expected.endsWith('/')) {
      return new RegExp(expected.slice(1, -1), 'i').test(text);
    }
    return text.trim().toLowerCase() === String(expected).toLowerCase();
  });
}

function field(instance: InstanceMeta, name: string): unknown {
  return (instance as unknown as Record<string, unknown>)[name];
}

function matches(instance: InstanceMeta, name: string, matcher: Matcher): boolean {
  return (Array.isArray(matcher) ? matcher : [matcher]).some((m) => matchesOne(field(instance, name), m));
}

type Rule = SelectionRuleSet['rules'][number];

/** The attributes a rule matched the instance on (see SelectedBy), or undefined when it does not match. */
function ruleMatch(instance: InstanceMeta, rule: Rule): string[] | undefined {
  if (!Object.entries(rule.match).every(([name, m]) => matches(instance, name, m))) return undefined;
  if (Object.entries(rule.exclude ?? {}).some(([name, m]) => matches(instance, name, m))) return undefined;
  if (rule.matchAny === undefined) return Object.keys(rule.match);
  const any = Object.entries(rule.matchAny).find(([name, m]) => matches(instance, name, m));
  return any === undefined ? undefined : [...Object.keys(rule.match), any[0]];
}

/** YYYYMMDD → [y, m, d], or undefined. */
function dateParts(da: string | undefined): [number, number, number] | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da?.trim() ?? '');
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return undefined;
  return [y, mo, d];
}

/**
 * Patient age in (fractional) years at the study: PatientAge (AS: nnnD/W/M/Y) first, else
 * PatientBirthDate at StudyDate. Undefined when neither tells.
 */
export function patientAgeYears(instance: Pick<InstanceMeta, 'PatientAge' | 'PatientBirthDate' | 'StudyDate'>): number | undefined {
  const as = /^(\d{3})([DWMY])$/.exec(instance.PatientAge?.trim().toUpperCase() ?? '');
  if (as) {
    const n = Number(as[1]);
    const unit = as[2] as 'D' | 'W' | 'M' | 'Y';
    return unit === 'Y' ? n : unit === 'M' ? n / 12 : unit === 'W' ? (n * 7) / 365.25 : n / 365.25;
  }
  const birth = dateParts(instance.PatientBirthDate);
  const study = dateParts(instance.StudyDate);
  if (!birth || !study) return undefined;
  let years = study[0] - birth[0];
  if (study[1] < birth[1] || (study[1] === birth[1] && study[2] < birth[2])) years -= 1;
  return years < 0 ? undefined : years;
}

/** The rules for a model: its own under `models.<id>`, else the default (top-level) ones. */
export function rulesFor(rules: SelectionRules, modelId?: string): { set: SelectionRuleSet; key: string } {
  const own = modelId === undefined ? undefined : rules.models?.[modelId];
  return own ? { set: own, key: modelId as string } : { set: rules, key: 'default' };
}

function fmtRange(r: Range): string {
  return r.min !== undefined && r.max !== undefined ? `${r.min}–${r.max}` : r.min !== undefined ? `≥ ${r.min}` : `≤ ${String(r.max)}`;
}

/**
 * Picks the instance the model reads from a study's instances, by the rules in
 * mappings/series-selection.yaml for that model (`models.<modelId>`, else the default rules),
 * then the model's intended-use gates. Pure; a study with nothing selected says why.
 */
export function select(instances: readonly InstanceMeta[], rules: SelectionRules, modelId?: string): Selection {
  if (instances.length === 0) return { selected: false, reason: 'the study has no instances' };
  const { set, key } = rulesFor(rules, modelId);
  const gates = set.gates;
  const ruleNames = set.rules.map((r) => r.name).join(', ');
  let gatedOut = 0;
  for (const rule of set.rules) {
    const matched = instances.filter((inst) => ruleMatch(inst, rule) !== undefined);
    const candidates = gates?.viewPosition
      ? matched.filter((inst) => gates.viewPosition!.some((v) => v.toLowerCase() === (inst.ViewPosition ?? '').trim().toLowerCase()))
      : matched;
    gatedOut += matched.length - candidates.length;
    if (candidates.length === 0) continue;
    const ranked = [...candidates].sort((a, b) => rank(a, set) - rank(b, set) || order(a) - order(b));
    const instance = ranked[0] as InstanceMeta;
    if (gates?.patientAgeYears) {
      const age = patientAgeYears(instance);
      if (age === undefined && gates.unknownAge === 'skip') {
        return { selected: false, reason: `patient age unknown (no PatientAge, no PatientBirthDate with StudyDate); the ${key} rules need ${fmtRange(gates.patientAgeYears)} years` };
      }
      if (age !== undefined && !inRange(age, gates.patientAgeYears)) {
        return { selected: false, reason: `patient age ${Math.floor(age * 10) / 10} years is outside the intended use of the ${key} rules (${fmtRange(gates.patientAgeYears)} years)` };
      }
    }
    const selectedBy = { rule: rule.name, attributes: ruleMatch(instance, rule) ?? [] };
    return { selected: true, rule: rule.name, selectedBy, instance, candidates: candidates.length };
  }
  if (gatedOut > 0) {
    const views = [...new Set(instances.map((i) => i.ViewPosition ?? '?'))].join(', ');
    return { selected: false, reason: `no series has a ViewPosition the model is made for (${gates?.viewPosition?.join(', ') ?? ''}); the study has ${views}` };
  }
  const seen = [...new Set(instances.map((i) => `${i.Modality ?? '?'}/${i.BodyPartExamined ?? '?'}`))].join(', ');
  return { selected: false, reason: `no series matches the selection rules (${ruleNames}); the study has Modality/BodyPart ${seen}` };
}

/** The default rules' selection (kept for callers that do not name a model). */
export function selectInstance(instances: readonly InstanceMeta[], rules: SelectionRules, modelId?: string): Selection {
  return select(instances, rules, modelId);
}

function rank(instance: InstanceMeta, rules: SelectionRuleSet): number {
  let score = 0;
  for (const [name, preferred] of Object.entries(rules.prefer ?? {})) {
    const value = String(field(instance, name) ?? '').toUpperCase();
    const i = preferred.map((p) => p.toUpperCase()).indexOf(value);
    score = score * 100 + (i === -1 ? 99 : i);
  }
  return score;
}

function order(instance: InstanceMeta): number {
  return (instance.SeriesNumber ?? 0) * 100000 + (instance.InstanceNumber ?? 0);
}
