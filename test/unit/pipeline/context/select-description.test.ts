/**
 * Selection that survives real archives: a CR/DX image without BodyPartExamined is taken when a
 * description, the protocol or the requested procedure names the chest (mappings/series-selection.yaml,
 * the default rules and the reference model's), and the selection says which rule and which
 * attribute chose it.
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMappings, selectionSchema } from '../../../../src/config/mappings.ts';
import { select } from '../../../../src/pipeline/context/select.ts';
import type { InstanceMeta } from '../../../../src/domain/types.ts';

const mappings = loadMappings('mappings', ['pneumothorax', 'pleural_effusion', 'consolidation', 'lung_nodule']);
const MODEL = 'pacs-triage-cxr-ref';
let n = 0;
const inst = (over: Partial<InstanceMeta>): InstanceMeta => ({
  StudyInstanceUID: '1.2.3',
  SeriesInstanceUID: '1.2.3.1',
  SOPInstanceUID: `1.2.3.1.${++n}`,
  SOPClassUID: '1.2.840.10008.5.1.4.1.1.1',
  Modality: 'DX',
  ViewPosition: 'PA',
  ...over,
});
const DESCRIBED = { default: 'chest radiograph named in a description', [MODEL]: 'adult frontal chest radiograph named in a description' } as const;
const ruleSets = [['default rules', undefined, DESCRIBED.default], [`models.${MODEL}`, MODEL, DESCRIBED[MODEL]]] as const;

/** Descriptions as archives write them, in the languages the rule lists. */
const CHEST_NAMES = [
  'CHEST PA', 'XR CHEST 2V', 'Chest_PA_Standing', 'cxr portable', 'Lungs', 'LUNG',
  'Thorax p.a.', 'Thoraxaufnahme pa', 'Röntgen-Thorax', 'Lunge', 'Lungenaufnahme', 'Lungen 2 Ebenen',
  'Radio pulmonaire', 'Poumons face', 'THORAX FACE',
  'Rx de tórax', 'RX TORAX PA', 'TÓRAX', 'Pulmón', 'pulmones', 'Radiografía pulmonar',
  'Raio-X de tórax', 'PULMÃO', 'pulmões',
  'RX TORACE', 'Torace 2P', 'polmoni', 'Polmone dx',
  'X-thorax', 'Longen',
];
/** Words that look close and are not the chest (or are ambiguous): never enough on their own. */
const NOT_CHEST = [
  'Thoracic spine', 'T-SPINE', 'Rachis thoracique', 'BWS 2 Ebenen', 'Long bones', 'Long leg standing', 'longitudinal',
  'Borst', 'Brust', 'Breast', 'Abdomen', 'Schädel', 'Pulmonary', 'Chesterfield knee', 'Cxray', 'Oblung',
];

describe.each(ruleSets)('series selection without BodyPartExamined (%s)', (_label, modelId, ruleName) => {
  it.each(CHEST_NAMES)('takes a DX image whose SeriesDescription is "%s"', (text) => {
    const sel = select([inst({ SeriesDescription: text })], mappings.selection, modelId);
    expect(sel).toMatchObject({ selected: true, rule: ruleName, selectedBy: { rule: ruleName, attributes: ['Modality', 'SeriesDescription'] } });
  });

  it.each(NOT_CHEST)('does not take one described only as "%s"', (text) => {
    const sel = select([inst({ SeriesDescription: text, StudyDescription: text, ProtocolName: text, RequestedProcedureDescription: text })], mappings.selection, modelId);
    expect(sel.selected).toBe(false);
  });

  it.each(['StudyDescription', 'ProtocolName', 'RequestedProcedureDescription'] as const)('reads %s too, and records it as the attribute that matched', (attribute) => {
    const sel = select([inst({ Modality: 'CR', SeriesDescription: 'PA', [attribute]: 'Thorax' })], mappings.selection, modelId);
    expect(sel).toMatchObject({ selected: true, selectedBy: { rule: ruleName, attributes: ['Modality', attribute] } });
  });

  it('records the first attribute in the order written when several name the chest', () => {
    const sel = select([inst({ SeriesDescription: 'Chest', ProtocolName: 'CHEST_PA', StudyDescription: 'Thorax' })], mappings.selection, modelId);
    expect(sel.selected && sel.selectedBy.attributes).toEqual(['Modality', 'SeriesDescription']);
  });

  it('a BodyPartExamined that names another part wins over a description that names the chest', () => {
    const sel = select([inst({ BodyPartExamined: 'ABDOMEN', SeriesDescription: 'Chest and abdomen' })], mappings.selection, modelId);
    expect(sel.selected).toBe(false);
  });

  it('only CR and DX: a CT or an SR described as the chest is not taken', () => {
    expect(select([inst({ Modality: 'CT', SeriesDescription: 'Thorax' })], mappings.selection, modelId).selected).toBe(false);
    const sr = inst({ Modality: 'DX', SOPClassUID: '1.2.840.10008.5.1.4.1.1.88.34', SeriesDescription: 'Chest' });
    expect(select([sr], mappings.selection, modelId).selected).toBe(false);
  });

  it('an image with BodyPartExamined CHEST is preferred by the first rule, which records BodyPartExamined', () => {
    const described = inst({ SeriesDescription: 'Chest', SeriesNumber: 1 });
    const coded = inst({ BodyPartExamined: 'CHEST', SeriesNumber: 2 });
    const sel = select([described, coded], mappings.selection, modelId);
    expect(sel.selected && sel.instance).toBe(coded);
    expect(sel.selected && sel.selectedBy).toEqual({ rule: modelId ? 'adult frontal chest radiograph' : 'chest radiograph', attributes: ['Modality', 'BodyPartExamined'] });
  });
});

describe('series selection without BodyPartExamined: the model\'s own rules keep their gates', () => {
  it('a described lateral or a localizer is not taken for the reference model; a child is skipped with the reason', () => {
    expect(select([inst({ SeriesDescription: 'Thorax lat', ViewPosition: 'LL' })], mappings.selection, MODEL).selected).toBe(false);
    expect(select([inst({ SeriesDescription: 'Chest', ImageType: ['DERIVED', 'LOCALIZER'] })], mappings.selection, MODEL).selected).toBe(false);
    const child = select([inst({ SeriesDescription: 'Chest', PatientAge: '006Y' })], mappings.selection, MODEL);
    expect(!child.selected && child.reason).toMatch(/patient age 6 years is outside the intended use/);
  });
});

describe('matchAny in the schema and in loadMappings', () => {
  it('an empty matchAny is refused', () => {
    expect(selectionSchema.safeParse({ version: 1, rules: [{ name: 'x', match: {}, matchAny: {} }] }).success).toBe(false);
  });

  it('a rule with only matchAny matches on any one of its attributes; none matching, nothing selected', () => {
    const r = selectionSchema.parse({ version: 1, rules: [{ name: 'any', match: {}, matchAny: { SeriesDescription: '/knee/', ProtocolName: 'KNEE' } }] });
    expect(select([inst({ ProtocolName: 'knee' })], r)).toMatchObject({ selected: true, selectedBy: { rule: 'any', attributes: ['ProtocolName'] } });
    expect(select([inst({ ProtocolName: 'hip' })], r).selected).toBe(false);
  });

  it('names a bad regular expression under matchAny', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sel-any-'));
    cpSync('mappings', dir, { recursive: true });
    writeFileSync(path.join(dir, 'series-selection.yaml'), 'version: 1\nrules: [{name: a, match: {}, matchAny: {ProtocolName: "/(/"}}]\n');
    expect(() => loadMappings(dir)).toThrow(/series-selection\.yaml: rules\.0\.ProtocolName: Invalid regular expression/);
  });
});
