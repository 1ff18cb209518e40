import { describe, expect, it } from 'vitest';
import { attachmentText, observationValue, reportText, type Unread } from '../../../../src/pipeline/context/resource-text.ts';
import type { FhirResource } from '../../../../src/domain/types.ts';

const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64');
const dr = (extra: Record<string, unknown>): FhirResource => ({ resourceType: 'DiagnosticReport', id: 'r1', ...extra });
const obs = (extra: Record<string, unknown>): FhirResource => ({ resourceType: 'Observation', id: 'o1', ...extra });

describe('reportText: where a report keeps its text', () => {
  it('conclusion verbatim; presentedForm only when the mapping lists it, in the listed order', () => {
    const both = dr({ conclusion: 'No  pneumothorax.', presentedForm: [{ contentType: 'text/plain', data: b64('Full report text.') }] });
    expect(reportText(both, ['conclusion'])).toBe('No  pneumothorax.');
    expect(reportText(both, ['presentedForm', 'conclusion'])).toBe('Full report text.');
    expect(reportText(dr({ conclusion: '  ', presentedForm: [{ contentType: 'text/plain', data: b64('x') }] }), ['conclusion'])).toBeUndefined();
    expect(reportText(dr({ conclusion: '  ', presentedForm: [{ contentType: 'text/plain', data: b64('x') }] }), ['conclusion', 'presentedForm'])).toBe('x');
  });

  it('presentedForm: the first text/plain attachment with data; the others are passed over with their reason', () => {
    const unread: Unread[] = [];
    const report = dr({
      presentedForm: [
        { contentType: 'application/pdf', data: b64('%PDF-1.7') },
        { contentType: 'text/plain', url: 'https://reports.example/r1.txt' },
        { contentType: 'text/html', data: b64('<p>x</p>') },
        { contentType: 'text/plain; charset=utf-8', data: b64('Stable cardiomegaly.') },
      ],
    });
    expect(reportText(report, ['presentedForm'], unread)).toBe('Stable cardiomegaly.');
    expect(unread).toEqual([
      { resource: 'DiagnosticReport/r1', reason: 'presentedForm[0]: application/pdf is not text/plain' },
      { resource: 'DiagnosticReport/r1', reason: 'presentedForm[1]: only a url (not fetched)' },
      { resource: 'DiagnosticReport/r1', reason: 'presentedForm[2]: text/html is not text/plain' },
    ]);
  });
});

describe('attachmentText: text/plain data in its charset', () => {
  it('decodes UTF-8 by default, and the charset the contentType names (ISO-8859-1, UTF-16LE)', () => {
    expect(attachmentText({ contentType: 'text/plain', data: b64('Épanchement pleural') })).toEqual({ text: 'Épanchement pleural' });
    expect(attachmentText({ contentType: 'Text/Plain; Charset="ISO-8859-1"', data: b64(new Uint8Array([0xc9, 0x70, 0x61])) })).toEqual({ text: 'Épa' });
    expect(attachmentText({ contentType: 'text/plain; charset=utf-16le', data: b64(Buffer.from('ok', 'utf16le')) })).toEqual({ text: 'ok' });
    expect(attachmentText({ contentType: 'text/plain', data: `${b64('line one')}\n` })).toEqual({ text: 'line one' });
  });

  it('refuses, with the reason, what is not plain text it can decode', () => {
    expect(attachmentText({ data: b64('x') })).toEqual({ reason: 'no contentType' });
    expect(attachmentText({ contentType: 'text/plain' })).toEqual({ reason: 'no data' });
    expect(attachmentText({ contentType: 'text/plain', data: 'not base64!' })).toEqual({ reason: 'data is not base64' });
    expect(attachmentText({ contentType: 'text/plain; charset=klingon', data: b64('x') })).toEqual({ reason: 'unknown charset klingon' });
    expect(attachmentText({ contentType: 'text/plain', data: b64(new Uint8Array([0xff, 0xfe, 0x41, 0xc3])) })).toEqual({ reason: 'data is not valid utf-8' });
  });
});

describe('observationValue: {value} and {unit}', () => {
  it('valueQuantity with one decimal and its unit (else code), its comparator kept', () => {
    expect(observationValue(obs({ valueQuantity: { value: 38.04, unit: 'Cel' } }))).toEqual({ value: '38', unit: 'Cel' });
    expect(observationValue(obs({ valueQuantity: { value: 91, code: '%' } }))).toEqual({ value: '91', unit: '%' });
    expect(observationValue(obs({ valueQuantity: { value: 5, comparator: '<', unit: 'mg/L' } }))).toEqual({ value: '<5', unit: 'mg/L' });
  });

  it('valueString verbatim, valueCodeableConcept by its text else the first display, valueInteger, valueBoolean as yes/no', () => {
    expect(observationValue(obs({ valueString: 'on room air' }))).toEqual({ value: 'on room air', unit: '' });
    expect(observationValue(obs({ valueCodeableConcept: { text: 'Positive', coding: [{ display: 'Detected' }] } }))).toEqual({ value: 'Positive', unit: '' });
    expect(observationValue(obs({ valueCodeableConcept: { coding: [{ code: '10828004' }, { display: 'Positive' }] } }))).toEqual({ value: 'Positive', unit: '' });
    expect(observationValue(obs({ valueInteger: 18 }))).toEqual({ value: '18', unit: '' });
    expect(observationValue(obs({ valueBoolean: false }))).toEqual({ value: 'no', unit: '' });
  });

  it('reads nothing from a value it cannot say as "{value} {unit}"', () => {
    expect(observationValue(obs({ valueRange: { low: { value: 1 }, high: { value: 2 } } }))).toBeUndefined();
    expect(observationValue(obs({ valueCodeableConcept: { coding: [{ code: 'x' }] } }))).toBeUndefined();
    expect(observationValue(obs({ dataAbsentReason: { text: 'asked but declined' } }))).toBeUndefined();
  });
});
