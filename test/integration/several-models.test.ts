/**
 * Two models in one service (config `models`), against the real servers (Orthanc 1.10 + the
 * sandbox FHIR server): each study gets one SR per model, in separate series of the study, and
 * one RiskAssessment per model on the FHIR server; the SRs pass dciodvfy; a second pass writes
 * nothing new; the image-only model's SR has no SCOORD.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPart10 } from '../../src/dicom/part10.ts';
import { cli, waitFor } from '../harness/cli.ts';
import { requireOrthanc } from '../harness/require-servers.ts';
import { ACCEPTED_DCIODVFY_WARNING, dciodvfy, dsrdump } from '../harness/validators.ts';
import { startRig, type Rig } from '../harness/rig.ts';

const DEMO = 'test/fixtures/demo/dicom';
const MODELS = ['models/cxr-triage', 'models/cxr-image-only'];

type Resource = Record<string, unknown> & { resourceType: string; identifier?: { value: string }[]; method?: { coding?: { code: string }[] } };

describe.skipIf(!requireOrthanc())('several models in one service', () => {
  let rig: Rig;
  let configFile: string;
  const files = readdirSync(DEMO).filter((f) => f.endsWith('.dcm')).sort().slice(0, 2).map((f) => path.join(DEMO, f));
  const studyUids = files.map((f) => String(readPart10(readFileSync(f))['StudyInstanceUID']));

  async function runOnce(): Promise<{ done: number; failed: number }> {
    const run = await cli(['run-once', '--config', configFile, '--json']);
    expect(run.stderr).toBe('');
    return JSON.parse(run.stdout) as { done: number; failed: number };
  }
  async function riskAssessments(): Promise<Resource[]> {
    const bundle = (await (await fetch(`${rig.fhir.url}/RiskAssessment?_count=1000`)).json()) as { entry?: { resource: Resource }[] };
    return (bundle.entry ?? []).map((e) => e.resource);
  }

  beforeAll(async () => {
    rig = await startRig('several-models');
    configFile = rig.config('config.json', { models: MODELS });
    const parts = files.map((f) => readFileSync(f));
    await rig.dicomweb.store(undefined, parts.map((p) => new Uint8Array(p)));
    await waitFor('the studies stable in Orthanc', async () => {
      const stable = (await rig.rest.changes(0, 1000)).changes.filter((c) => c.changeType === 'StableStudy').length;
      return stable >= files.length ? true : undefined;
    }, 30_000);
    expect(await runOnce()).toMatchObject({ done: files.length, failed: 0 });
  }, 240_000);

  afterAll(async () => {
    await rig?.close();
  });

  it('one SR per model per study, each model in its own series; dciodvfy 0 errors; no SCOORD from the image-only model', async () => {
    expect(studyUids).toHaveLength(files.length);
    for (const uid of studyUids) {
      const srs = (await rig.dicomweb.studyInstances(uid)).filter((i) => i.Modality === 'SR');
      expect(srs).toHaveLength(2);
      expect(new Set(srs.map((s) => s.SeriesInstanceUID)).size).toBe(2);
      const models: string[] = [];
      for (const sr of srs) {
        const file = path.join(rig.dir, `${sr.SOPInstanceUID}.dcm`);
        writeFileSync(file, await rig.dicomweb.retrieveInstance(uid, sr.SeriesInstanceUID!, sr.SOPInstanceUID));
        const result = dciodvfy(file);
        expect(result.errors, result.output).toEqual([]);
        for (const w of result.warnings) expect(w, result.output).toMatch(ACCEPTED_DCIODVFY_WARNING);
        const tree = dsrdump(file);
        const model = tree.includes('pacs-triage-cxr-image-only') ? 'image-only' : 'reference';
        models.push(model);
        if (model === 'image-only') expect(tree).not.toContain('SCOORD');
      }
      expect(models.sort()).toEqual(['image-only', 'reference']);
    }
  });

  it('one RiskAssessment per model per study on the FHIR server; a second pass writes nothing new', async () => {
    const count = async (): Promise<Record<string, number>> => {
      const byModel: Record<string, number> = {};
      for (const ra of await riskAssessments()) {
        const code = ra.method?.coding?.[0]?.code ?? '?';
        byModel[code] = (byModel[code] ?? 0) + 1;
      }
      return byModel;
    };
    expect(await count()).toEqual({ 'pacs-triage-cxr-ref': files.length, 'pacs-triage-cxr-image-only': files.length });
    await runOnce();
    expect(await count()).toEqual({ 'pacs-triage-cxr-ref': files.length, 'pacs-triage-cxr-image-only': files.length });
    for (const uid of studyUids) expect((await rig.dicomweb.studyInstances(uid)).filter((i) => i.Modality === 'SR')).toHaveLength(2);
  }, 120_000);
});
