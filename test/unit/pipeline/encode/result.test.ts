/**
 * The encode stage's SR Instance Number: every result of a study shares the SR series, so each
 * gets its own number, stored with the result so that a re-encode of the same key is
 * byte-identical — at most one extra store call per new result.
 */
import { describe, expect, it } from 'vitest';
import type { StoredResult } from '../../../../src/domain/records.ts';
import { readSr } from '../../../../src/pipeline/encode/sr-read.ts';
import { encodeStage, srInstanceNumber, type EncodeInput } from '../../../../src/pipeline/encode/result.ts';
import type { PipelineDeps } from '../../../../src/pipeline/ports.ts';
import { stageTimer } from '../../../../src/pipeline/timing.ts';
import { UID_ROOT, inference, mappings, model, sourceInstance, study } from '../../../harness/encode-fixtures.ts';

function fakeStore(results: StoredResult[]): { resultsOf(uid: string): Promise<StoredResult[]>; calls: number } {
  const store = {
    calls: 0,
    async resultsOf(uid: string): Promise<StoredResult[]> {
      store.calls++;
      return results.filter((r) => r.studyInstanceUID === uid);
    },
  };
  return store;
}

function stored(key: string, instanceNumber?: number): StoredResult {
  return {
    resultKey: key,
    studyInstanceUID: study.StudyInstanceUID,
    sourceSopInstanceUIDs: [sourceInstance.SOPInstanceUID],
    srSopInstanceUID: '1.2.3.4',
    srSeriesInstanceUID: '1.2.3',
    priority: 'routine',
    findings: inference.findings,
    modelId: inference.modelId,
    modelVersion: inference.modelVersion,
    executionProvider: 'cpu',
    createdAt: Date.parse('2024-05-01T10:00:00Z'),
    written: { pacs: true, fhir: true, metadata: true },
    notes: [],
    ...(instanceNumber === undefined ? {} : { instanceNumber }),
  };
}

describe('srInstanceNumber: an Instance Number per result of the study, unique in the shared SR series', () => {
  const uid = study.StudyInstanceUID;

  it('the first result of a study is 1, without asking the store', async () => {
    const store = fakeStore([]);
    expect(await srInstanceNumber(uid, undefined, undefined, store)).toBe(1);
    expect(store.calls).toBe(0);
  });

  it('a result with the same key keeps its own number (1 for one stored before numbers were kept)', async () => {
    const store = fakeStore([stored('a', 1), stored('b', 2)]);
    expect(await srInstanceNumber(uid, stored('b', 2), stored('b', 2), store)).toBe(2);
    expect(await srInstanceNumber(uid, stored('b'), stored('b'), store)).toBe(1);
    expect(store.calls).toBe(0);
  });

  it('a new result follows the previous one (its number + 1), without asking the store', async () => {
    const store = fakeStore([stored('a', 1), stored('b', 2)]);
    expect(await srInstanceNumber(uid, undefined, stored('b', 2), store)).toBe(3);
    expect(store.calls).toBe(0);
  });

  it('after a previous result stored without a number, a new one counts the study\'s results: one store call', async () => {
    const store = fakeStore([stored('a'), stored('b')]);
    expect(await srInstanceNumber(uid, undefined, stored('b'), store)).toBe(3);
    expect(store.calls).toBe(1);
  });
});

describe('encodeStage writes and stores the Instance Number', () => {
  const manifest = {
    id: inference.modelId,
    version: inference.modelVersion,
    deviceUid: inference.deviceUid,
    name: model.name,
    manufacturer: model.manufacturer,
    outputs: { scores: { name: 'probabilities', kind: 'probabilities', activation: 'none' }, saliency: { name: 'saliency', threshold: 0.5 } },
  };
  const deps = (results: StoredResult[]): PipelineDeps =>
    ({
      model: { manifest, provider: 'cpu' },
      mappings: { findings: mappings() },
      uidRoot: UID_ROOT,
      software: { name: 'pacs-triage', version: '0.1.0' },
      store: fakeStore(results),
      now: () => new Date('2024-05-01T10:20:30Z'),
    }) as unknown as PipelineDeps;
  const input = (key: string, sameKey?: StoredResult, previous?: StoredResult): EncodeInput => ({
    key,
    study,
    instance: sourceInstance,
    findings: inference.findings,
    priority: 'urgent',
    clinical: { resources: [] },
    usedVersions: [],
    sameKey,
    previous,
    writesOrder: false,
  });

  it('records the selection rule and attributes that chose the image; the SR does not depend on them', async () => {
    const selectedBy = { rule: 'chest radiograph named in a description', attributes: ['Modality', 'SeriesDescription'] };
    const withRule = await encodeStage({ ...input('key-1'), selectedBy }, deps([]), stageTimer({}));
    const without = await encodeStage(input('key-1'), deps([]), stageTimer({}));
    expect(withRule.result.selectedBy).toEqual(selectedBy);
    expect(without.result).not.toHaveProperty('selectedBy');
    expect(Buffer.from(withRule.sr.part10).equals(Buffer.from(without.sr.part10))).toBe(true);
  });

  it('a rerun with new inputs gets the next number in the SR and in the stored result; re-encoding that result is byte-identical', async () => {
    const first = await encodeStage(input('key-1'), deps([]), stageTimer({}));
    expect(first.result.instanceNumber).toBe(1);
    expect(readSr(first.sr.part10).instanceNumber).toBe(1);

    const second = await encodeStage(input('key-2', undefined, first.result), deps([first.result]), stageTimer({}));
    expect(second.result.instanceNumber).toBe(2);
    expect(readSr(second.sr.part10).instanceNumber).toBe(2);
    expect(second.sr.seriesInstanceUID).toBe(first.sr.seriesInstanceUID);

    const again = await encodeStage(input('key-2', second.result, second.result), deps([first.result, second.result]), stageTimer({}));
    expect(again.result.instanceNumber).toBe(2);
    expect(Buffer.from(again.sr.part10).equals(Buffer.from(second.sr.part10))).toBe(true);
  });

  it("keeps the study's worklist fields with the result; the patient's name and ID only with keepPatientIdentity", async () => {
    const off = await encodeStage(input('key-1'), deps([]), stageTimer({}));
    expect(off.result.study).toMatchObject({ accessionNumber: study.AccessionNumber });
    expect(off.result.study).not.toHaveProperty('patientName');
    expect(off.result.study).not.toHaveProperty('patientId');
    const on = await encodeStage(input('key-1'), { ...deps([]), keepPatientIdentity: true }, stageTimer({}));
    expect(on.result.study).toMatchObject({ patientName: study.PatientName, patientId: study.PatientID });
    expect(Buffer.from(on.sr.part10).equals(Buffer.from(off.sr.part10))).toBe(true);
  });
});
