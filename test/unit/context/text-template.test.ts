import { describe, expect, it } from 'vitest';
import { formatNumber, renderClinicalText } from '../../../src/pipeline/context/text-template.ts';
import type { Manifest } from '../../../src/adapters/model/manifest.ts';
import type { FhirResource } from '../../../src/domain/types.ts';

const template: Manifest['text'] = {
  tokenizer: 'tokenizer.json',
  maxLength: 128,
  joiner: ' | ',
  empty: 'no clinical information',
  sections: [
    { kind: 'orderReason', resourceType: 'ServiceRequest', template: 'indication: {reason}', max: 1 },
    { kind: 'priorReports', resourceType: 'DiagnosticReport', template: 'prior report {date}: {conclusion}', max: 2, order: 'newest-first' },
    {
      kind: 'observations',
      resourceType: 'Observation',
      latestPerCode: true,
      template: '{label} {value} {unit}',
      codes: [
        { system: 'http://loinc.org', code: '59408-5', label: 'spo2' },
        { system: 'http://loinc.org', code: '8310-5', label: 'temp' },
      ],
    },
  ],
};

const obs = (id: string, code: string, value: number, unit: string, when: string): FhirResource => ({
  resourceType: 'Observation',
  id,
  code: { coding: [{ system: 'http://loinc.org', code }] },
  valueQuantity: { value, unit },
  effectiveDateTime: when,
});

describe('renderClinicalText', () => {
  it('renders sections in manifest order, newest reports first, latest value per code, negation verbatim', () => {
    const resources: FhirResource[] = [
      obs('o1', '8310-5', 38.0, 'Cel', '2026-03-01T08:00:00Z'),
      obs('o2', '59408-5', 91, '%', '2026-03-01T08:00:00Z'),
      obs('o3', '59408-5', 97, '%', '2026-02-01T08:00:00Z'),
      { resourceType: 'DiagnosticReport', id: 'r1', effectiveDateTime: '2025-01-02T10:00:00Z', conclusion: 'No  pneumothorax.' },
      { resourceType: 'DiagnosticReport', id: 'r2', effectiveDateTime: '2025-06-30', conclusion: 'Possible small left effusion.' },
      { resourceType: 'DiagnosticReport', id: 'r3', effectiveDateTime: '2024-01-01', conclusion: 'Old report.' },
      { resourceType: 'ServiceRequest', id: 's1', reasonCode: [{ text: 'Sudden chest pain\n after line insertion' }] },
    ];
    const { text, used } = renderClinicalText(resources, template);
    expect(text).toBe(
      'indication: Sudden chest pain after line insertion | prior report 2025-06-30: Possible small left effusion. | ' +
        'prior report 2025-01-02: No pneumothorax. | spo2 91 % | temp 38 Cel',
    );
    expect(used.map((r) => r.id)).toEqual(['s1', 'r2', 'r1', 'o2', 'o1']);
  });

  it('renders the manifest\'s empty text when nothing is known', () => {
    expect(renderClinicalText([{ resourceType: 'Patient', id: 'p' }], template).text).toBe('no clinical information');
  });

  it('formats numbers with one decimal and no trailing .0', () => {
    expect([formatNumber(38), formatNumber(37.5), formatNumber(100), formatNumber(0.3)]).toEqual(['38', '37.5', '100', '0.3']);
  });
});
