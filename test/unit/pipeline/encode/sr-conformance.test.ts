/**
 * Regression tests for what an independent audit of our SRs found, one per finding, named after
 * what each pins: Referenced Frame Number for a multi-frame source, Content Template Sequence on
 * the TID 1410 and TID 1600 containers, an Instance Number per result, and 99IHE declared in the
 * Coding Scheme Identification Sequence. Every SR here also passes dciodvfy and reads back.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { InstanceMeta } from '../../../../src/domain/types.ts';
import { readPart10 } from '../../../../src/dicom/part10.ts';
import { readSr, readSrFindings, srRepresentation } from '../../../../src/pipeline/encode/sr-read.ts';
import { encodeSr, type SrEncodeInput } from '../../../../src/pipeline/encode/sr.ts';
import { codingSchemeIdentification } from '../../../../src/pipeline/encode/sr-schemes.ts';
import { inference, mappings, sourceInstance, srInput } from '../../../harness/encode-fixtures.ts';
import { ACCEPTED_DCIODVFY_WARNING, dciodvfy, dsrdump } from '../../../harness/validators.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pacs-triage-sr-audit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Node = Record<string, unknown> & { ContentSequence?: Node[] };

function validate(name: string, part10: Uint8Array): string {
  const path = join(tmp, `${name}.dcm`);
  writeFileSync(path, part10);
  const result = dciodvfy(path);
  expect(result.output).toContain('Comprehensive3DSR');
  expect(result.errors, result.output).toEqual([]);
  for (const w of result.warnings) expect(w, result.output).toMatch(ACCEPTED_DCIODVFY_WARNING);
  return path;
}

function named(items: Node[] | undefined, code: string): Node | undefined {
  return items?.find((i) => (i.ConceptNameCodeSequence as { CodeValue: string }[] | undefined)?.[0]?.CodeValue === code);
}

/** Every IMAGE item of the tree, with the path of concept codes above it. */
function images(node: Node, path: string[] = []): { path: string; sop: Record<string, unknown> }[] {
  const here = [...path, String((node.ConceptNameCodeSequence as { CodeValue: string }[] | undefined)?.[0]?.CodeValue ?? node.ValueType)];
  const own = node.ValueType === 'IMAGE' ? [{ path: here.join('>'), sop: (node.ReferencedSOPSequence as Record<string, unknown>[])[0]! }] : [];
  return [...own, ...(node.ContentSequence ?? []).flatMap((c) => images(c, here))];
}

/** A 2-frame image (Multi-frame Grayscale Word Secondary Capture) as the source the model read. */
const multiFrame: InstanceMeta = { ...sourceInstance, SOPClassUID: '1.2.840.10008.5.1.4.1.1.7.3', Modality: 'OT', NumberOfFrames: 2 };
const multiFrameInput = (overrides: Partial<SrEncodeInput> = {}): SrEncodeInput => srInput({ inference: { ...inference, sourceInstance: multiFrame }, ...overrides });

describe('Referenced Frame Number (0008,1160) for a multi-frame source image', () => {
  it('a 2-frame source is referenced at frame 1 — the frame the model read — by the region (both SCOORDs) and the Image Library; dciodvfy: 0 errors', () => {
    const out = encodeSr(multiFrameInput());
    const path = validate('multi-frame', out.part10);
    const refs = images(readPart10(out.part10) as Node);
    // Image Library entry, the group-level SCOORD, and the SCOORD INFERRED FROM the NUM
    expect(refs.map((r) => r.path)).toEqual([
      '126000>111028>126200>IMAGE',
      '126000>126010>125007>111030>IMAGE',
      '126000>126010>125007>111012>SCOORD>IMAGE',
    ]);
    for (const r of refs) expect(r.sop, r.path).toMatchObject({ ReferencedSOPInstanceUID: multiFrame.SOPInstanceUID, ReferencedFrameNumber: 1 });
    expect(dsrdump(path)).toContain('<selected from IMAGE:=(SCw image,,1)>');
  });

  it('a single-frame source (NumberOfFrames absent or 1) has no Referenced Frame Number: the reference applies to the whole image', () => {
    for (const source of [sourceInstance, { ...sourceInstance, NumberOfFrames: 1 }]) {
      const out = encodeSr(srInput({ inference: { ...inference, sourceInstance: source } }));
      for (const r of images(readPart10(out.part10) as Node)) expect(r.sop, r.path).not.toHaveProperty('ReferencedFrameNumber');
    }
  });

  it('a single-frame SOP Class (CR, DX…) that claims NumberOfFrames 2 gets no frame number: it is not a multi-frame image (dciodvfy: "shall not be present")', () => {
    for (const sopClass of ['1.2.840.10008.5.1.4.1.1.1', '1.2.840.10008.5.1.4.1.1.1.1']) {
      const out = encodeSr(srInput({ inference: { ...inference, sourceInstance: { ...sourceInstance, SOPClassUID: sopClass, NumberOfFrames: 2 } } }));
      validate(`single-frame-class-${sopClass}`, out.part10);
      for (const r of images(readPart10(out.part10) as Node)) expect(r.sop, r.path).not.toHaveProperty('ReferencedFrameNumber');
    }
  });

  it('reads the frame back: the region and the Image Library entry say frame 1, and the findings round-trip', () => {
    const out = encodeSr(multiFrameInput());
    const doc = readSr(out.part10, mappings());
    expect(doc.imageLibrary).toEqual([{ sopClassUID: multiFrame.SOPClassUID, sopInstanceUID: multiFrame.SOPInstanceUID, frameNumber: 1 }]);
    expect(doc.findings.find((f) => f.region)!.region).toMatchObject({ sopInstanceUID: multiFrame.SOPInstanceUID, frameNumber: 1 });
    expect(readSrFindings(out.part10, mappings())).toEqual(inference.findings.map((f) => srRepresentation(f, mappings(), multiFrame)));
    // a single-frame SR reads back without frames
    expect(readSr(encodeSr(srInput()).part10, mappings()).imageLibrary).toEqual([{ sopClassUID: sourceInstance.SOPClassUID, sopInstanceUID: sourceInstance.SOPInstanceUID }]);
  });

  it('an image the result used but the model did not read is referenced whole, and cannot carry a region', () => {
    const other: InstanceMeta = { ...multiFrame, SOPInstanceUID: '1.2.826.0.1.3680043.10.9999.1.4' };
    const out = encodeSr(srInput({ otherSourceInstances: [other] }));
    const library = readSr(out.part10, mappings()).imageLibrary;
    expect(library.find((r) => r.sopInstanceUID === other.SOPInstanceUID)).toEqual({ sopClassUID: other.SOPClassUID, sopInstanceUID: other.SOPInstanceUID });
    const onOther = { ...inference.findings[0]!, region: { ...inference.findings[0]!.region!, sopInstanceUID: other.SOPInstanceUID } };
    expect(() => encodeSr(srInput({ otherSourceInstances: [other], inference: { ...inference, findings: [onOther] } }))).toThrow(/multi-frame .* which the model did not read/);
    expect(() => encodeSr(srInput({ inference: { ...inference, sourceInstance: { ...sourceInstance, NumberOfFrames: 0 } } }))).toThrow(/NumberOfFrames 0/);
  });
});

describe('Content Template Sequence (0040,A504) on the TID 1410 and TID 1600 containers', () => {
  it('each Measurement Group says DCMR 1410 and the Image Library says DCMR 1600 (highdicom < 0.26 finds groups by it); nothing else nested does', () => {
    const root = readPart10(encodeSr(srInput()).part10) as Node;
    const template = { MappingResource: 'DCMR', MappingResourceUID: '1.2.840.10008.8.1.1' };
    expect(root.ContentTemplateSequence).toMatchObject([{ ...template, TemplateIdentifier: '1500' }]);
    const library = named(root.ContentSequence, '111028')!;
    expect(library.ContentTemplateSequence).toMatchObject([{ ...template, TemplateIdentifier: '1600' }]);
    const groups = named(root.ContentSequence, '126010')!.ContentSequence!;
    expect(groups.length).toBeGreaterThan(0);
    for (const g of groups) expect(g.ContentTemplateSequence).toMatchObject([{ ...template, TemplateIdentifier: '1410' }]);
    // Not on containers that are rows of TID 1500 itself, nor on the group inside the library (TID 1601 is included by 1600)
    expect(named(root.ContentSequence, '126010')!.ContentTemplateSequence).toBeUndefined();
    expect(named(root.ContentSequence, 'C0034375')!.ContentTemplateSequence).toBeUndefined();
    expect(library.ContentSequence![0]!.ContentTemplateSequence).toBeUndefined();
  });

  it('dsrdump names the templates', () => {
    const path = validate('templates', encodeSr(srInput()).part10);
    const tree = dsrdump(path, ['+Pt']);
    expect(tree).toMatch(/<contains CONTAINER:\(,,"Image Library"\)=SEPARATE> *# TID 1600 \(DCMR/);
    expect(tree).toMatch(/<contains CONTAINER:\(,,"Measurement Group"\)=SEPARATE> *# TID 1410 \(DCMR/);
  });
});

describe('Instance Number (0020,0013) unique within the SR series', () => {
  it('writes the Instance Number it is given (default 1) and reads it back; the same number gives the same bytes', () => {
    expect(readSr(encodeSr(srInput()).part10, mappings()).instanceNumber).toBe(1);
    const third = encodeSr(srInput({ instanceNumber: 3 }));
    validate('instance-3', third.part10);
    expect(readSr(third.part10, mappings()).instanceNumber).toBe(3);
    expect(Buffer.from(encodeSr(srInput({ instanceNumber: 3 })).part10).equals(Buffer.from(third.part10))).toBe(true);
    expect(third.sopInstanceUID).toBe(encodeSr(srInput()).sopInstanceUID); // the number is not part of the identity
    for (const bad of [0, -1, 1.5]) expect(() => encodeSr(srInput({ instanceNumber: bad }))).toThrow(/instanceNumber/);
  });
});

describe('99IHE declared in the Coding Scheme Identification Sequence (0008,0110)', () => {
  it('declares the private 99IHE scheme (Processing Algorithm) with its name and responsible organisation, and no standard scheme', () => {
    const out = encodeSr(srInput());
    validate('schemes', out.part10);
    expect(readPart10(out.part10)['CodingSchemeIdentificationSequence']).toMatchObject([
      { CodingSchemeDesignator: '99IHE', CodingSchemeName: 'IHE Radiology Technical Framework', CodingSchemeResponsibleOrganization: 'IHE International' },
    ]);
  });

  it('declares every private designator wherever it is used, sorted, and none when there is none', () => {
    const ds = { A: [{ CodingSchemeDesignator: '99ZZZ' }], B: { ContentSequence: [{ ConceptCodeSequence: [{ CodingSchemeDesignator: '99IHE' }, { CodingSchemeDesignator: 'SCT' }] }] } };
    expect(codingSchemeIdentification(ds)!.map((i) => i['CodingSchemeDesignator'])).toEqual(['99IHE', '99ZZZ']);
    expect(codingSchemeIdentification(ds)![1]).toEqual({ CodingSchemeDesignator: '99ZZZ' });
    expect(codingSchemeIdentification({ X: [{ CodingSchemeDesignator: 'DCM' }] })).toBeUndefined();
  });
});
