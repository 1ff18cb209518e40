import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TriageError } from '../../../src/domain/errors.ts';
import { readDicom } from '../../../src/dicom/read.ts';
import { instanceMeta } from '../../../src/dicom/instance-meta.ts';
import { QIDO_INSTANCE_FIELDS } from '../../../src/dicom/attributes.ts';
import { imageToTensor } from '../../../src/pipeline/preprocess/image-tensor.ts';
import { BT601 } from '../../../src/dicom/pixels.ts';
import { registerCodec } from '../../../src/dicom/transfer-syntax.ts';
import { TS, imageFile, packSamples, part10, MANIFEST_IMAGE_SPEC } from '../../harness/dicom-builder.ts';

const FIXTURES = fileURLToPath(new URL('../../fixtures/pydicom/', import.meta.url));
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(FIXTURES + name));

const SPEC = MANIFEST_IMAGE_SPEC;

function errorOf(fn: () => unknown): TriageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TriageError);
    return err as TriageError;
  }
  throw new Error('expected a TriageError, nothing was thrown');
}

const sum = (a: ArrayLike<number>): number => Array.from(a).reduce((s, v) => s + v, 0);

describe('readDicom on the pydicom sample files', () => {
  // Pixel sums and values below were printed by pydicom 3.0.2 (ds.pixel_array).
  it('CT_small: attributes, signed 16-bit stored values, rescale', () => {
    const img = readDicom(fixture('CT_small.dcm'));
    expect(img.transferSyntaxUID).toBe('1.2.840.10008.1.2.1');
    expect(img.meta).toMatchObject({
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
      Modality: 'CT',
      PatientName: 'CompressedSamples^CT1',
      PatientID: '1CT1',
      StudyDate: '20040119',
      StudyTime: '072730',
      StudyID: '1CT1',
      ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
      SeriesNumber: 1,
      InstanceNumber: 1,
      Rows: 128,
      Columns: 128,
      Manufacturer: 'GE MEDICAL SYSTEMS',
    });
    expect(img.meta.StudyInstanceUID).toMatch(/^[0-9.]+$/);
    expect(img.meta.AccessionNumber).toBeUndefined(); // present but empty
    expect(img.meta.ReferringPhysicianName).toBeUndefined();
    expect(img.pixel).toMatchObject({
      rows: 128,
      columns: 128,
      samplesPerPixel: 1,
      photometricInterpretation: 'MONOCHROME2',
      bitsAllocated: 16,
      bitsStored: 16,
      highBit: 15,
      pixelRepresentation: 1,
      numberOfFrames: 1,
      rescaleSlope: 1,
      rescaleIntercept: -1024,
    });
    expect(img.pixel.windowCenter).toBeUndefined();
    const f = img.frame();
    expect(f).toBeInstanceOf(Int32Array);
    expect(Array.from(f.subarray(0, 4))).toEqual([175, 180, 166, 143]);
    expect(sum(f)).toBe(14826310);
  });

  it('MR_small: the data set window; big-endian and implicit-VR copies decode to the same pixels', () => {
    const le = readDicom(fixture('MR_small.dcm'));
    expect(le.pixel).toMatchObject({ windowCenter: 600, windowWidth: 1600, rescaleSlope: 1, rescaleIntercept: 0 });
    expect(Array.from(le.frame().subarray(0, 4))).toEqual([905, 1019, 1227, 1259]);
    expect(sum(le.frame())).toBe(2125338);
    for (const name of ['MR_small_bigendian.dcm', 'MR_small_implicit.dcm']) {
      const other = readDicom(fixture(name));
      expect(other.meta).toEqual(le.meta);
      expect(other.frame()).toEqual(le.frame());
      expect(imageToTensor(other, SPEC).tensor).toEqual(imageToTensor(le, SPEC).tensor);
    }
    expect(readDicom(fixture('MR_small_bigendian.dcm')).transferSyntaxUID).toBe('1.2.840.10008.1.2.2');
  });

  it('rtdose: multi-frame 32-bit unsigned; frame 0 by default, others on request', () => {
    const img = readDicom(fixture('rtdose.dcm'));
    expect(img.transferSyntaxUID).toBe('1.2.840.10008.1.2');
    expect(img.pixel).toMatchObject({ numberOfFrames: 15, bitsAllocated: 32, rows: 10, columns: 10 });
    expect(sum(img.frame())).toBe(101378000);
    expect(sum(img.frame(1))).toBe(101381000);
    expect(Array.from(img.frame(1).subarray(0, 3))).toEqual([1248000, 1249000, 1249000]);
    expect(sum(img.frame(14))).toBe(101391000);
    expect(errorOf(() => img.frame(15)).code).toBe('USAGE');
  });

  it('RGB: interleaved (SC_rgb_small_odd) and planar big-endian (ExplVR_BigEnd) become BT.601 luma', () => {
    const luma = (r: number, g: number, b: number): number => Math.fround(BT601.r * r + BT601.g * g + BT601.b * b);
    const small = readDicom(fixture('SC_rgb_small_odd.dcm'));
    expect(small.pixel).toMatchObject({ photometricInterpretation: 'RGB', samplesPerPixel: 3, planarConfiguration: 0, rows: 3, columns: 3 });
    expect(Array.from(small.frame())).toEqual(
      [
        [166, 141, 52],
        [166, 141, 52],
        [166, 141, 52],
        [63, 87, 176],
        [63, 87, 176],
        [63, 87, 176],
        [158, 158, 158],
        [158, 158, 158],
        [158, 158, 158],
      ].map(([r, g, b]) => luma(r!, g!, b!)),
    );
    const planar = readDicom(fixture('ExplVR_BigEnd.dcm'));
    expect(planar.pixel).toMatchObject({ planarConfiguration: 1, rows: 60, columns: 80 });
    const f = planar.frame();
    expect(f[0]).toBe(luma(171, 171, 171));
    expect(f[30 * 80 + 40]).toBe(luma(255, 255, 0));
  });

  it('YBR_FULL_422 (uncompressed) gives its Y channel', () => {
    const img = readDicom(fixture('SC_ybr_full_422_uncompressed.dcm'));
    const f = img.frame();
    expect(f[0]).toBe(76);
    expect(f[50 * 100 + 51]).toBe(143);
    expect(sum(f)).toBe(1276900);
  });

  it('accepts a pooled Node Buffer and a view into a larger buffer', () => {
    const expected = readDicom(fixture('SC_rgb_small_odd.dcm')).frame();
    const pooled = readFileSync(FIXTURES + 'SC_rgb_small_odd.dcm'); // 1.4 kB: a slice of Buffer's pool
    expect(readDicom(pooled).frame()).toEqual(expected);
    const padded = new Uint8Array(pooled.length + 100);
    padded.set(pooled, 50);
    expect(readDicom(padded.subarray(50, 50 + pooled.length)).frame()).toEqual(expected);
  });

  it('Deflated Explicit VR Little Endian', () => {
    const img = readDicom(fixture('image_dfl.dcm'));
    expect(img.transferSyntaxUID).toBe('1.2.840.10008.1.2.1.99');
    expect(sum(img.frame())).toBe(33322688);
  });
});

describe('readDicom + imageToTensor against pydicom + numpy + torch', () => {
  // Expected numbers: `python3 test/fixtures/pydicom/expected_stats.py <file>` (pydicom 3.0.2,
  // numpy 2.4.6, torch 2.13.0+cpu), which implements models/MANIFEST.md "Image preprocessing"
  // independently. std is the population std; samples are [row, col, value].
  // Tolerance 1e-6 absolute: our resize reproduces torch's float32 rounding, so on the
  // machine that made these numbers the tensors were bit-identical (max |diff| = 0).
  const TOL = 1e-6;
  const cases: Record<string, { window: { center: number; width: number; source: string }; mean: number; std: number; min: number; max: number; samples: [number, number, number][] }> = {
    'CT_small.dcm': {
      window: { center: -38.0, width: 1646.0, source: 'percentile' },
      mean: -0.19706021318430728,
      std: 0.9167596007444095,
      min: -2.0,
      max: 2.0,
      samples: [[0, 0, -1.970820665359497], [0, 223, -1.8711246252059937], [223, 0, -0.06443774700164795], [223, 223, -0.1860182285308838], [112, 112, 1.9484155178070068], [37, 150, 0.421536922454834], [150, 37, 0.2508888244628906], [200, 99, -0.14917147159576416]],
    },
    'MR_small.dcm': {
      window: { center: 600.0, width: 1600.0, source: 'dataset' },
      mean: -0.22648853746632455,
      std: 0.9430350887216633,
      min: -1.1586964130401611,
      max: 2.0,
      samples: [[0, 0, 0.7642276287078857], [0, 223, -0.679174542427063], [223, 0, -0.5540963411331177], [223, 223, 0.6566603183746338], [112, 112, -1.006879448890686], [37, 150, -0.6928434371948242], [150, 37, -0.727776288986206], [200, 99, -1.0402932167053223]],
    },
    'ExplVR_BigEnd.dcm': {
      window: { center: 202.0, width: 106.0, source: 'percentile' },
      mean: 0.7981075724843434,
      std: 0.47095936468153266,
      min: -2.0,
      max: 2.0,
      samples: [[0, 0, -1.1619048118591309], [0, 223, -1.2380952835083008], [223, 0, -0.858285665512085], [223, 223, 0.41634297370910645], [112, 112, 0.930666446685791], [37, 150, 0.930666446685791], [150, 37, 0.915093183517456], [200, 99, 0.9148349761962891]],
    },
    'SC_rgb_small_odd.dcm': {
      window: { center: 123.98500061035156, width: 68.02999877929688, source: 'percentile' },
      mean: 0.29529356495097125,
      std: 1.2204182543514848,
      min: -1.980675458908081,
      max: 2.0,
      samples: [[0, 0, 0.8858120441436768], [0, 223, 0.8858120441436768], [223, 0, 2.0], [223, 223, 2.0], [112, 112, -1.9732141494750977], [37, 150, 0.8793704509735107], [150, 37, 0.0625], [200, 99, 2.0]],
    },
    'SC_ybr_full_422_uncompressed.dcm': {
      window: { center: 127.5, width: 255.0, source: 'percentile' },
      mean: 0.009789789361613137,
      std: 1.210216366256075,
      min: -2.0,
      max: 2.0,
      samples: [[0, 0, -0.8031495809555054], [0, 223, -0.8031495809555054], [223, 0, 2.0], [223, 223, 2.0], [112, 112, -0.2492988109588623], [37, 150, 0.614173173904419], [150, 37, -1.989173173904419], [200, 99, 1.0323376655578613]],
    },
    'rtdose.dcm': {
      window: { center: 1025242.5, width: 457515.0, source: 'percentile' },
      mean: -0.10008221226079124,
      std: 1.249773284959013,
      min: -2.0,
      max: 2.0,
      samples: [[0, 0, 1.956294298171997], [0, 223, 1.9912657737731934], [223, 0, -2.0], [223, 223, -1.9867545366287231], [112, 112, -0.20004117488861084], [37, 150, 1.4042813777923584], [150, 37, -0.9104591608047485], [200, 99, -1.7673571109771729]],
    },
    'image_dfl.dcm': {
      window: { center: 127.5, width: 255.0, source: 'percentile' },
      mean: 0.0013483739553057418,
      std: 1.094870795360186,
      min: -2.0,
      max: 2.0,
      samples: [[0, 0, 1.3543307781219482], [0, 223, -0.5826771259307861], [223, 0, -0.18897640705108643], [223, 223, 0.960629940032959], [112, 112, -0.9763779640197754], [37, 150, -0.5826771259307861], [150, 37, 0.17322826385498047], [200, 99, -0.22834455966949463]],
    },
  };

  for (const [name, want] of Object.entries(cases)) {
    it(`${name}: window, mean, std, min, max and sampled pixels`, () => {
      const r = imageToTensor(readDicom(fixture(name)), SPEC);
      expect(r.tensor.length).toBe(224 * 224);
      expect(r.window.source).toBe(want.window.source);
      expect(r.window.center).toBeCloseTo(want.window.center, 9);
      expect(r.window.width).toBeCloseTo(want.window.width, 9);
      const t = Array.from(r.tensor);
      const mean = sum(t) / t.length;
      const std = Math.sqrt(t.reduce((s, v) => s + (v - mean) ** 2, 0) / t.length);
      expect(Math.abs(mean - want.mean)).toBeLessThanOrEqual(TOL);
      expect(Math.abs(std - want.std)).toBeLessThanOrEqual(TOL);
      expect(Math.abs(Math.min(...t) - want.min)).toBeLessThanOrEqual(TOL);
      expect(Math.abs(Math.max(...t) - want.max)).toBeLessThanOrEqual(TOL);
      for (const [i, j, v] of want.samples) expect(Math.abs((r.tensor[i * 224 + j] as number) - v)).toBeLessThanOrEqual(TOL);
    });
  }
});

describe('readDicom errors are TriageErrors with the documented codes', () => {
  it('garbage bytes → DICOM_UNREADABLE', () => {
    expect(errorOf(() => readDicom(new Uint8Array(0))).code).toBe('DICOM_UNREADABLE');
    expect(errorOf(() => readDicom(new TextEncoder().encode('hello, this is not a DICOM file'))).message).toMatch(/no "DICM" prefix/);
    const junk = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256);
    expect(errorOf(() => readDicom(junk)).code).toBe('DICOM_UNREADABLE');
    junk.set(new TextEncoder().encode('DICM'), 128); // right magic, garbage after it
    expect(errorOf(() => readDicom(junk)).code).toBe('DICOM_UNREADABLE');
  });

  it('a truncated file → DICOM_UNREADABLE "file is truncated", wherever it was cut', () => {
    const ct = fixture('CT_small.dcm');
    // (A cut exactly between two elements cannot be told from a complete, shorter data set;
    // such a file fails later for what it lacks — UIDs or Pixel Data.)
    for (const n of [131, 132, 140, 200, 401, 1000, 3000, 5000, 6000, 6500, 20000, 39000, ct.length - 1]) {
      const err = errorOf(() => readDicom(ct.slice(0, n)));
      expect(err.code, `cut at ${n}`).toBe('DICOM_UNREADABLE');
      if (n > 132) expect(err.message, `cut at ${n}`).toMatch(/truncated/);
    }
    // pydicom's MR_truncated.dcm: Pixel Data cut short by 62 bytes
    const mr = errorOf(() => readDicom(fixture('MR_truncated.dcm')));
    expect(mr.code).toBe('DICOM_UNREADABLE');
    expect(mr.message).toBe('file is truncated: element (7FE0,0010) declares 8192 bytes at byte 1166, 8130 remain');
  });

  it('a compressed transfer syntax without a codec → DICOM_UNSUPPORTED_SYNTAX', () => {
    const frame = Uint8Array.from([0, 0, 1, 0xb3]);
    const mpeg = imageFile({ rows: 2, columns: 2, samples: [], bitsAllocated: 8, fragments: [frame], transferSyntax: TS.mpeg2 });
    const err = errorOf(() => readDicom(mpeg));
    expect(err.code).toBe('DICOM_UNSUPPORTED_SYNTAX');
    expect(err.message).toMatch(/^transfer syntax 1\.2\.840\.10008\.1\.2\.4\.100 \(MPEG2 Main Profile \/ Main Level\) is compressed; /);
    const htj2k = imageFile({ rows: 2, columns: 2, samples: [], bitsAllocated: 8, fragments: [frame], transferSyntax: TS.htj2kLossless });
    expect(errorOf(() => readDicom(htj2k)).message).toMatch(/1\.2\.840\.10008\.1\.2\.4\.201 \(High-Throughput JPEG 2000 Image Compression \(Lossless Only\)\) is compressed/);
    const unknown = imageFile({ rows: 1, columns: 1, samples: [0], transferSyntax: '1.2.3.4.5' });
    expect(errorOf(() => readDicom(unknown)).code).toBe('DICOM_UNSUPPORTED_SYNTAX');
  });

  it('no Pixel Data → DICOM_NO_PIXEL_DATA', () => {
    const err = errorOf(() => readDicom(imageFile({ rows: 2, columns: 2, samples: [], noPixelData: true })));
    expect(err.code).toBe('DICOM_NO_PIXEL_DATA');
    expect(err.message).toMatch(/no Pixel Data \(7FE0,0010\)/);
  });

  it('an unsupported pixel layout → DICOM_UNSUPPORTED_IMAGE naming the attribute', () => {
    const ybr = imageFile({ rows: 2, columns: 2, samples: new Array(12).fill(0), bitsAllocated: 8, samplesPerPixel: 3, photometric: 'YBR_PARTIAL_420' });
    const err = errorOf(() => readDicom(ybr));
    expect(err.code).toBe('DICOM_UNSUPPORTED_IMAGE');
    expect(err.message).toMatch(/PhotometricInterpretation YBR_PARTIAL_420/);
  });

  it('Pixel Data shorter than the image it claims → DICOM_UNREADABLE', () => {
    const file = part10([
      { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
      { tag: 0x00080018, vr: 'UI', value: '2.25.7' },
      { tag: 0x0020000d, vr: 'UI', value: '2.25.8' },
      { tag: 0x0020000e, vr: 'UI', value: '2.25.9' },
      { tag: 0x00280002, vr: 'US', value: 1 },
      { tag: 0x00280004, vr: 'CS', value: 'MONOCHROME2' },
      { tag: 0x00280010, vr: 'US', value: 4 },
      { tag: 0x00280011, vr: 'US', value: 4 },
      { tag: 0x00280100, vr: 'US', value: 16 },
      { tag: 0x00280101, vr: 'US', value: 16 },
      { tag: 0x00280102, vr: 'US', value: 15 },
      { tag: 0x00280103, vr: 'US', value: 0 },
      { tag: 0x7fe00010, vr: 'OW', value: new Uint8Array(8) },
    ]);
    expect(errorOf(() => readDicom(file)).message).toMatch(/Pixel Data has 8 bytes; 1 frame\(s\) of 4x4x1 at 16 bits need 32/);
  });

  it('missing identifying UIDs → DICOM_UNREADABLE', () => {
    const file = part10([{ tag: 0x00080060, vr: 'CS', value: 'OT' }]);
    expect(errorOf(() => readDicom(file)).message).toMatch(/no StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, SOPClassUID/);
  });
});

describe('readDicom on built files', () => {
  it('signed 16-bit and 12-bit-in-16 data are sign-extended; the window comes from negative values', () => {
    const values = [-2000, -1000, -1, 0, 1, 1000, 2000, 32767, -32768];
    const img = readDicom(imageFile({ rows: 3, columns: 3, samples: values, pixelRepresentation: 1 }));
    expect(Array.from(img.frame())).toEqual(values);
    const twelve = readDicom(
      imageFile({ rows: 1, columns: 4, samples: [0xaffb, 0x0800, 0xf7ff, 0x0001], bitsStored: 12, pixelRepresentation: 1 }),
    );
    expect(Array.from(twelve.frame())).toEqual([-5, -2048, 2047, 1]);
    const r = imageToTensor(twelve, { ...SPEC, window: { source: 'percentile', percentiles: [0, 100] } });
    expect(r.window).toEqual({ center: (-2048 + 2047) / 2, width: 4095, source: 'percentile' });
  });

  it('signed 8-bit', () => {
    const img = readDicom(imageFile({ rows: 1, columns: 4, samples: [0x80, 0xff, 0, 0x7f], bitsAllocated: 8, pixelRepresentation: 1 }));
    expect(Array.from(img.frame())).toEqual([-128, -1, 0, 127]);
  });

  it('MONOCHROME1 is inverted in the tensor', () => {
    const base = { rows: 2, columns: 2, samples: [0, 100, 200, 300], window: [150.5, 301] as [number, number] };
    const m2 = imageToTensor(readDicom(imageFile(base)), { ...SPEC, size: { width: 2, height: 2 } });
    const m1 = imageToTensor(readDicom(imageFile({ ...base, photometric: 'MONOCHROME1' })), { ...SPEC, size: { width: 2, height: 2 } });
    // normalised: (y - 0.5)/0.25, so inverting y negates the tensor
    expect(m1.tensor[0]).toBe(2);
    m1.tensor.forEach((v, i) => expect(v).toBeCloseTo(-(m2.tensor[i] as number), 6));
  });

  it('multi-frame 8-bit: frame 0 by default, frame 1 on request', () => {
    const img = readDicom(imageFile({ rows: 2, columns: 2, samples: [1, 2, 3, 4, 5, 6, 7, 8], bitsAllocated: 8, frames: 2 }));
    expect(Array.from(img.frame())).toEqual([1, 2, 3, 4]);
    expect(Array.from(img.frame(1))).toEqual([5, 6, 7, 8]);
  });

  it('explicit big endian and implicit little endian give the same values as explicit little endian', () => {
    const o = { rows: 2, columns: 3, samples: [0, 1, 256, 4095, 65535, 32768] };
    const le = readDicom(imageFile(o)).frame();
    expect(readDicom(imageFile({ ...o, transferSyntax: TS.explicitBE })).frame()).toEqual(le);
    expect(readDicom(imageFile({ ...o, transferSyntax: TS.implicitLE })).frame()).toEqual(le);
  });

  it('PALETTE COLOR: 16-bit LUTs applied before the luma', () => {
    const lut = (v: number[]): Uint8Array => packSamples(v, 16);
    const file = imageFile({
      rows: 1,
      columns: 6,
      samples: [9, 10, 11, 12, 13, 200],
      bitsAllocated: 8,
      photometric: 'PALETTE COLOR',
      extra: [
        { tag: 0x00281101, vr: 'US', value: [4, 10, 16] },
        { tag: 0x00281102, vr: 'US', value: [4, 10, 16] },
        { tag: 0x00281103, vr: 'US', value: [4, 10, 16] },
        { tag: 0x00281201, vr: 'OW', value: lut([0, 65535, 0, 1000]) },
        { tag: 0x00281202, vr: 'OW', value: lut([0, 0, 65535, 2000]) },
        { tag: 0x00281203, vr: 'OW', value: lut([0, 0, 0, 3000]) },
      ],
    });
    const luma = (r: number, g: number, b: number): number => Math.fround(BT601.r * r + BT601.g * g + BT601.b * b);
    const f = readDicom(file).frame();
    expect(f).toBeInstanceOf(Float32Array);
    expect(Array.from(f)).toEqual([0, 0, luma(65535, 0, 0), luma(0, 65535, 0), luma(1000, 2000, 3000), luma(1000, 2000, 3000)]);
  });
});

describe('pixel codecs plug in per transfer syntax', () => {
  let unregister: (() => void) | undefined;
  afterEach(() => {
    unregister?.();
    unregister = undefined;
  });

  it('a registered codec replaces the built-in one; unregistering puts the built-in one back', () => {
    const native = readDicom(fixture('MR_small.dcm'));
    const nativeBytes = packSamples(native.frame(), 16);
    const seen: number[] = [];
    unregister = registerCodec('1.2.840.10008.1.2.5', {
      name: 'fake RLE',
      decodeFrame: (encoded, pixel, index) => {
        seen.push(encoded.length, pixel.rows, index);
        return { data: nativeBytes };
      },
    });
    const img = readDicom(fixture('MR_small_RLE.dcm'));
    expect(img.transferSyntaxUID).toBe('1.2.840.10008.1.2.5');
    expect(img.frame()).toEqual(native.frame());
    expect(seen[1]).toBe(64);
    unregister();
    unregister = undefined;
    expect(readDicom(fixture('MR_small_RLE.dcm')).frame()).toEqual(native.frame()); // the built-in RLE decoder
    expect(seen).toHaveLength(3);
  });

  it('a codec registered for a syntax we do not decode makes it decodable until it is removed', () => {
    const frame = packSamples([1, 2, 3, 4], 16);
    const file = imageFile({ rows: 2, columns: 2, samples: [], fragments: [frame], transferSyntax: TS.htj2kLossless });
    unregister = registerCodec(TS.htj2kLossless, { name: 'fake HTJ2K', decodeFrame: (encoded) => ({ data: encoded }) });
    expect(Array.from(readDicom(file).frame())).toEqual([1, 2, 3, 4]);
    unregister();
    unregister = undefined;
    expect(errorOf(() => readDicom(file)).code).toBe('DICOM_UNSUPPORTED_SYNTAX');
  });

  it('a codec failure is DICOM_UNREADABLE naming the codec', () => {
    unregister = registerCodec('1.2.840.10008.1.2.5', {
      name: 'broken codec',
      decodeFrame: () => {
        throw new Error('bad RLE header');
      },
    });
    const err = errorOf(() => readDicom(fixture('MR_small_RLE.dcm')).frame());
    expect(err.code).toBe('DICOM_UNREADABLE');
    expect(err.message).toMatch(/broken codec cannot decode frame 0 \(RLE Lossless, 1\.2\.840\.10008\.1\.2\.5\): bad RLE header/);
  });

  it('Encapsulated Uncompressed Explicit VR Little Endian decodes with the built-in codec', () => {
    const frames = [packSamples([1, 2, 3, 4], 16), packSamples([5, 6, 7, 8], 16)];
    const img = readDicom(imageFile({ rows: 2, columns: 2, samples: [], frames: 2, fragments: frames, transferSyntax: TS.encapsulatedUncompressed }));
    expect(Array.from(img.frame())).toEqual([1, 2, 3, 4]);
    expect(Array.from(img.frame(1))).toEqual([5, 6, 7, 8]);
  });
});

describe('instanceMeta (the one InstanceMeta builder)', () => {
  it('takes first values, the Alphabetic person name, numbers as numbers, and drops empty values', () => {
    const meta = instanceMeta({
      StudyInstanceUID: '1.2.3',
      SeriesInstanceUID: ['1.2.4', '9.9'],
      SOPInstanceUID: '1.2.5\0',
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.1.1',
      PatientName: [{ Alphabetic: 'Doe^Jane', Ideographic: '...' }],
      ReferringPhysicianName: 'Who^Dr=Ideo',
      Modality: 'DX ',
      ViewPosition: ['PA', 'AP'],
      ImageType: ['ORIGINAL', 'PRIMARY'],
      SeriesNumber: '12',
      InstanceNumber: 3,
      Rows: [2048],
      AccessionNumber: '',
      PatientID: null,
      BodyPartExamined: 'CHEST',
    });
    expect(meta).toEqual({
      StudyInstanceUID: '1.2.3',
      SeriesInstanceUID: '1.2.4',
      SOPInstanceUID: '1.2.5',
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.1.1',
      PatientName: 'Doe^Jane',
      ReferringPhysicianName: 'Who^Dr',
      Modality: 'DX',
      ViewPosition: 'PA',
      ImageType: ['ORIGINAL', 'PRIMARY'],
      SeriesNumber: 12,
      InstanceNumber: 3,
      Rows: 2048,
      BodyPartExamined: 'CHEST',
    });
  });

  it('NumberOfFrames reaches InstanceMeta (the SR needs it for Referenced Frame Number), from files by both paths and in the QIDO-RS includefield', () => {
    const file = imageFile({ rows: 2, columns: 2, samples: [1, 2, 3, 4, 5, 6, 7, 8], bitsAllocated: 8, frames: 2 });
    expect(readDicom(file).meta.NumberOfFrames).toBe(2);
    expect(readDicom(file, { viaDcmjs: true }).meta.NumberOfFrames).toBe(2);
    expect(readDicom(file).pixel.numberOfFrames).toBe(2);
    expect(readDicom(imageFile({ rows: 2, columns: 2, samples: [1, 2, 3, 4], bitsAllocated: 8 })).meta).not.toHaveProperty('NumberOfFrames');
    expect(instanceMeta({ StudyInstanceUID: '1.2.3', SeriesInstanceUID: '1.2.4', SOPInstanceUID: '1.2.5', SOPClassUID: '1.2.6', NumberOfFrames: '2 ' }).NumberOfFrames).toBe(2);
    expect(QIDO_INSTANCE_FIELDS).toContain('00280008');
  });

  it('throws DICOM_UNREADABLE without the identifying UIDs', () => {
    expect(errorOf(() => instanceMeta({ StudyInstanceUID: '1.2.3' })).message).toBe(
      'the instance has no SeriesInstanceUID, SOPInstanceUID, SOPClassUID',
    );
  });
});
