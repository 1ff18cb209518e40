/**
 * Synthetic DICOM instances for tests and the sandbox, written with dcmjs.
 *
 * The instances are small but valid CT Image Storage objects (Explicit VR Little Endian,
 * 16-bit pixels with a modality LUT) so that Orthanc, DICOMweb and pixel decoders accept
 * them. Nothing here is real patient data.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

// dcmjs ships no type declarations; load the CJS build through require so that no ambient
// module declaration is needed (and none collides with one somebody else adds later).
const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const dcmjs: any = require('dcmjs');

export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

/** A fresh UID under the 2.25 (UUID-derived) root. */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString(10)}`;
}

export interface SyntheticCtOptions {
  patientId?: string;
  patientName?: string;
  patientBirthDate?: string;
  patientSex?: 'M' | 'F' | 'O';
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  accessionNumber?: string;
  studyDate?: string; // YYYYMMDD
  studyTime?: string; // HHMMSS
  studyDescription?: string;
  seriesDescription?: string;
  bodyPartExamined?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  /** Image size; 512x512 gives a ~512 KiB instance. Default 64x64. */
  rows?: number;
  columns?: number;
}

export interface SyntheticInstance {
  buffer: Buffer;
  patientId: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
}

function pixelPhantom(rows: number, columns: number): Uint16Array {
  // Stored value = HU + 1024: air outside a disc of water with a denser "lesion".
  const px = new Uint16Array(rows * columns);
  const cy = rows / 2;
  const cx = columns / 2;
  const r = Math.min(rows, columns) * 0.42;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      const d = Math.hypot(y - cy, x - cx);
      let hu = -1000;
      if (d < r) hu = 0 + ((x * 7 + y * 13) % 40) - 20;
      if (Math.hypot(y - cy * 0.8, x - cx * 1.2) < r * 0.15) hu = 60;
      px[y * columns + x] = hu + 1024;
    }
  }
  return px;
}

/** Builds one CT image as a DICOM Part 10 file. */
export function makeSyntheticCt(options: SyntheticCtOptions = {}): SyntheticInstance {
  const rows = options.rows ?? 64;
  const columns = options.columns ?? 64;
  const patientId = options.patientId ?? 'SYNTH-0001';
  const studyInstanceUid = options.studyInstanceUid ?? newUid();
  const seriesInstanceUid = options.seriesInstanceUid ?? newUid();
  const sopInstanceUid = options.sopInstanceUid ?? newUid();
  const studyDate = options.studyDate ?? '20240115';
  const studyTime = options.studyTime ?? '101500';

  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: CT_IMAGE_STORAGE,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: '2.25.98357230916187366713337095620370516470',
    ImplementationVersionName: 'PACSTRIAGE_SYN',
  };
  const pixels = pixelPhantom(rows, columns);
  const dataset = {
    SpecificCharacterSet: 'ISO_IR 192',
    ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
    SOPClassUID: CT_IMAGE_STORAGE,
    SOPInstanceUID: sopInstanceUid,
    StudyDate: studyDate,
    SeriesDate: studyDate,
    ContentDate: studyDate,
    StudyTime: studyTime,
    SeriesTime: studyTime,
    ContentTime: studyTime,
    AccessionNumber: options.accessionNumber ?? '',
    Modality: 'CT',
    Manufacturer: 'pacs-triage synthetic',
    ReferringPhysicianName: '',
    StudyDescription: options.studyDescription ?? 'SYNTHETIC CT',
    SeriesDescription: options.seriesDescription ?? 'SYNTHETIC AXIAL',
    PatientName: options.patientName ?? 'SYNTHETIC^PATIENT',
    PatientID: patientId,
    PatientBirthDate: options.patientBirthDate ?? '19600101',
    PatientSex: options.patientSex ?? 'O',
    BodyPartExamined: options.bodyPartExamined ?? 'CHEST',
    SliceThickness: '1',
    PatientPosition: 'HFS',
    AcquisitionNumber: '1',
    KVP: '120',
    StudyInstanceUID: studyInstanceUid,
    SeriesInstanceUID: seriesInstanceUid,
    StudyID: '1',
    SeriesNumber: String(options.seriesNumber ?? 1),
    InstanceNumber: String(options.instanceNumber ?? 1),
    ImagePositionPatient: ['0', '0', String(options.instanceNumber ?? 1)],
    ImageOrientationPatient: ['1', '0', '0', '0', '1', '0'],
    FrameOfReferenceUID: newUid(),
    PositionReferenceIndicator: '',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: rows,
    Columns: columns,
    PixelSpacing: ['0.7', '0.7'],
    BitsAllocated: 16,
    BitsStored: 16,
    HighBit: 15,
    PixelRepresentation: 0,
    WindowCenter: '40',
    WindowWidth: '400',
    RescaleIntercept: '-1024',
    RescaleSlope: '1',
  };

  const { DicomDict, DicomMetaDictionary } = dcmjs.data;
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  // PixelData's VR (OB or OW) is ambiguous to dcmjs' naturaliser, so add it denaturalised.
  dict.dict['7FE00010'] = { vr: 'OW', Value: [pixels.buffer] };
  const buffer = Buffer.from(dict.write() as ArrayBuffer);
  return { buffer, patientId, studyInstanceUid, seriesInstanceUid, sopInstanceUid, sopClassUid: CT_IMAGE_STORAGE };
}
