/** doctor's checks of the model against the mappings: findings coded, priorities reachable, selection rules for the model. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadMappings, type Mappings } from '../../../src/config/mappings.ts';
import { parseManifest, type Manifest } from '../../../src/config/manifest.ts';
import { modelMappingChecks } from '../../../src/compose/doctor/model.ts';

const manifest = parseManifest(JSON.parse(readFileSync('models/cxr-triage/manifest.json', 'utf8')));
const mappings = loadMappings('mappings', manifest.findings.map((f) => f.code));
const DIR = '/srv/mappings';
const check = (name: string, m: Manifest = manifest, maps: Mappings = mappings) => modelMappingChecks(m, maps, DIR).find((c) => c.name === name);

describe('doctor: the model against the mappings', () => {
  it('the shipped model and mappings: all ok, the model\'s own rules named', () => {
    expect(modelMappingChecks(manifest, mappings, DIR).map((c) => [c.name, c.status])).toEqual([
      ['findings coded', 'ok'],
      ['priority rules', 'ok'],
      ['selection rules', 'ok'],
    ]);
  });

  it('a finding without codes in findings.yaml: FAIL naming it, the file and what to add', () => {
    const more = { ...manifest, findings: [...manifest.findings, { code: 'cardiomegaly', display: 'Cardiomegaly', threshold: 0.5 }] };
    expect(check('findings coded', more)).toEqual({
      name: 'findings coded',
      status: 'fail',
      detail: `cardiomegaly of model pacs-triage-cxr-ref has no coded concept in ${DIR}/findings.yaml: the SR and the RiskAssessment cannot be written for any study`,
      fix: `add findings.cardiomegaly (concept: a SNOMED CT code; radlex: a RadLex code) to ${DIR}/findings.yaml`,
    });
  });

  it('a finding no rule can raise above routine: a warning, not a failure', () => {
    const priority = { ...mappings.priority, rules: mappings.priority.rules.filter((r) => r.finding !== 'lung_nodule') };
    expect(check('priority rules', manifest, { ...mappings, priority })).toMatchObject({
      status: 'warn',
      detail: `lung_nodule can never raise a study's priority: no rule in ${DIR}/priority.yaml gives it more than routine (still reported in the SR and the RiskAssessment)`,
    });
    const routineOnly = { ...mappings.priority, rules: [...priority.rules, { finding: 'lung_nodule', minProbability: 0.5, priority: 'routine' as const }] };
    expect(check('priority rules', manifest, { ...mappings, priority: routineOnly })?.status).toBe('warn');
  });

  it('a model without its own rules uses the defaults, and says so', () => {
    expect(check('selection rules', { ...manifest, id: 'another-model' })).toMatchObject({
      status: 'ok',
      detail: 'model another-model uses the default rules (no models.another-model in series-selection.yaml): chest radiograph, chest radiograph named in a description',
    });
  });

  it('a rule naming an attribute pacs-triage does not read (a typo) is a FAIL naming its path', () => {
    const own = mappings.selection.models?.['pacs-triage-cxr-ref'];
    if (!own) throw new Error('the shipped mappings have rules for the reference model');
    const typo = { ...own, rules: [{ name: 'typo', match: { Modality: 'DX', BodyPart: 'CHEST' }, exclude: { ImgType: 'LOCALIZER' } }], prefer: { View: ['PA'] } };
    const selection = { ...mappings.selection, models: { 'pacs-triage-cxr-ref': typo } };
    expect(check('selection rules', manifest, { ...mappings, selection })).toMatchObject({
      status: 'fail',
      detail:
        'model pacs-triage-cxr-ref uses models.pacs-triage-cxr-ref; models.pacs-triage-cxr-ref.rules.0.match.BodyPart, models.pacs-triage-cxr-ref.rules.0.exclude.ImgType, models.pacs-triage-cxr-ref.prefer.View name attributes pacs-triage does not read, so they never match',
      fix: expect.stringContaining('BodyPartExamined, Columns, ImageType'),
    });
  });
});
