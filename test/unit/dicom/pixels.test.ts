import { describe, expect, it } from 'vitest';
import {
  type PixelDescription,
  BT601,
  bigEndianToLittle,
  readStoredSamples,
  toGrey,
  unsupportedReason,
} from '../../../src/dicom/pixels.ts';

function desc(p: Partial<PixelDescription>): PixelDescription {
  return {
    rows: 1,
    columns: 4,
    samplesPerPixel: 1,
    photometricInterpretation: 'MONOCHROME2',
    bitsAllocated: 16,
    bitsStored: 16,
    highBit: 15,
    pixelRepresentation: 0,
    numberOfFrames: 1,
    planarConfiguration: 0,
    rescaleSlope: 1,
    rescaleIntercept: 0,
    ...p,
  };
}

function le16(values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 2);
  values.forEach((v, i) => new DataView(b.buffer).setUint16(i * 2, v & 0xffff, true));
  return b;
}

describe('readStoredSamples', () => {
  it('reads signed 16-bit values', () => {
    expect(Array.from(readStoredSamples(le16([-32768, -1, 0, 32767]), desc({ pixelRepresentation: 1 }), 0))).toEqual([-32768, -1, 0, 32767]);
  });

  it('masks unsigned values to BitsStored (garbage in the high bits is dropped)', () => {
    const p = desc({ bitsStored: 12, highBit: 11 });
    expect(Array.from(readStoredSamples(le16([0xf000 | 4095, 0xa000 | 1, 0x0800, 0]), p, 0))).toEqual([4095, 1, 2048, 0]);
  });

  it('sign-extends from BitsStored when PixelRepresentation is 1', () => {
    const p = desc({ bitsStored: 12, highBit: 11, pixelRepresentation: 1 });
    // 0xffb in 12 bits is -5; 0x800 is -2048; 0x7ff is 2047; high garbage ignored
    expect(Array.from(readStoredSamples(le16([0xaffb, 0x0800, 0xf7ff, 0x0001]), p, 0))).toEqual([-5, -2048, 2047, 1]);
  });

  it('honours a HighBit above BitsStored - 1 (bits stored high)', () => {
    const p = desc({ bitsStored: 12, highBit: 15, pixelRepresentation: 1 });
    expect(Array.from(readStoredSamples(le16([0xffb0, 0x0010, 0x800f]), desc({ ...p, columns: 3 }), 0))).toEqual([-5, 1, -2048]);
  });

  it('reads 8-bit signed and unsigned, and the requested frame', () => {
    const bytes = Uint8Array.from([0, 127, 128, 255, 1, 2, 3, 4]);
    expect(Array.from(readStoredSamples(bytes, desc({ bitsAllocated: 8, bitsStored: 8, highBit: 7 }), 0))).toEqual([0, 127, 128, 255]);
    expect(Array.from(readStoredSamples(bytes, desc({ bitsAllocated: 8, bitsStored: 8, highBit: 7, pixelRepresentation: 1 }), 0))).toEqual([0, 127, -128, -1]);
    expect(Array.from(readStoredSamples(bytes, desc({ bitsAllocated: 8, bitsStored: 8, highBit: 7, numberOfFrames: 2 }), 1))).toEqual([1, 2, 3, 4]);
  });

  it('reads 16-bit data that does not start on an even address', () => {
    const buf = new Uint8Array(9);
    buf.set(le16([1, 2, 65535, 4]), 1);
    expect(Array.from(readStoredSamples(buf.subarray(1), desc({}), 0))).toEqual([1, 2, 65535, 4]);
  });

  it('reads 32-bit values and refuses unsigned ones above 2^31 - 1', () => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setUint32(0, 1248000, true);
    new DataView(b.buffer).setInt32(4, -7, true);
    const p = desc({ columns: 2, bitsAllocated: 32, bitsStored: 32, highBit: 31 });
    expect(Array.from(readStoredSamples(b, { ...p, pixelRepresentation: 1 }, 0))).toEqual([1248000, -7]);
    expect(() => readStoredSamples(b, p, 0)).toThrow(/does not fit/);
  });

  it('reads 1-bit frames that are not byte aligned', () => {
    // 3 pixels per frame, LSB first: frame 0 = bits 0..2, frame 1 = bits 3..5
    const p = desc({ columns: 3, bitsAllocated: 1, bitsStored: 1, highBit: 0, numberOfFrames: 2 });
    const bytes = Uint8Array.from([0b00101101]);
    expect(Array.from(readStoredSamples(bytes, p, 0))).toEqual([1, 0, 1]);
    expect(Array.from(readStoredSamples(bytes, p, 1))).toEqual([1, 0, 1]);
  });
});

describe('toGrey', () => {
  const luma = (r: number, g: number, b: number): number => Math.fround(BT601.r * r + BT601.g * g + BT601.b * b);

  it('RGB, pixel-interleaved and planar, becomes BT.601 luma', () => {
    const rgb = [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
      [10, 20, 30],
    ];
    const interleaved = Int32Array.from(rgb.flat());
    const planar = Int32Array.from([...rgb.map((p) => p[0]!), ...rgb.map((p) => p[1]!), ...rgb.map((p) => p[2]!)]);
    const expected = rgb.map(([r, g, b]) => luma(r!, g!, b!));
    const p = desc({ samplesPerPixel: 3, photometricInterpretation: 'RGB', bitsAllocated: 8, bitsStored: 8, highBit: 7 });
    expect(Array.from(toGrey(interleaved, p))).toEqual(expected);
    expect(Array.from(toGrey(planar, { ...p, planarConfiguration: 1 }))).toEqual(expected);
    expect(expected[0]).toBe(Math.fround(0.299 * 255));
  });

  it('YBR_FULL keeps Y; YBR_FULL_422 takes Y0 Y1 of each pair', () => {
    const p = desc({ columns: 2, samplesPerPixel: 3, photometricInterpretation: 'YBR_FULL', bitsAllocated: 8, bitsStored: 8, highBit: 7 });
    expect(Array.from(toGrey(Int32Array.from([76, 85, 255, 149, 43, 21]), p))).toEqual([76, 149]);
    expect(Array.from(toGrey(Int32Array.from([76, 149, 85, 255]), { ...p, photometricInterpretation: 'YBR_FULL_422' }))).toEqual([76, 149]);
    expect(Array.from(toGrey(Int32Array.from([76, 149, 85, 43, 255, 21]), { ...p, planarConfiguration: 1 }))).toEqual([76, 149]);
  });

  it('PALETTE COLOR applies the LUT (clamped at both ends) before the luma', () => {
    const palette = {
      firstMapped: 10,
      red: Uint16Array.from([0, 65535, 0, 1000]),
      green: Uint16Array.from([0, 0, 65535, 2000]),
      blue: Uint16Array.from([0, 0, 0, 3000]),
    };
    const p = desc({ columns: 6, photometricInterpretation: 'PALETTE COLOR', bitsAllocated: 8, bitsStored: 8, highBit: 7, palette });
    const out = Array.from(toGrey(Int32Array.from([9, 10, 11, 12, 13, 200]), p));
    expect(out).toEqual([0, 0, luma(65535, 0, 0), luma(0, 65535, 0), luma(1000, 2000, 3000), luma(1000, 2000, 3000)]);
  });

  it('monochrome stays integer stored values', () => {
    const s = Int32Array.from([1, -2, 3, 4]);
    expect(toGrey(s, desc({}))).toBe(s);
  });
});

describe('unsupportedReason', () => {
  it('names what is wrong', () => {
    expect(unsupportedReason(desc({}))).toBeUndefined();
    expect(unsupportedReason(desc({ photometricInterpretation: 'YBR_PARTIAL_420', samplesPerPixel: 3 }))).toMatch(/YBR_PARTIAL_420 is not supported/);
    expect(unsupportedReason(desc({ bitsAllocated: 12 }))).toMatch(/BitsAllocated 12/);
    expect(unsupportedReason(desc({ samplesPerPixel: 3 }))).toMatch(/MONOCHROME2 with SamplesPerPixel 3/);
    expect(unsupportedReason(desc({ photometricInterpretation: 'PALETTE COLOR' }))).toMatch(/Palette Color Lookup Table/);
    expect(unsupportedReason(desc({ bitsStored: 17 }))).toMatch(/BitsStored 17/);
  });
});

describe('bigEndianToLittle', () => {
  it('swaps 16-bit samples, 32-bit samples, and 8-bit samples in OW words; leaves OB alone', () => {
    const b = Uint8Array.from([1, 2, 3, 4, 5]);
    expect(Array.from(bigEndianToLittle(b, 16, 'OW'))).toEqual([2, 1, 4, 3, 5]);
    expect(Array.from(bigEndianToLittle(Uint8Array.from([1, 2, 3, 4]), 32, 'OW'))).toEqual([4, 3, 2, 1]);
    expect(Array.from(bigEndianToLittle(b, 8, 'OW'))).toEqual([2, 1, 4, 3, 5]);
    expect(bigEndianToLittle(b, 8, 'OB')).toBe(b);
  });
});
