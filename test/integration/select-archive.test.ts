/**
 * Selection that survives real archives, against a real Orthanc: a DX image without
 * BodyPartExamined reaches the selection rules with its ProtocolName and
 * RequestedProcedureDescription (asked for in the QIDO-RS includefield list, from the one
 * attribute table), and is taken on the attribute that names the chest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DicomWebClient } from '../../src/adapters/dicomweb/client.ts';
import { loadMappings } from '../../src/config/mappings.ts';
import { select } from '../../src/pipeline/context/select.ts';
import { startOrthanc, type OrthancServer } from '../../src/sandbox/orthanc.ts';
import { part10, type Element } from '../harness/dicom-builder.ts';
import { requireOrthanc } from '../harness/require-servers.ts';

const STUDY = '2.25.7301';
const DX = '1.2.840.10008.5.1.4.1.1.1.1';

/** A small DX For Presentation image; `described` are the attributes that name (or not) the body part. */
function dx(series: string, sop: string, described: Element[]): Uint8Array {
  return part10([
    { tag: 0x00080016, vr: 'UI', value: DX },
    { tag: 0x00080018, vr: 'UI', value: sop },
    { tag: 0x00080020, vr: 'DA', value: '20250301' },
    { tag: 0x00080060, vr: 'CS', value: 'DX' },
    { tag: 0x00100010, vr: 'PN', value: 'ARCHIVE^TEST' },
    { tag: 0x00100020, vr: 'LO', value: 'SEL-ARCHIVE-1' },
    { tag: 0x00101010, vr: 'AS', value: '054Y' },
    { tag: 0x00185101, vr: 'CS', value: 'PA' },
    { tag: 0x0020000d, vr: 'UI', value: STUDY },
    { tag: 0x0020000e, vr: 'UI', value: series },
    { tag: 0x00200011, vr: 'IS', value: series.slice(-1) },
    { tag: 0x00280002, vr: 'US', value: 1 },
    { tag: 0x00280004, vr: 'CS', value: 'MONOCHROME2' },
    { tag: 0x00280010, vr: 'US', value: 8 },
    { tag: 0x00280011, vr: 'US', value: 8 },
    { tag: 0x00280100, vr: 'US', value: 16 },
    { tag: 0x00280101, vr: 'US', value: 12 },
    { tag: 0x00280102, vr: 'US', value: 11 },
    { tag: 0x00280103, vr: 'US', value: 0 },
    { tag: 0x7fe00010, vr: 'OW', value: new Uint8Array(128) },
    ...described,
  ]);
}

describe.skipIf(!requireOrthanc())('series selection without BodyPartExamined, on a real Orthanc', () => {
  let orthanc: OrthancServer;
  let dicomweb: DicomWebClient;
  const mappings = loadMappings('mappings', ['pneumothorax', 'pleural_effusion', 'consolidation', 'lung_nodule']);

  beforeAll(async () => {
    orthanc = await startOrthanc({ dicomServer: false });
    dicomweb = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, auth: orthanc.auth, timeoutMs: 10_000 });
    await dicomweb.store(undefined, [
      // A scout of the abdomen: described, but not the chest.
      dx('2.25.7301.1', '2.25.7301.1.1', [{ tag: 0x0008103e, vr: 'LO', value: 'Abdomen' }]),
      // The chest film, as many archives send it: no BodyPartExamined, the part named only in the protocol and the order.
      dx('2.25.7301.2', '2.25.7301.2.1', [
        { tag: 0x0008103e, vr: 'LO', value: 'PA' },
        { tag: 0x00181030, vr: 'LO', value: 'THORAX_PA_STEHEND' },
        { tag: 0x00321060, vr: 'LO', value: 'RX TORAX PA' },
      ]),
    ]);
  }, 120_000);

  afterAll(async () => {
    dicomweb?.close();
    await orthanc?.cleanup();
  });

  it('QIDO-RS returns ProtocolName and RequestedProcedureDescription, and the chest film is taken on its ProtocolName', async () => {
    const instances = await dicomweb.studyInstances(STUDY);
    const film = instances.find((i) => i.SOPInstanceUID === '2.25.7301.2.1');
    expect(film).toMatchObject({ Modality: 'DX', ProtocolName: 'THORAX_PA_STEHEND', RequestedProcedureDescription: 'RX TORAX PA' });
    expect(film?.BodyPartExamined).toBeUndefined();
    for (const modelId of [undefined, 'pacs-triage-cxr-ref']) {
      const sel = select(instances, mappings.selection, modelId);
      expect(sel.selected && sel.instance.SOPInstanceUID).toBe('2.25.7301.2.1');
      expect(sel.selected && sel.selectedBy.attributes).toEqual(['Modality', 'ProtocolName']);
    }
  });
});
