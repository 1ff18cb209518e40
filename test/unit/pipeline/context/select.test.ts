import { describe, expect, it } from 'vitest';
import { loadMappings } from '../../../../src/config/mappings.ts';
import { selectInstance } from '../../../../src/pipeline/context/select.ts';
import { priorityOf } from '../../../../src/domain/priority.ts';
import type { Finding, InstanceMeta } from '../../../../src/domain/types.ts';

const mappings = loadMappings('mappings', ['pneumothorax', 'pleural_effusion', 'consolidation', 'lung_nodule']);
const inst = (over: Partial<InstanceMeta>): InstanceMeta => ({
  StudyInstanceUID: '1.2.3',
  SeriesInstanceUID: '1.2.3.1',
  SOPInstanceUID: `1.2.3.1.${Math.random().toString().slice(2, 8)}`,
  SOPClassUID: '1.2.840.10008.5.1.4.1.1.1',
  ...over,
});

describe('selectInstance with mappings/series-selection.yaml', () => {
  it('selects a chest radiograph, case-insensitively, preferring PA over lateral', () => {
    const lateral = inst({ Modality: 'DX', BodyPartExamined: 'chest', ViewPosition: 'LL', SeriesNumber: 1 });
    const pa = inst({ Modality: 'DX', BodyPartExamined: 'CHEST', ViewPosition: 'PA', SeriesNumber: 2 });
    const sel = selectInstance([lateral, pa], mappings.selection);
    expect(sel).toMatchObject({ selected: true, rule: 'chest radiograph', candidates: 2 });
    expect(sel.selected && sel.instance).toBe(pa);
  });

  it('never selects an SR (our own output), and says why nothing was selected', () => {
    const sr = inst({ Modality: 'CR', BodyPartExamined: 'CHEST', SOPClassUID: '1.2.840.10008.5.1.4.1.1.88.34' });
    const ct = inst({ Modality: 'CT', BodyPartExamined: 'ABDOMEN' });
    const sel = selectInstance([sr, ct], mappings.selection);
    expect(sel.selected).toBe(false);
    expect(!sel.selected && sel.reason).toMatch(/no series matches the selection rules \(chest radiograph, chest radiograph named in a description\).*CR\/CHEST, CT\/ABDOMEN/);
  });

  it('matches a regular expression value', () => {
    expect(selectInstance([inst({ Modality: 'CR', BodyPartExamined: 'LUNG' })], mappings.selection).selected).toBe(true);
  });
});

describe('priorityOf with mappings/priority.yaml', () => {
  const f = (code: string, probability: number): Finding => ({ code, display: code, probability, threshold: 0.5, positive: probability >= 0.5 });
  it('takes the highest priority any rule gives', () => {
    expect(priorityOf([f('pneumothorax', 0.9), f('lung_nodule', 0.9)], mappings.priority)).toBe('stat');
    expect(priorityOf([f('pleural_effusion', 0.85)], mappings.priority)).toBe('asap');
    expect(priorityOf([f('consolidation', 0.6)], mappings.priority)).toBe('urgent');
    expect(priorityOf([f('pneumothorax', 0.2), f('consolidation', 0.1)], mappings.priority)).toBe('routine');
  });
});

describe('loadMappings', () => {
  it('refuses a priority rule for a finding the model does not have, naming the file and path', () => {
    expect(() => loadMappings('mappings', ['pneumothorax'])).toThrow(/priority\.yaml: rules\.1\.finding: "pleural_effusion" is not a finding of the model/);
  });
});
