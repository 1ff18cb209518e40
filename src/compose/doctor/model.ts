/**
 * `doctor`'s checks of the model against the mappings: every finding coded (findings.yaml), able
 * to raise the priority (priority.yaml), and series-selection rules for the model that name
 * attributes pacs-triage reads. Pure.
 */
import type { Mappings } from '../../config/mappings.ts';
import type { Manifest } from '../../config/manifest.ts';
import { META_ATTRIBUTES } from '../../dicom/attributes.ts';
import { rulesFor } from '../../pipeline/context/select.ts';
import { fail, ok, warn, type Check } from './report.ts';

export function modelMappingChecks(manifest: Manifest, mappings: Mappings, mappingsDir: string): Check[] {
  return [findingsCheck(manifest, mappings, mappingsDir), priorityCheck(manifest, mappings, mappingsDir), selectionCheck(manifest, mappings, mappingsDir)];
}

function findingsCheck(manifest: Manifest, mappings: Mappings, dir: string): Check {
  const name = 'findings coded';
  const codes = manifest.findings.map((f) => f.code);
  const missing = codes.filter((c) => mappings.findings.findings[c] === undefined);
  if (missing.length > 0) {
    return fail(
      name,
      `${missing.join(', ')} of model ${manifest.id} ${missing.length === 1 ? 'has' : 'have'} no coded concept in ${dir}/findings.yaml: the SR and the RiskAssessment cannot be written for any study`,
      `add findings.${missing[0]} (concept: a SNOMED CT code; radlex: a RadLex code) to ${dir}/findings.yaml${missing.length > 1 ? ', and the same for the others' : ''}`,
    );
  }
  return ok(name, `each of the model's ${codes.length} findings (${codes.join(', ')}) has its codes in findings.yaml`);
}

function priorityCheck(manifest: Manifest, mappings: Mappings, dir: string): Check {
  const name = 'priority rules';
  const raising = new Set(mappings.priority.rules.filter((r) => r.priority !== 'routine').map((r) => r.finding));
  const never = manifest.findings.map((f) => f.code).filter((c) => !raising.has(c));
  if (never.length > 0) {
    return warn(
      name,
      `${never.join(', ')} can never raise a study's priority: no rule in ${dir}/priority.yaml gives ${never.length === 1 ? 'it' : 'them'} more than routine (still reported in the SR and the RiskAssessment)`,
      `if ${never.length === 1 ? 'it' : 'they'} should, add a rule such as { finding: ${never[0]}, minProbability: 0.5, priority: urgent } to ${dir}/priority.yaml`,
    );
  }
  return ok(name, `every finding has a rule that can raise the priority (${mappings.priority.rules.length} rules)`);
}

/** The attributes a selection rule can name: InstanceMeta's (what QIDO-RS and the file reader fill in). */
const KEYWORDS: ReadonlySet<string> = new Set(META_ATTRIBUTES.map((a) => a.keyword));

function selectionCheck(manifest: Manifest, mappings: Mappings, dir: string): Check {
  const name = 'selection rules';
  const { set, key } = rulesFor(mappings.selection, manifest.id);
  const prefix = key === 'default' ? '' : `models.${key}.`;
  const which = key === 'default' ? `the default rules (no models.${manifest.id} in series-selection.yaml)` : `models.${key}`;
  const unknown: string[] = [];
  set.rules.forEach((rule, i) => {
    for (const [part, fields] of [['match', rule.match], ['matchAny', rule.matchAny ?? {}], ['exclude', rule.exclude ?? {}]] as const) {
      for (const field of Object.keys(fields)) if (!KEYWORDS.has(field)) unknown.push(`${prefix}rules.${i}.${part}.${field}`);
    }
  });
  for (const field of Object.keys(set.prefer ?? {})) if (!KEYWORDS.has(field)) unknown.push(`${prefix}prefer.${field}`);
  if (unknown.length > 0) {
    return fail(
      name,
      `model ${manifest.id} uses ${which}; ${unknown.join(', ')} ${unknown.length === 1 ? 'names an attribute' : 'name attributes'} pacs-triage does not read, so ${unknown.length === 1 ? 'it' : 'they'} never match`,
      `in ${dir}/series-selection.yaml use DICOM keywords pacs-triage reads: ${[...KEYWORDS].sort().join(', ')}`,
    );
  }
  return ok(name, `model ${manifest.id} uses ${which}: ${set.rules.map((r) => r.name).join(', ')}`);
}
