import dcmjs from 'dcmjs';

/** A DICOM JSON object (PS3.18 F.2): hex tags → { vr, Value }. */
export type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

const { DicomMetaDictionary } = dcmjs.data;

/**
 * DICOM JSON becomes a keyword-named object at the adapter boundary (OHIF's qido.js does the
 * same), with the first value of each attribute and person names as their alphabetic string.
 */
export function naturalize(json: DicomJson): Record<string, unknown> {
  const natural = DicomMetaDictionary.naturalizeDataset(structuredClone(json)) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [keyword, value] of Object.entries(natural)) {
    if (keyword === '_vrMap') continue;
    out[keyword] = value;
  }
  return out;
}
