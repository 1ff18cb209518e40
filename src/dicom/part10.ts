/**
 * The one place the encoders touch dcmjs (untyped): naturalized dataset ⇄ DICOM Part 10 bytes.
 * Pure (bytes in memory only). Explicit VR Little Endian, deterministic for a given dataset.
 */
import dcmjs from 'dcmjs';
import { TriageError } from '../domain/errors.ts';
import { Unsupported, writePart10Direct } from './writer.ts';
import { readNaturalDataset } from './read.ts';

/** A keyword-named ("naturalized", dcmjs style) dataset. */
export type NaturalDataset = Record<string, unknown>;

export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** Our Part 10 Implementation Class UID: 2.25 + the v8 UUID deterministicUuid('pacs-triage implementation class'). */
export const IMPLEMENTATION_CLASS_UID = '2.25.240517522796631582265734078138622737563';
export const IMPLEMENTATION_VERSION_NAME = 'PACS_TRIAGE_1';

interface DcmjsData {
  DicomMetaDictionary: {
    denaturalizeDataset(ds: NaturalDataset): Record<string, unknown>;
    naturalizeDataset(ds: Record<string, unknown>): NaturalDataset;
  };
  DicomDict: new (meta: Record<string, unknown>) => { dict: Record<string, unknown>; write(): ArrayBuffer };
}

const data = (dcmjs as { data: DcmjsData }).data;

/**
 * Writes a naturalized dataset as a DICOM Part 10 file (Explicit VR Little Endian): the direct
 * writer where it applies (our SRs and KOS: ~20× faster), dcmjs otherwise; the same bytes.
 */
export function writePart10(dataset: NaturalDataset): Uint8Array {
  const sopClassUID = dataset.SOPClassUID;
  const sopInstanceUID = dataset.SOPInstanceUID;
  if (typeof sopClassUID !== 'string' || typeof sopInstanceUID !== 'string') {
    throw new TriageError('INTERNAL', 'writePart10: SOPClassUID and SOPInstanceUID are required', { where: 'encode.dicom' });
  }
  const meta = metaFor(sopClassUID, sopInstanceUID);
  try {
    return writePart10Direct(meta, dataset);
  } catch (err) {
    if (!(err instanceof Unsupported)) throw new TriageError('INTERNAL', `cannot write DICOM: ${(err as Error).message}`, { cause: err, where: 'encode.dicom' });
  }
  return writePart10WithDcmjs(meta, dataset);
}

/** dcmjs's writer: for what the direct writer does not take (pixel data, _vrMap, private tags…). */
export function writePart10WithDcmjs(meta: NaturalDataset, dataset: NaturalDataset): Uint8Array {
  try {
    const dict = new data.DicomDict(data.DicomMetaDictionary.denaturalizeDataset(meta));
    dict.dict = data.DicomMetaDictionary.denaturalizeDataset(stripUndefined(dataset) as NaturalDataset);
    return new Uint8Array(dict.write());
  } catch (err) {
    throw new TriageError('INTERNAL', `cannot write DICOM: ${(err as Error).message}`, { cause: err, where: 'encode.dicom' });
  }
}

/** The File Meta Information writePart10 gives a dataset (PS3.10 7.1). */
export function metaFor(sopClassUID: string, sopInstanceUID: string): NaturalDataset {
  return {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUID,
    MediaStorageSOPInstanceUID: sopInstanceUID,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  };
}

/**
 * Reads a DICOM Part 10 file into a naturalized dataset (sequences included), through the one
 * reader's checks: structure, depth and lengths first, dcmjs after. DICOM_UNREADABLE when it is
 * not one.
 */
export function readPart10(bytes: Uint8Array): NaturalDataset {
  return readNaturalDataset(bytes, { where: 'encode.dicom' });
}

/** Drops undefined members (dcmjs would write them as empty attributes). */
function stripUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripUndefined);
  if (value && typeof value === 'object' && !(value instanceof ArrayBuffer) && !ArrayBuffer.isView(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v !== undefined) out[k] = stripUndefined(v);
    }
    return out;
  }
  return value;
}
