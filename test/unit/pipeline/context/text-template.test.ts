import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMappings } from '../../../../src/config/mappings.ts';
import { readEvalIndex, resourcesOf } from '../../../../src/evaluate/evalset.ts';
import { formatNumber, renderClinicalText, type TextReading, type TextTemplate } from '../../../../src/pipeline/context/text-template.ts';
import type { FhirResource } from '../../../../src/domain/types.ts';

const template: TextTemplate = {
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

  it('with the shipped mapping (caps, report text), every held-out case still renders the Python generator\'s text', async () => {
    const TESTSET = 'models/testset';
    const manifestText = (JSON.parse(readFileSync('models/cxr-triage/manifest.json', 'utf8')) as { text: TextTemplate }).text;
    const mapping = loadMappings('mappings').fhir;
    const index = await readEvalIndex(TESTSET);
    const differ: string[] = [];
    for (const c of index.cases) {
      const resources = resourcesOf(JSON.parse(readFileSync(path.join(TESTSET, c.fhir as string), 'utf8')));
      const rendered = renderClinicalText(resources, manifestText, mapping);
      if (rendered.text !== c.text || rendered.capsHit.length > 0) differ.push(c.id);
    }
    expect(index.cases.length).toBeGreaterThanOrEqual(300);
    expect(differ).toEqual([]);
  });
});

describe('renderClinicalText with the mapping\'s reading and caps', () => {
  const reading = (patch: Partial<{ maxResources: number; maxChars: number; text: TextReading['reports']['text'] }> = {}): TextReading => ({
    caps: { maxResources: patch.maxResources ?? 200, maxChars: patch.maxChars ?? 20_000 },
    reports: { text: patch.text ?? ['conclusion'] },
  });
  const report = (id: string, when: string, extra: Record<string, unknown>): FhirResource => ({ resourceType: 'DiagnosticReport', id, effectiveDateTime: when, ...extra });

  it('reads a report\'s plain-text attachment into {conclusion} when the mapping says so, and says which attachments it passed over', () => {
    const resources = [
      report('r1', '2025-01-01', { presentedForm: [{ contentType: 'application/pdf', data: 'JVBERg==' }, { contentType: 'text/plain', data: Buffer.from('Right  basal\natelectasis.').toString('base64') }] }),
      report('r2', '2025-02-01', { conclusion: 'Clear lungs.' }),
    ];
    expect(renderClinicalText(resources, template).text).toBe('prior report 2025-02-01: Clear lungs.');
    const withForms = renderClinicalText(resources, template, reading({ text: ['conclusion', 'presentedForm'] }));
    expect(withForms.text).toBe('prior report 2025-02-01: Clear lungs. | prior report 2025-01-01: Right basal atelectasis.');
    expect(withForms.unread).toEqual([{ resource: 'DiagnosticReport/r1', reason: 'presentedForm[0]: application/pdf is not text/plain' }]);
  });

  it('renders coded, integer and boolean observation values', () => {
    const t: TextTemplate = { ...template, sections: [{ kind: 'observations', resourceType: 'Observation', latestPerCode: true, template: '{label} {value} {unit}', codes: [{ system: 's', code: 'a', label: 'covid' }, { system: 's', code: 'b', label: 'resp rate' }, { system: 's', code: 'c', label: 'on oxygen' }] }] };
    const o = (id: string, code: string, extra: Record<string, unknown>): FhirResource => ({ resourceType: 'Observation', id, code: { coding: [{ system: 's', code }] }, effectiveDateTime: '2026-01-01', ...extra });
    const text = renderClinicalText([o('1', 'a', { valueCodeableConcept: { coding: [{ display: 'Detected' }] } }), o('2', 'b', { valueInteger: 22 }), o('3', 'c', { valueBoolean: true })], t).text;
    expect(text).toBe('covid Detected | resp rate 22 | on oxygen yes');
  });

  it('caps.maxChars cuts the text at the cap, drops from the basis what the cut left out, and reports counts only', () => {
    const resources = [report('r1', '2025-02-01', { conclusion: 'a'.repeat(30) }), report('r2', '2025-01-01', { conclusion: 'b'.repeat(30) })];
    const full = renderClinicalText(resources, template, reading());
    expect(full.capsHit).toEqual([]);
    const cut = renderClinicalText(resources, template, reading({ maxChars: 40 }));
    expect(cut.text).toBe(full.text.slice(0, 40));
    expect(cut.used.map((r) => r.id)).toEqual(['r1']);
    expect(cut.capsHit).toEqual([{ cap: 'maxChars', limit: 40, count: full.text.length }]);
    // Deterministic, and never half a surrogate pair.
    expect(renderClinicalText(resources, template, reading({ maxChars: 40 }))).toEqual(cut);
    const emoji = renderClinicalText([report('r3', '2025-01-01', { conclusion: '😀😀😀' })], { ...template, sections: [{ kind: 'priorReports', resourceType: 'DiagnosticReport', template: '{conclusion}', max: 1, order: 'newest-first' }] }, reading({ maxChars: 3 }));
    expect(emoji.text).toBe('😀');
  });
});
