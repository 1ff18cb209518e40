/**
 * `doctor`'s FHIR checks, read from the server's CapabilityStatement: the transaction the results
 * are written in, conditional create for the resources in it (what makes a rerun idempotent), and
 * the search parameters the mappings' look-ups send — each missing one named with the mapping key
 * that needs it. Pure: the statement in, checks out.
 */
import type { FhirMapping } from '../../config/mappings.ts';
import type { TextSection } from '../../config/manifest.ts';
import { fail, ok, warn, type Check } from './report.ts';

interface CsResource {
  type?: string;
  interaction?: { code?: string }[];
  conditionalCreate?: boolean;
  versioning?: string;
  searchParam?: { name?: string }[];
}
interface CsRest {
  mode?: string;
  interaction?: { code?: string }[];
  searchParam?: { name?: string }[];
  resource?: CsResource[];
}
export interface CapabilityStatement {
  fhirVersion?: string;
  software?: { name?: string; version?: string };
  rest?: CsRest[];
}

/** A search parameter a look-up sends, and the mapping key (or manifest section) that makes it send it. */
export interface SearchNeed {
  type: string;
  param: string;
  /** e.g. "reports.by: patientDate" */
  why: string;
  /** How to do without it, when there is a way. */
  instead?: string;
}

/**
 * The searches the configured look-ups send (src/adapters/fhir/clinical-source.ts), from the
 * mapping and the model's text sections (undefined: every section, when the manifest is unknown).
 */
export function searchNeeds(mapping: FhirMapping, sections: readonly TextSection['kind'][] | undefined): SearchNeed[] {
  const has = (kind: TextSection['kind']): boolean => sections === undefined || sections.includes(kind);
  const needs: SearchNeed[] = [{ type: 'Patient', param: 'identifier', why: 'patient.identifierSystem (the study\'s PatientID)' }];
  const by = has('priorReports') ? mapping.reports.by : [];
  const lookup = (name: string): string => `take ${name} out of reports.by in mappings/fhir.yaml`;
  if (has('orderReason')) needs.push({ type: 'ServiceRequest', param: 'subject', why: "the manifest's orderReason section (order.accessionType)" });
  else if (by.includes('basedOn')) needs.push({ type: 'ServiceRequest', param: 'subject', why: 'reports.by: basedOn', instead: lookup('basedOn') });
  if (by.includes('patientDate')) {
    for (const param of ['subject', 'date']) needs.push({ type: 'DiagnosticReport', param, why: 'reports.by: patientDate', instead: lookup('patientDate') });
  }
  if (by.includes('basedOn')) needs.push({ type: 'DiagnosticReport', param: 'based-on', why: 'reports.by: basedOn', instead: lookup('basedOn') });
  if (by.includes('imagingStudy')) {
    needs.push({ type: 'ImagingStudy', param: 'identifier', why: 'reports.by: imagingStudy', instead: lookup('imagingStudy') });
    const param = mapping.reports.imagingStudyParam;
    needs.push(
      param === undefined
        ? { type: 'DiagnosticReport', param: 'based-on', why: 'reports.by: imagingStudy (no reports.imagingStudyParam: through the ImagingStudy\'s orders)', instead: lookup('imagingStudy') }
        : { type: 'DiagnosticReport', param, why: `reports.imagingStudyParam: ${param}`, instead: 'set reports.imagingStudyParam to the name this server gives that search parameter, or remove it' },
    );
  }
  if (has('observations')) {
    for (const param of ['subject', 'code', 'date']) needs.push({ type: 'Observation', param, why: "the manifest's observations section (observations.lookbackDays)" });
  }
  return needs;
}

/** The resources of the results transaction, and the search each one's If-None-Exist sends (src/pipeline/encode/fhir.ts). */
const CONDITIONAL = [
  { type: 'RiskAssessment', param: 'identifier' },
  { type: 'Device', param: 'identifier' },
  { type: 'Provenance', param: '_tag' },
] as const;

export function capabilityChecks(cs: CapabilityStatement, needs: readonly SearchNeed[], writeOrderPriority: boolean): Check[] {
  const rest = cs.rest?.find((r) => r.mode === 'server') ?? cs.rest?.[0];
  const resource = (type: string): CsResource | undefined => rest?.resource?.find((r) => r.type === type);
  const common = new Set((rest?.searchParam ?? []).map((p) => p.name));
  const declares = (type: string, param: string): boolean => common.has(param) || (resource(type)?.searchParam ?? []).some((p) => p.name === param);
  const checks: Check[] = [];

  checks.push(
    (rest?.interaction ?? []).some((i) => i.code === 'transaction')
      ? ok('FHIR transaction', 'declared: the RiskAssessment, its Device and Provenance are written in one transaction Bundle')
      : fail('FHIR transaction', 'the CapabilityStatement declares no `transaction` interaction: the results are written in one transaction Bundle', 'use (or enable) a FHIR server that supports transaction Bundles'),
  );

  const noCreate = CONDITIONAL.filter((c) => resource(c.type)?.conditionalCreate !== true).map((c) => c.type);
  const noParam = CONDITIONAL.filter((c) => !noCreate.includes(c.type) && !declares(c.type, c.param));
  if (noCreate.length > 0) {
    checks.push(
      fail(
        'FHIR conditional create',
        `not declared (conditionalCreate) for ${noCreate.join(', ')}: a study processed again would write duplicates instead of finding its earlier result`,
        'enable conditional create (If-None-Exist) on the FHIR server for RiskAssessment, Device and Provenance',
      ),
    );
  } else if (noParam.some((c) => c.param !== '_tag')) {
    const missing = noParam.filter((c) => c.param !== '_tag').map((c) => `${c.type}.${c.param}`);
    checks.push(fail('FHIR conditional create', `declared, but the If-None-Exist search needs ${missing.join(', ')}, which is not declared`, `enable the search parameter ${missing.join(', ')} on the FHIR server`));
  } else if (noParam.length > 0) {
    // _tag is a parameter of every resource that many servers support without listing it.
    checks.push(warn('FHIR conditional create', 'declared for RiskAssessment, Device and Provenance; Provenance does not list _tag, which its If-None-Exist searches', 'make sure the server supports _tag on Provenance (most do without listing it)'));
  } else {
    checks.push(ok('FHIR conditional create', 'declared for RiskAssessment, Device and Provenance, with the search parameters their If-None-Exist use'));
  }

  const types = [...new Set(needs.map((n) => n.type))];
  for (const type of types) {
    const name = `FHIR search ${type}`;
    const mine = needs.filter((n) => n.type === type);
    if (!resource(type)) {
      checks.push(fail(name, `the CapabilityStatement has no ${type}; needed by ${[...new Set(mine.map((n) => n.why))].join('; ')}`, `use a FHIR server that serves ${type}, or change mappings/fhir.yaml`));
      continue;
    }
    const missing = mine.filter((n) => !declares(type, n.param));
    const params = [...new Set(mine.map((n) => n.param))].join(', ');
    if (missing.length === 0) {
      checks.push(ok(name, `${params} declared, for ${[...new Set(mine.map((n) => n.why))].join('; ')}`));
      continue;
    }
    checks.push(
      fail(
        name,
        missing.map((n) => `${n.param} is not declared (needed by ${n.why})`).join('; '),
        [...new Set(missing.map((n) => `enable the ${type} search parameter ${n.param} on the FHIR server${n.instead ? `, or ${n.instead}` : ''}`))].join('; '),
      ),
    );
  }

  if (writeOrderPriority) {
    const order = resource('ServiceRequest');
    const name = 'FHIR order priority write';
    if (!(order?.interaction ?? []).some((i) => i.code === 'update')) {
      checks.push(warn(name, 'fhir.writeOrderPriority is on, but ServiceRequest declares no `update`: the order\'s priority will not be written (the result stands, with a warning)', 'enable update on ServiceRequest, or set fhir.writeOrderPriority false'));
    } else if (order?.versioning !== 'versioned-update') {
      checks.push(
        warn(
          name,
          `ServiceRequest declares versioning ${order?.versioning === undefined ? 'not at all' : `"${order.versioning}"`}, not versioned-update: the update sends If-Match (so a concurrent edit of the order is not overwritten), which this server may ignore or refuse`,
          'enable versioned updates (versioning: versioned-update) for ServiceRequest, or set fhir.writeOrderPriority false',
        ),
      );
    } else {
      checks.push(ok(name, 'ServiceRequest update declared (with If-Match on the version read)'));
    }
  }
  return checks;
}
