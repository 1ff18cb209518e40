/**
 * Coding Scheme Identification Sequence (0008,0110) of the SOP Common module (PS3.3 C.12.1.1.2):
 * the private coding schemes an object uses, declared. Designators starting with "99" are private
 * (HL7 v2, PS3.16 8.2) and no reader can look them up, so each one we write is declared here; the
 * standard designators of PS3.16 Table 8-1 (DCM, SCT, LN, UCUM, UMLS, RFC5646…) need no
 * declaration. Pure.
 */
import type { NaturalDataset } from '../../dicom/part10.ts';

interface PrivateScheme {
  CodingSchemeName: string;
  CodingSchemeResponsibleOrganization: string;
}

/**
 * What we know of the private schemes our mappings use. 99IHE: IHE's designator for codes its
 * profiles define before DICOM assigns one (IHE AIR's Newcode1 "Processing Algorithm"). Not
 * registered with HL7 and without an OID, so Coding Scheme Registry, UID and External ID (all
 * conditional on registration or an OID) are absent.
 */
const KNOWN: Readonly<Record<string, PrivateScheme>> = {
  '99IHE': { CodingSchemeName: 'IHE Radiology Technical Framework', CodingSchemeResponsibleOrganization: 'IHE International' },
};

export function isPrivateScheme(designator: string): boolean {
  return designator.startsWith('99');
}

function collectDesignators(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) {
    for (const v of value) collectDesignators(v, out);
    return;
  }
  if (!value || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === 'CodingSchemeDesignator' && typeof v === 'string') out.add(v);
    else collectDesignators(v, out);
  }
}

/**
 * The Coding Scheme Identification Sequence for a dataset: one item per private designator used
 * anywhere in it, sorted (so the bytes do not depend on the order codes appear in); undefined
 * when it uses none. An unknown private scheme is still declared, by its designator alone
 * (the name and organisation are Type 3).
 */
export function codingSchemeIdentification(dataset: NaturalDataset): NaturalDataset[] | undefined {
  const used = new Set<string>();
  collectDesignators(dataset, used);
  const items = [...used]
    .filter(isPrivateScheme)
    .sort()
    .map((designator) => ({ CodingSchemeDesignator: designator, ...KNOWN[designator] }));
  return items.length > 0 ? items : undefined;
}
