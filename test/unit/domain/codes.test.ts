import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findingCodeForConcept, findingCodes, riskBandFor, toFhirCoding } from '../../../src/domain/codes.ts';
import { DEFAULT_FINDINGS_MAPPINGS_PATH, loadFindingsMappings, parseFindingsMappings } from '../../../src/config/findings.ts';
import { TriageError } from '../../../src/domain/errors.ts';

const text = readFileSync(DEFAULT_FINDINGS_MAPPINGS_PATH, 'utf8');

function errorOf(fn: () => unknown): TriageError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TriageError) return err;
    throw err;
  }
  throw new Error('expected a TriageError');
}

describe('mappings/findings.yaml', () => {
  const m = loadFindingsMappings();

  it('maps every model finding to its SNOMED CT concept and RadLex term', () => {
    expect(Object.fromEntries(Object.entries(m.findings).map(([k, v]) => [k, [v.concept.value, v.radlex?.value]]))).toEqual({
      pneumothorax: ['36118008', 'RID5352'],
      pleural_effusion: ['60046008', 'RID34539'],
      consolidation: ['95436008', 'RID43255'],
      lung_nodule: ['786838002', 'RID50149'],
    });
    expect(findingCodeForConcept(m, { value: '95436008', scheme: 'SCT' })).toBe('consolidation');
    expect(findingCodeForConcept(m, { value: '95436008', scheme: 'SRT' })).toBeUndefined();
  });

  it('carries the fixed SR codes', () => {
    expect(m.sr.documentTitle).toEqual({ value: '126000', scheme: 'DCM', meaning: 'Imaging Measurement Report' });
    expect(m.sr.processingAlgorithm).toEqual({ value: 'Newcode1', scheme: '99IHE', meaning: 'Processing Algorithm' });
    expect(m.sr.probability.unit.scheme).toBe('UCUM');
    expect(m.procedureReported.default.scheme).toBe('LN');
  });

  it('has a version that is the sha256 of the file and changes with its content', () => {
    expect(m.version).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(parseFindingsMappings(text).version).toBe(m.version);
    expect(parseFindingsMappings(`${text}\n# edited\n`).version).not.toBe(m.version);
  });

  it('gives FHIR codings and risk bands', () => {
    expect(toFhirCoding(m, findingCodes(m, 'pneumothorax').concept)).toEqual({
      system: 'http://snomed.info/sct',
      code: '36118008',
      display: 'Pneumothorax',
    });
    expect([0, 0.049, 0.05, 0.3, 0.5, 0.98, 0.99, 1].map((p) => riskBandFor(m, p).code)).toEqual([
      'negligible',
      'negligible',
      'low',
      'moderate',
      'high',
      'high',
      'high',
      'high',
    ]);
    expect(() => riskBandFor(m, 1.2)).toThrow(TriageError);
  });

  it('refuses an unknown finding with CONFIG_INVALID', () => {
    expect(errorOf(() => findingCodes(m, 'cardiomegaly')).code).toBe('CONFIG_INVALID');
  });
});

describe('parseFindingsMappings validation', () => {
  it('lists every problem with its path at once', () => {
    const broken = text
      .replace('concept: { value: "36118008", scheme: SCT, meaning: Pneumothorax }', 'concept: { value: 36118008, scheme: SCT, meaning: Pneumothorax }')
      .replace('{ value: "121071", scheme: DCM, meaning: Finding }', '{ value: "121071", scheme: DCM }')
      .replace('- { from: 0.5, code: high, display: High likelihood }', '- { from: 0.01, code: high, display: High likelihood }')
      .replace('radlex: { value: RID50149, scheme: RADLEX, meaning: pulmonary nodule }', 'radlex: { value: "50149", scheme: RADLEX, meaning: pulmonary nodule }')
      .replace('schemaVersion: 1', 'schemaVersion: 1\nextra: true');
    const err = errorOf(() => parseFindingsMappings(broken, 'findings.yaml'));
    expect(err.code).toBe('CONFIG_INVALID');
    for (const path of [
      'findings.pneumothorax.concept.value',
      'sr.finding.meaning',
      'fhir.riskProbability.bands.3.from',
      'findings.lung_nodule.radlex',
      '(root)',
    ]) {
      expect(err.message).toContain(`- ${path}:`);
    }
  });

  it('qualitativeRisk is never "certain": the shipped bands top out at high, and the schema refuses a "certain" band', () => {
    const m = loadFindingsMappings();
    expect(m.fhir.riskProbability.bands.map((b) => b.code)).toEqual(['negligible', 'low', 'moderate', 'high']);
    expect(riskBandFor(m, 1).code).toBe('high');
    const certain = text.replace(
      '- { from: 0.5, code: high, display: High likelihood }',
      '- { from: 0.5, code: high, display: High likelihood }\n      - { from: 0.99, code: certain, display: Certain }',
    );
    expect(certain).not.toBe(text);
    const err = errorOf(() => parseFindingsMappings(certain, 'findings.yaml'));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/fhir\.riskProbability\.bands\.4\.code: "certain" is not a band: a model probability is never certainty/);
  });

  it('refuses a duplicate SNOMED concept (the SR reader maps concepts back)', () => {
    const dup = text.replace('value: "60046008"', 'value: "36118008"');
    expect(errorOf(() => parseFindingsMappings(dup)).message).toMatch(/findings\.pleural_effusion\.concept: SCT\|36118008 is already used/);
  });

  it('refuses a coding scheme without a FHIR system', () => {
    const noLoinc = text.replace('  LN: http://loinc.org\n', '');
    expect(errorOf(() => parseFindingsMappings(noLoinc)).message).toContain('fhirSystems.LN');
  });

  it('refuses YAML that does not parse, and duplicate keys', () => {
    expect(errorOf(() => parseFindingsMappings('findings: [\n')).message).toMatch(/not valid YAML/);
    expect(errorOf(() => parseFindingsMappings(`${text}\nschemaVersion: 1\n`)).code).toBe('CONFIG_INVALID');
  });

  it('loadFindingsMappings reports an unreadable file as CONFIG_INVALID', () => {
    expect(errorOf(() => loadFindingsMappings('/nonexistent/findings.yaml')).code).toBe('CONFIG_INVALID');
  });
});
