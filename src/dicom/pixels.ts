/**
 * Pure pixel unpacking: native little-endian sample bytes → stored values → one grey value
 * per pixel. No DICOM parsing and no I/O here; `dicom-file.ts` feeds it.
 */

/** Palette Color Lookup Table (PS3.3 C.7.6.3.1.5-6), already read in the data set's byte order. */
export interface PaletteLut {
  /** Stored value mapped to entry 0 (may be negative for signed data). */
  firstMapped: number;
  red: Uint8Array | Uint16Array;
  green: Uint8Array | Uint16Array;
  blue: Uint8Array | Uint16Array;
}

/** The Image Pixel module attributes (plus the modality LUT and first VOI window) we use. */
export interface PixelDescription {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  photometricInterpretation: string;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: 0 | 1;
  numberOfFrames: number;
  planarConfiguration: 0 | 1;
  /** 1 when absent. */
  rescaleSlope: number;
  /** 0 when absent. */
  rescaleIntercept: number;
  /** First value of WindowCenter, when present. */
  windowCenter?: number;
  /** First value of WindowWidth, when present. */
  windowWidth?: number;
  /** Present for PALETTE COLOR. */
  palette?: PaletteLut;
}

/** ITU-R BT.601 luma weights (the Y of YBR_FULL, PS3.3 C.7.6.3.1.2). */
export const BT601 = { r: 0.299, g: 0.587, b: 0.114 } as const;

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Number of stored samples in one frame (YBR_FULL_422 stores 2 samples per pixel). */
export function frameSampleCount(p: PixelDescription): number {
  if (p.photometricInterpretation === 'YBR_FULL_422') return p.rows * p.columns * 2;
  return p.rows * p.columns * p.samplesPerPixel;
}

/** Bits in one frame (frames of 1-bit data are not byte aligned). */
export function frameBitLength(p: PixelDescription): number {
  return frameSampleCount(p) * p.bitsAllocated;
}

/**
 * Why we cannot turn this pixel description into grey values, or undefined when we can.
 * Checked before any pixel is touched so that the message names the attribute at fault.
 */
export function unsupportedReason(p: PixelDescription): string | undefined {
  const pi = p.photometricInterpretation;
  if (!Number.isInteger(p.rows) || !Number.isInteger(p.columns) || p.rows < 1 || p.columns < 1) {
    return `Rows/Columns ${p.rows}x${p.columns} is not a valid image size`;
  }
  if (!Number.isInteger(p.numberOfFrames) || p.numberOfFrames < 1) return `NumberOfFrames ${p.numberOfFrames} is not valid`;
  if (![1, 8, 16, 32].includes(p.bitsAllocated)) return `BitsAllocated ${p.bitsAllocated} is not supported (1, 8, 16 or 32)`;
  if (!Number.isInteger(p.bitsStored) || p.bitsStored < 1 || p.bitsStored > p.bitsAllocated) {
    return `BitsStored ${p.bitsStored} does not fit BitsAllocated ${p.bitsAllocated}`;
  }
  if (p.bitsAllocated === 1 && !(pi === 'MONOCHROME1' || pi === 'MONOCHROME2')) {
    return `1-bit ${pi} data is not supported`;
  }
  switch (pi) {
    case 'MONOCHROME1':
    case 'MONOCHROME2':
      return p.samplesPerPixel === 1 ? undefined : `${pi} with SamplesPerPixel ${p.samplesPerPixel} is not valid`;
    case 'PALETTE COLOR':
      if (p.samplesPerPixel !== 1) return `PALETTE COLOR with SamplesPerPixel ${p.samplesPerPixel} is not valid`;
      if (p.palette === undefined) return 'PALETTE COLOR without (non-segmented) Palette Color Lookup Table Data is not supported';
      return undefined;
    case 'RGB':
    case 'YBR_FULL':
      return p.samplesPerPixel === 3 ? undefined : `${pi} with SamplesPerPixel ${p.samplesPerPixel} is not valid`;
    case 'YBR_FULL_422':
      if (p.samplesPerPixel !== 3) return `${pi} with SamplesPerPixel ${p.samplesPerPixel} is not valid`;
      if (p.columns % 2 !== 0) return `uncompressed YBR_FULL_422 needs an even number of columns, not ${p.columns}`;
      return undefined;
    default:
      return `PhotometricInterpretation ${pi} is not supported (MONOCHROME1, MONOCHROME2, PALETTE COLOR, RGB, YBR_FULL, YBR_FULL_422)`;
  }
}

/**
 * Reads one frame of stored values from native little-endian bytes: masked to BitsStored
 * (after shifting down by HighBit+1-BitsStored when HighBit says the bits sit higher), and
 * sign-extended from BitsStored when PixelRepresentation is 1.
 *
 * Throws a plain Error when 32-bit unsigned values do not fit an Int32Array; callers wrap it.
 */
export function readStoredSamples(bytes: Uint8Array, p: PixelDescription, frameIndex: number): Int32Array {
  const count = frameSampleCount(p);
  const out = new Int32Array(count);
  const ba = p.bitsAllocated;
  const bs = p.bitsStored;
  // HighBit is honoured only when it is consistent; otherwise (a common real-world slip)
  // the stored bits are taken to be the low ones, as pydicom does.
  const shift = p.highBit >= bs - 1 && p.highBit < ba ? p.highBit + 1 - bs : 0;
  const signed = p.pixelRepresentation === 1;

  if (ba === 1) {
    const bit0 = frameIndex * count;
    for (let k = 0; k < count; k++) {
      const bit = bit0 + k;
      out[k] = ((bytes[bit >> 3] ?? 0) >> (bit & 7)) & 1;
    }
    return out;
  }

  const byteStart = frameIndex * count * (ba / 8);
  const raw = rawView(bytes, byteStart, count, ba, signed && shift === 0 && bs === ba);
  if (shift === 0 && bs === ba) {
    if (ba === 32 && !signed) {
      for (let k = 0; k < count; k++) {
        const v = raw[k]!;
        if (v > 0x7fffffff) throw new Error(`unsigned 32-bit stored value ${v} does not fit a signed 32-bit integer`);
        out[k] = v;
      }
      return out;
    }
    out.set(raw);
    return out;
  }
  if (signed) {
    const up = 32 - bs;
    if (shift === 0) for (let k = 0; k < count; k++) out[k] = (raw[k]! << up) >> up;
    else for (let k = 0; k < count; k++) out[k] = ((raw[k]! >>> shift) << up) >> up;
  } else {
    const mask = bs === 32 ? 0xffffffff : 2 ** bs - 1;
    for (let k = 0; k < count; k++) {
      const v = (raw[k]! >>> shift) & mask;
      // `&` yields a signed int32: only a 32-bit unsigned value can come out negative.
      if (v < 0) throw new Error(`unsigned 32-bit stored value ${v >>> 0} does not fit a signed 32-bit integer`);
      out[k] = v;
    }
  }
  return out;
}

type RawView = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;

function rawView(bytes: Uint8Array, byteStart: number, count: number, ba: number, signed: boolean): RawView {
  const size = ba / 8;
  const abs = bytes.byteOffset + byteStart;
  if (ba === 8) {
    return signed ? new Int8Array(bytes.buffer, abs, count) : bytes.subarray(byteStart, byteStart + count);
  }
  if (HOST_LITTLE_ENDIAN && abs % size === 0) {
    if (ba === 16) return signed ? new Int16Array(bytes.buffer, abs, count) : new Uint16Array(bytes.buffer, abs, count);
    return signed ? new Int32Array(bytes.buffer, abs, count) : new Uint32Array(bytes.buffer, abs, count);
  }
  // Unaligned (or a big-endian host): read through a DataView.
  const dv = new DataView(bytes.buffer, abs, count * size);
  if (ba === 16) {
    const v = signed ? new Int16Array(count) : new Uint16Array(count);
    for (let k = 0; k < count; k++) v[k] = signed ? dv.getInt16(k * 2, true) : dv.getUint16(k * 2, true);
    return v;
  }
  const v = signed ? new Int32Array(count) : new Uint32Array(count);
  for (let k = 0; k < count; k++) v[k] = signed ? dv.getInt32(k * 4, true) : dv.getUint32(k * 4, true);
  return v;
}

/**
 * One grey value per pixel, row-major. Monochrome data and the Y of YBR_FULL(_422) stay
 * integers; RGB and palette colour (LUT applied first) become BT.601 luma in float32.
 */
export function toGrey(samples: Int32Array, p: PixelDescription): Int32Array | Float32Array {
  const n = p.rows * p.columns;
  switch (p.photometricInterpretation) {
    case 'MONOCHROME1':
    case 'MONOCHROME2':
      return samples;
    case 'YBR_FULL': {
      if (p.planarConfiguration === 1) return samples.slice(0, n);
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) y[i] = samples[3 * i] ?? 0;
      return y;
    }
    case 'YBR_FULL_422': {
      // Y0 Y1 Cb Cr for each horizontal pair of pixels (PS3.3 C.7.6.3.1.2).
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) y[i] = samples[4 * (i >> 1) + (i & 1)] ?? 0;
      return y;
    }
    case 'RGB': {
      const out = new Float32Array(n);
      if (p.planarConfiguration === 1) {
        for (let i = 0; i < n; i++) out[i] = luma(samples[i] ?? 0, samples[n + i] ?? 0, samples[2 * n + i] ?? 0);
      } else {
        for (let i = 0; i < n; i++) out[i] = luma(samples[3 * i] ?? 0, samples[3 * i + 1] ?? 0, samples[3 * i + 2] ?? 0);
      }
      return out;
    }
    case 'PALETTE COLOR': {
      const lut = p.palette;
      if (lut === undefined) throw new Error('PALETTE COLOR without a palette');
      const last = lut.red.length - 1;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = (samples[i] ?? 0) - lut.firstMapped;
        const k = v < 0 ? 0 : v > last ? last : v;
        out[i] = luma(lut.red[k] ?? 0, lut.green[k] ?? 0, lut.blue[k] ?? 0);
      }
      return out;
    }
    default:
      throw new Error(`PhotometricInterpretation ${p.photometricInterpretation} is not supported`);
  }
}

/**
 * The three colour planes (R, G, B) of a colour frame, row-major, on the stored values' scale:
 * RGB as stored, YBR_FULL(_422) converted with the PS3.3 C.7.6.3.1.2 equations (chroma offset
 * 2^(BitsStored-1)), palette colour through its LUT. Undefined for monochrome data: a model that
 * takes RGB then reads the grey image in all three channels.
 */
export function toRgb(samples: Int32Array, p: PixelDescription): [Float32Array, Float32Array, Float32Array] | undefined {
  const n = p.rows * p.columns;
  const planes: [Float32Array, Float32Array, Float32Array] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  const [r, g, b] = planes;
  const half = 2 ** (p.bitsStored - 1);
  const fromYbr = (i: number, y: number, cb: number, cr: number): void => {
    r[i] = y + 1.402 * (cr - half);
    g[i] = y - 0.344136 * (cb - half) - 0.714136 * (cr - half);
    b[i] = y + 1.772 * (cb - half);
  };
  switch (p.photometricInterpretation) {
    case 'MONOCHROME1':
    case 'MONOCHROME2':
      return undefined;
    case 'RGB':
      for (let i = 0; i < n; i++) {
        const planar = p.planarConfiguration === 1;
        r[i] = samples[planar ? i : 3 * i] ?? 0;
        g[i] = samples[planar ? n + i : 3 * i + 1] ?? 0;
        b[i] = samples[planar ? 2 * n + i : 3 * i + 2] ?? 0;
      }
      return planes;
    case 'YBR_FULL':
      for (let i = 0; i < n; i++) {
        const planar = p.planarConfiguration === 1;
        fromYbr(i, samples[planar ? i : 3 * i] ?? 0, samples[planar ? n + i : 3 * i + 1] ?? 0, samples[planar ? 2 * n + i : 3 * i + 2] ?? 0);
      }
      return planes;
    case 'YBR_FULL_422':
      for (let i = 0; i < n; i++) {
        const pair = 4 * (i >> 1);
        fromYbr(i, samples[pair + (i & 1)] ?? 0, samples[pair + 2] ?? 0, samples[pair + 3] ?? 0);
      }
      return planes;
    case 'PALETTE COLOR': {
      const lut = p.palette;
      if (lut === undefined) throw new Error('PALETTE COLOR without a palette');
      const last = lut.red.length - 1;
      for (let i = 0; i < n; i++) {
        const v = (samples[i] ?? 0) - lut.firstMapped;
        const k = v < 0 ? 0 : v > last ? last : v;
        r[i] = lut.red[k] ?? 0;
        g[i] = lut.green[k] ?? 0;
        b[i] = lut.blue[k] ?? 0;
      }
      return planes;
    }
    default:
      throw new Error(`PhotometricInterpretation ${p.photometricInterpretation} is not supported`);
  }
}

function luma(r: number, g: number, b: number): number {
  return BT601.r * r + BT601.g * g + BT601.b * b;
}

/**
 * Native big-endian Pixel Data → little-endian bytes. Samples of 16 and 32 bits are swapped
 * per sample; 8-bit samples in an OW element are swapped per 16-bit word (OW is a stream of
 * 16-bit words), in OB they are left alone.
 */
export function bigEndianToLittle(bytes: Uint8Array, bitsAllocated: number, vr: string): Uint8Array {
  const unit = bitsAllocated >= 32 ? 4 : bitsAllocated === 16 || vr === 'OW' ? 2 : 1;
  if (unit === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  const whole = bytes.length - (bytes.length % unit);
  for (let i = 0; i < whole; i += unit) {
    for (let j = 0; j < unit; j++) out[i + j] = bytes[i + unit - 1 - j] ?? 0;
  }
  for (let i = whole; i < bytes.length; i++) out[i] = bytes[i] ?? 0;
  return out;
}
