import { describe, expect, it } from 'vitest';
import { loadMappings, selectionSchema, type SelectionRules } from '../../../../src/config/mappings.ts';
import { patientAgeYears, select } from '../../../../src/pipeline/context/select.ts';
import type { InstanceMeta } from '../../../../src/domain/types.ts';

const mappings = loadMappings('mappings', ['pneumothorax', 'pleural_effusion', 'consolidation', 'lung_nodule']);
let n = 0;
const inst = (over: Partial<InstanceMeta>): InstanceMeta => ({
  StudyInstanceUID: '1.2.3',
  SeriesInstanceUID: '1.2.3.1',
  SOPInstanceUID: `1.2.3.1.${++n}`,
  SOPClassUID: '1.2.840.10008.5.1.4.1.1.1',
  ...over,
});
const rules = (raw: unknown): SelectionRules => selectionSchema.parse(raw);
const chest = { Modality: 'DX', BodyPartExamined: 'CHEST', ViewPosition: 'PA', Rows: 2048, Columns: 2048 };

describe('select: matchers', () => {
  it('numeric ranges match numbers and numeric strings, inclusive at both ends; non-numbers never match', () => {
    const r = rules({ version: 1, rules: [{ name: 'big', match: { Rows: { min: 512, max: 4096 } } }] });
    expect(select([inst({ Rows: 512 })], r).selected).toBe(true);
    expect(select([inst({ Rows: 4096 })], r).selected).toBe(true);
    expect(select([inst({ Rows: 511 })], r).selected).toBe(false);
    const s = rules({ version: 1, rules: [{ name: 'series', match: { SeriesNumber: { max: 10 }, StudyID: { min: 3 } } }] });
    expect(select([inst({ SeriesNumber: 2, StudyID: ' 7 ' })], s).selected).toBe(true);
    expect(select([inst({ SeriesNumber: 2, StudyID: 'seven' })], s).selected).toBe(false);
    expect(select([inst({ SeriesNumber: 2 })], s).selected).toBe(false);
  });

  it('a list mixes equality, regex and range; multi-valued attributes (ImageType) match on any value', () => {
    const r = rules({ version: 1, rules: [{ name: 'x', match: { Modality: ['dx', '/^c/'], Rows: [{ max: 10 }, { min: 1000 }] }, exclude: { ImageType: ['localizer'] } }] });
    expect(select([inst({ Modality: 'CR', Rows: 2000 })], r).selected).toBe(true);
    expect(select([inst({ Modality: 'DX', Rows: 5 })], r).selected).toBe(true);
    expect(select([inst({ Modality: 'MR', Rows: 5 })], r).selected).toBe(false);
    expect(select([inst({ Modality: 'DX', Rows: 500 })], r).selected).toBe(false);
    expect(select([inst({ Modality: 'DX', Rows: 5, ImageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'] })], r).selected).toBe(false);
  });

  it('the schema refuses an empty range and min > max', () => {
    expect(selectionSchema.safeParse({ version: 1, rules: [{ name: 'x', match: { Rows: {} } }] }).success).toBe(false);
    expect(selectionSchema.safeParse({ version: 1, rules: [{ name: 'x', match: { Rows: { min: 5, max: 1 } } }] }).success).toBe(false);
  });
});

describe('select: patient age', () => {
  it('reads PatientAge (Y, M, W, D), else PatientBirthDate at StudyDate (birthday not yet reached)', () => {
    expect(patientAgeYears({ PatientAge: '045Y' })).toBe(45);
    expect(patientAgeYears({ PatientAge: '018M' })).toBe(1.5);
    expect(patientAgeYears({ PatientAge: '052W' })).toBeCloseTo(0.997, 3);
    expect(patientAgeYears({ PatientAge: '010D' })).toBeCloseTo(0.027, 3);
    expect(patientAgeYears({ PatientBirthDate: '20000615', StudyDate: '20180614' })).toBe(17);
    expect(patientAgeYears({ PatientBirthDate: '20000615', StudyDate: '20180615' })).toBe(18);
    expect(patientAgeYears({ PatientBirthDate: '2000', StudyDate: '20180615' })).toBeUndefined();
    expect(patientAgeYears({})).toBeUndefined();
  });
});

describe('select: rules per model and intended-use gates (mappings/series-selection.yaml)', () => {
  const model = 'pacs-triage-cxr-ref';

  it('uses the model\'s own rules by id, and the default rules for any other model', () => {
    const sel = select([inst(chest)], mappings.selection, model);
    expect(sel).toMatchObject({ selected: true, rule: 'adult frontal chest radiograph' });
    expect(select([inst(chest)], mappings.selection, 'another-model')).toMatchObject({ selected: true, rule: 'chest radiograph' });
    expect(select([inst(chest)], mappings.selection)).toMatchObject({ selected: true, rule: 'chest radiograph' });
  });

  it('skips a child by PatientAge or birth date, with the reason', () => {
    const child = select([inst({ ...chest, PatientAge: '009Y' })], mappings.selection, model);
    expect(child).toEqual({ selected: false, reason: 'patient age 9 years is outside the intended use of the pacs-triage-cxr-ref rules (≥ 18 years)' });
    const born = select([inst({ ...chest, PatientBirthDate: '20100301', StudyDate: '20250228' })], mappings.selection, model);
    expect(!born.selected && born.reason).toMatch(/patient age 14 years is outside/);
    expect(select([inst({ ...chest, PatientAge: '040Y' })], mappings.selection, model).selected).toBe(true);
    // unknownAge: allow
    expect(select([inst(chest)], mappings.selection, model).selected).toBe(true);
  });

  it('unknownAge: skip refuses a study whose age cannot be told', () => {
    const r = rules({ version: 1, rules: [{ name: 'any', match: { Modality: 'DX' } }], gates: { patientAgeYears: { min: 18, max: 90 }, unknownAge: 'skip' } });
    const sel = select([inst(chest)], r);
    expect(!sel.selected && sel.reason).toMatch(/^patient age unknown .* need 18–90 years$/);
  });

  it('keeps only the ViewPositions the model is made for, and says so when none is left', () => {
    const lateral = inst({ ...chest, ViewPosition: 'LL' });
    const ap = inst({ ...chest, ViewPosition: 'ap' });
    const sel = select([lateral, ap], mappings.selection, model);
    expect(sel).toMatchObject({ selected: true, candidates: 1 });
    expect(sel.selected && sel.instance).toBe(ap);
    const none = select([lateral], mappings.selection, model);
    expect(none).toEqual({ selected: false, reason: 'no series has a ViewPosition the model is made for (PA, AP); the study has LL' });
  });

  it('excludes localizers by the model\'s rules', () => {
    const sel = select([inst({ ...chest, ImageType: ['DERIVED', 'LOCALIZER'] })], mappings.selection, model);
    expect(!sel.selected && sel.reason).toMatch(/no series matches the selection rules \(adult frontal chest radiograph, adult frontal chest radiograph named in a description\)/);
  });

  it('is pure: same input, same output, inputs untouched', () => {
    const input = [inst({ ...chest, ViewPosition: 'AP', SeriesNumber: 2 }), inst({ ...chest, SeriesNumber: 1 })];
    const copy = structuredClone(input);
    expect(select(input, mappings.selection, model)).toEqual(select(copy, mappings.selection, model));
    expect(input).toEqual(copy);
  });
});

describe('loadMappings: selection', () => {
  it('names a bad regular expression under models.<id>', async () => {
    const { mkdtempSync, cpSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/sel-`);
    cpSync('mappings', dir, { recursive: true });
    writeFileSync(`${dir}/series-selection.yaml`, 'version: 1\nrules: [{name: a, match: {Modality: DX}}]\nmodels:\n  m1:\n    rules: [{name: b, match: {Modality: "/(/"}}]\n');
    expect(() => loadMappings(dir)).toThrow(/series-selection\.yaml: models\.m1\.rules\.0\.Modality: Invalid regular expression/);
  });
});
