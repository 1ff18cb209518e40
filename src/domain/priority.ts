import type { Finding, Priority } from './types.ts';

/** One rule of mappings/priority.yaml: a finding at or above a probability gives a priority. */
export interface PriorityRule {
  finding: string;
  minProbability: number;
  priority: Priority;
}

export interface PriorityRules {
  rules: readonly PriorityRule[];
}

export const PRIORITY_ORDER: readonly Priority[] = ['stat', 'asap', 'urgent', 'routine'];

/** The highest priority any rule in mappings/priority.yaml gives these findings; routine if none. */
export function priorityOf(findings: readonly Finding[], rules: PriorityRules): Priority {
  let best = PRIORITY_ORDER.length - 1;
  for (const rule of rules.rules) {
    const finding = findings.find((f) => f.code === rule.finding);
    if (finding && finding.probability >= rule.minProbability) best = Math.min(best, PRIORITY_ORDER.indexOf(rule.priority));
  }
  return PRIORITY_ORDER[best] as Priority;
}
