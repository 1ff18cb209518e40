/**
 * The objects a retraction writes: the IOCM rejection note (KOS, TID 2010) checked by dciodvfy
 * and dsrdump like every SR we write, and the FHIR side (entered-in-error, the NULLIFY
 * Provenance) checked by R4 validation.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isValidUid } from '../../../../src/domain/uids.ts';
import { readPart10 } from '../../../../src/dicom/part10.ts';
import { encodeSr } from '../../../../src/pipeline/encode/sr.ts';
import {
  KEY_OBJECT_SELECTION_SOP_CLASS_UID,
  REJECTION_DESCRIPTION,
  RETRACTION_SYSTEM,
  encodeRejectionNote,
  encodeRetractionProvenance,
  enteredInError,
  rejectionNoteUids,
} from '../../../../src/pipeline/encode/retraction.ts';
import { STUDY_UID, UID_ROOT, srInput, study } from '../../../harness/encode-fixtures.ts';
import { dciodvfy, dsrdump, fhirProblems } from '../../../harness/validators.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pacs-triage-kos-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
function file(name: string, bytes: Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

const sr = encodeSr(srInput());
const software = { name: 'pacs-triage', version: '0.1.0' };
const input = {
  uidRoot: UID_ROOT,
  study,
  rejected: [{ seriesInstanceUID: sr.seriesInstanceUID, sopInstanceUID: sr.sopInstanceUID }],
  requestedAt: '2024-05-02T08:09:10.500Z',
  software,
};

describe('rejection note (IOCM KOS)', () => {
  it('is a valid Key Object Selection Document: dciodvfy has no errors and no warnings; dsrdump reads its TID 2010 tree', () => {
    const note = encodeRejectionNote(input);
    const path = file('note.dcm', note.part10);
    const v = dciodvfy(path);
    expect(v.errors, v.output).toEqual([]);
    expect(v.warnings, v.output).toEqual([]);
    const tree = dsrdump(path);
    expect(tree).toContain('Key Object Selection Document');
    expect(tree).toContain('<CONTAINER:(,,"Rejected for Quality Reasons")=SEPARATE>');
    expect(tree).toContain(`<contains TEXT:(,,"Key Object Description")="${REJECTION_DESCRIPTION}">`);
    expect(tree).toContain('<contains COMPOSITE:=(Comprehensive3DSRStorage,)>');
  });

  it('names the rejected SR in its content and in Current Requested Procedure Evidence; copies the study; a KO series of its own', () => {
    const ds = readPart10(encodeRejectionNote(input).part10);
    expect(ds['SOPClassUID']).toBe(KEY_OBJECT_SELECTION_SOP_CLASS_UID);
    expect(ds['Modality']).toBe('KO');
    expect(ds['StudyInstanceUID']).toBe(STUDY_UID);
    expect(ds['PatientID']).toBe(study.PatientID);
    expect(ds['AccessionNumber']).toBe(study.AccessionNumber);
    expect(ds['SeriesInstanceUID']).not.toBe(sr.seriesInstanceUID);
    expect(ds['ConceptNameCodeSequence']).toMatchObject([{ CodeValue: '113001', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Rejected for Quality Reasons' }]);
    expect(ds['ContentTemplateSequence']).toMatchObject([{ MappingResource: 'DCMR', MappingResourceUID: '1.2.840.10008.8.1.1', TemplateIdentifier: '2010' }]);
    const evidence = ds['CurrentRequestedProcedureEvidenceSequence'] as { ReferencedSeriesSequence: { SeriesInstanceUID: string; ReferencedSOPSequence: { ReferencedSOPInstanceUID: string }[] }[] }[];
    expect(evidence[0]!.ReferencedSeriesSequence[0]!.SeriesInstanceUID).toBe(sr.seriesInstanceUID);
    expect(evidence[0]!.ReferencedSeriesSequence[0]!.ReferencedSOPSequence[0]!.ReferencedSOPInstanceUID).toBe(sr.sopInstanceUID);
    const composite = (ds['ContentSequence'] as { ValueType: string; ReferencedSOPSequence?: { ReferencedSOPInstanceUID: string }[] }[]).filter((i) => i.ValueType === 'COMPOSITE');
    expect(composite.map((c) => c.ReferencedSOPSequence![0]!.ReferencedSOPInstanceUID)).toEqual([sr.sopInstanceUID]);
    expect(['ContentDate', 'ContentTime'].map((k) => ds[k])).toEqual(['20240502', '080910.500']);
  });

  it('is deterministic: same rejected SRs (any order, repeated) → same bytes and UID; another set → another UID; never an SR UID', () => {
    const other = { seriesInstanceUID: sr.seriesInstanceUID, sopInstanceUID: `${UID_ROOT}.77` };
    const a = encodeRejectionNote({ ...input, rejected: [...input.rejected, other] });
    const b = encodeRejectionNote({ ...input, rejected: [other, ...input.rejected, other] });
    expect(Buffer.from(a.part10).equals(Buffer.from(b.part10))).toBe(true);
    const single = encodeRejectionNote(input);
    expect(single.sopInstanceUID).not.toBe(a.sopInstanceUID);
    expect(single.seriesInstanceUID).toBe(a.seriesInstanceUID); // one rejection-note series per study
    for (const uid of [a.sopInstanceUID, a.seriesInstanceUID]) {
      expect(isValidUid(uid)).toBe(true);
      expect(uid.startsWith(`${UID_ROOT}.`)).toBe(true);
      expect([sr.sopInstanceUID, sr.seriesInstanceUID]).not.toContain(uid);
    }
    expect(rejectionNoteUids(UID_ROOT, STUDY_UID, input.rejected)).toEqual({ seriesInstanceUID: single.seriesInstanceUID, sopInstanceUID: single.sopInstanceUID });
  });

  it('refuses to reject nothing, or a malformed UID', () => {
    expect(() => encodeRejectionNote({ ...input, rejected: [] })).toThrow(/at least one SR/);
    expect(() => encodeRejectionNote({ ...input, rejected: [{ seriesInstanceUID: '1.2', sopInstanceUID: '1.02' }] })).toThrow(/not a valid UID/);
  });
});

describe('FHIR side of a retraction', () => {
  const ra = { resourceType: 'RiskAssessment', id: 'ra1', meta: { versionId: '1' }, status: 'final', subject: { reference: 'Patient/p1' } };

  it('entered-in-error: only the status and the narrative change; already entered-in-error → nothing to write', () => {
    const updated = enteredInError(ra)!;
    expect(updated).toEqual({ ...ra, status: 'entered-in-error', text: expect.objectContaining({ status: 'generated' }) });
    expect(enteredInError(updated)).toBeUndefined();
  });

  it('the entered-in-error RiskAssessment narrative says so, replacing one that called it preliminary', () => {
    const stored = { ...ra, status: 'preliminary', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>Preliminary AI triage result</p></div>' } };
    const div = (enteredInError(stored)!['text'] as { div: string }).div;
    expect(div).toContain('<b>ENTERED IN ERROR</b>: this AI triage result was withdrawn. Do not use it.');
    expect(div).not.toContain('Preliminary');
  });

  it('the retraction Provenance targets RiskAssessment/<id>/_history/<versionId> when the versionId is known, and carries a narrative with the reason escaped', () => {
    const bundle = encodeRetractionProvenance({
      resultKey: 'k1',
      riskAssessment: { ref: 'RiskAssessment/ra1', versionId: '7' },
      requestedAt: '2024-05-02T08:09:10.500Z',
      cause: 'marked-wrong',
      reason: 'effusion <not> a "pneumothorax" & more',
      service: software,
    });
    const resource = bundle.entry[0].resource as unknown as { target: { reference: string }[]; text: { status: string; div: string } };
    expect(resource.target).toEqual([{ reference: 'RiskAssessment/ra1/_history/7' }]);
    expect(resource.text.status).toBe('generated');
    expect(resource.text.div).toContain('<b>Provenance</b>: nullify of RiskAssessment/ra1/_history/7, recorded 2024-05-02T08:09:10.500Z.');
    expect(resource.text.div).toContain('Reason: The AI result was marked wrong. effusion &lt;not&gt; a &quot;pneumothorax&quot; &amp; more');
    expect(resource.text.div).toContain('<li>Performer: pacs-triage@0.1.0</li>');
    expect(fhirProblems(bundle.entry[0].resource as unknown as Record<string, unknown>)).toEqual([]);
  });

  it('the Provenance: NULLIFY of the entered-in-error version, the reason, our service as performer; one conditional create keyed on a tag; valid R4', () => {
    const bundle = encodeRetractionProvenance({
      resultKey: 'k1',
      riskAssessment: { ref: 'RiskAssessment/ra1', versionId: '2' },
      requestedAt: '2024-05-02T08:09:10.500Z',
      cause: 'marked-wrong',
      reason: 'missed a large pneumothorax',
      service: software,
    });
    expect(bundle.entry).toHaveLength(1);
    const entry = bundle.entry[0];
    expect(entry.request).toEqual({ method: 'POST', url: 'Provenance', ifNoneExist: `_tag=${RETRACTION_SYSTEM}|k1` });
    expect(entry.resource).toMatchObject({
      resourceType: 'Provenance',
      meta: { tag: [{ system: RETRACTION_SYSTEM, code: 'k1' }] },
      target: [{ reference: 'RiskAssessment/ra1/_history/2' }],
      recorded: '2024-05-02T08:09:10.500Z',
      activity: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'NULLIFY' }] },
      reason: [{ text: 'The AI result was marked wrong. missed a large pneumothorax' }],
      agent: [{ who: { identifier: { system: 'urn:pacs-triage:service', value: 'pacs-triage@0.1.0' } } }],
    });
    expect(fhirProblems(entry.resource as unknown as Record<string, unknown>)).toEqual([]);
    expect(fhirProblems(enteredInError(ra) as unknown as Record<string, unknown>).filter((p) => p.where.includes('status'))).toEqual([]);
    const deleted = encodeRetractionProvenance({ resultKey: 'k1', riskAssessment: { ref: 'RiskAssessment/ra1' }, requestedAt: '2024-05-02T08:09:10Z', cause: 'study-deleted', service: software });
    expect(deleted.entry[0].resource['reason']).toEqual([{ text: 'The imaging study was deleted from the PACS.' }]);
    expect(deleted.entry[0].resource['target']).toEqual([{ reference: 'RiskAssessment/ra1' }]);
  });
});
