import { imageSpecV1, type ImageSpec } from '../../src/config/manifest.ts';
/**
 * A minimal DICOM Part 10 writer for tests: exact control over transfer syntax, VRs and the
 * pixel layout, so odd cases (signed 12-bit, planar RGB, palette, encapsulated, multi-frame)
 * need no binary fixtures. Not for production use.
 */

/** The reference model's `image` object (models/MANIFEST.md, schema 1), normalised; shared by the preprocess tests. */
export const MANIFEST_IMAGE_SPEC: ImageSpec = imageSpecV1({
  size: 224,
  modalityLut: true,
  window: { source: 'dataset-then-percentile', percentiles: [0.5, 99.5] },
  photometric: { MONOCHROME1: 'invert', MONOCHROME2: 'keep' },
  resize: 'bilinear-half-pixel',
  normalize: { mean: 0.5, std: 0.25 },
});

/** The spec with a size×size output (and, by default, the identity normalisation). */
export function specOfSize(size: number, extra: Partial<ImageSpec> = {}): ImageSpec {
  return { ...MANIFEST_IMAGE_SPEC, size: { width: size, height: size }, normalize: { mean: [0], std: [1] }, ...extra };
}

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  explicitBE: '1.2.840.10008.1.2.2',
  encapsulatedUncompressed: '1.2.840.10008.1.2.1.98',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegExtended: '1.2.840.10008.1.2.4.51',
  jpegLossless: '1.2.840.10008.1.2.4.57',
  jpegLosslessSV1: '1.2.840.10008.1.2.4.70',
  jpegLsLossless: '1.2.840.10008.1.2.4.80',
  jpeg2000Lossless: '1.2.840.10008.1.2.4.90',
  jpeg2000: '1.2.840.10008.1.2.4.91',
  mpeg2: '1.2.840.10008.1.2.4.100',
  htj2kLossless: '1.2.840.10008.1.2.4.201',
  rle: '1.2.840.10008.1.2.5',
  deflatedImageFrame: '1.2.840.10008.1.2.8.1',
} as const;

export type Value = string | string[] | number | number[] | Uint8Array | { fragments: Uint8Array[] };

export interface Element {
  /** 0xGGGGEEEE */
  tag: number;
  vr: string;
  value: Value;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);

class Writer {
  private chunks: Uint8Array[] = [];
  constructor(private readonly le: boolean) {}
  bytes(b: Uint8Array): void {
    this.chunks.push(b);
  }
  u16(v: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, this.le);
    this.chunks.push(b);
  }
  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, this.le);
    this.chunks.push(b);
  }
  ascii(s: string): void {
    this.chunks.push(new TextEncoder().encode(s));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function encodeValue(vr: string, value: Value, le: boolean): Uint8Array {
  if (value instanceof Uint8Array) return value.length % 2 ? concatBytes([value, new Uint8Array(1)]) : value;
  if (typeof value === 'object' && !Array.isArray(value)) throw new Error('fragments only for Pixel Data');
  const list = Array.isArray(value) ? value : [value];
  const numeric: Record<string, [number, (dv: DataView, at: number, v: number) => void]> = {
    US: [2, (dv, at, v) => dv.setUint16(at, v, le)],
    SS: [2, (dv, at, v) => dv.setInt16(at, v, le)],
    UL: [4, (dv, at, v) => dv.setUint32(at, v, le)],
    SL: [4, (dv, at, v) => dv.setInt32(at, v, le)],
    FL: [4, (dv, at, v) => dv.setFloat32(at, v, le)],
    FD: [8, (dv, at, v) => dv.setFloat64(at, v, le)],
  };
  const num = numeric[vr];
  if (num !== undefined) {
    const [size, set] = num;
    const out = new Uint8Array(size * list.length);
    const dv = new DataView(out.buffer);
    list.forEach((v, i) => set(dv, i * size, Number(v)));
    return out;
  }
  let s = list.map(String).join('\\');
  if (s.length % 2) s += vr === 'UI' ? '\0' : ' ';
  return new TextEncoder().encode(s);
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function writeElement(w: Writer, el: Element, explicit: boolean, le: boolean): void {
  w.u16(el.tag >>> 16);
  w.u16(el.tag & 0xffff);
  const v = el.value;
  if (typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)) {
    // Encapsulated Pixel Data: empty Basic Offset Table, one item per fragment, delimiter.
    if (explicit) {
      w.ascii(el.vr);
      w.u16(0);
    }
    w.u32(0xffffffff);
    w.u16(0xfffe);
    w.u16(0xe000);
    w.u32(0);
    for (const f of v.fragments) {
      const even = f.length % 2 ? concatBytes([f, new Uint8Array(1)]) : f;
      w.u16(0xfffe);
      w.u16(0xe000);
      w.u32(even.length);
      w.bytes(even);
    }
    w.u16(0xfffe);
    w.u16(0xe0dd);
    w.u32(0);
    return;
  }
  const bytes = encodeValue(el.vr, v, le);
  if (explicit) {
    w.ascii(el.vr);
    if (LONG_VRS.has(el.vr)) {
      w.u16(0);
      w.u32(bytes.length);
    } else {
      w.u16(bytes.length);
    }
  } else {
    w.u32(bytes.length);
  }
  w.bytes(bytes);
}

/** A Part 10 file: preamble, "DICM", File Meta Information, then `elements` in `transferSyntax`. */
export function part10(elements: Element[], transferSyntax: string = TS.explicitLE): Uint8Array {
  const le = transferSyntax !== TS.explicitBE;
  const explicit = transferSyntax !== TS.implicitLE;
  const metaW = new Writer(true);
  const sop = elements.find((e) => e.tag === 0x00080018)?.value ?? '2.25.1';
  const cls = elements.find((e) => e.tag === 0x00080016)?.value ?? '1.2.840.10008.5.1.4.1.1.7';
  for (const el of [
    { tag: 0x00020001, vr: 'OB', value: new Uint8Array([0, 1]) },
    { tag: 0x00020002, vr: 'UI', value: String(cls) },
    { tag: 0x00020003, vr: 'UI', value: String(sop) },
    { tag: 0x00020010, vr: 'UI', value: transferSyntax },
    { tag: 0x00020012, vr: 'UI', value: '2.25.4242' },
  ] satisfies Element[]) {
    writeElement(metaW, el, true, true);
  }
  const meta = metaW.concat();
  const head = new Writer(true);
  head.bytes(new Uint8Array(128));
  head.ascii('DICM');
  writeElement(head, { tag: 0x00020000, vr: 'UL', value: meta.length }, true, true);
  head.bytes(meta);
  const body = new Writer(le);
  for (const el of [...elements].sort((a, b) => a.tag - b.tag)) writeElement(body, el, explicit, le);
  return concatBytes([head.concat(), body.concat()]);
}

export interface ImageOptions {
  rows: number;
  columns: number;
  /** Stored sample values in file order (all frames, all samples). */
  samples: ArrayLike<number>;
  bitsAllocated?: number;
  bitsStored?: number;
  highBit?: number;
  pixelRepresentation?: 0 | 1;
  samplesPerPixel?: number;
  photometric?: string;
  planarConfiguration?: 0 | 1;
  frames?: number;
  rescale?: [slope: number, intercept: number];
  window?: [center: number, width: number];
  transferSyntax?: string;
  /** Pixel Data given as fragments (encapsulated); `samples` is then ignored. */
  fragments?: Uint8Array[];
  /** Leave Pixel Data out. */
  noPixelData?: boolean;
  extra?: Element[];
}

/** Packs stored samples into Pixel Data bytes in the given byte order. */
export function packSamples(samples: ArrayLike<number>, bitsAllocated: number, le = true): Uint8Array {
  const size = bitsAllocated / 8;
  const out = new Uint8Array(samples.length * size);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < samples.length; i++) {
    const v = Number(samples[i]);
    if (size === 1) dv.setUint8(i, v & 0xff);
    else if (size === 2) dv.setUint16(i * 2, v & 0xffff, le);
    else dv.setUint32(i * 4, v >>> 0, le);
  }
  return out;
}

/** A Secondary Capture-like image instance. */
export function imageFile(o: ImageOptions): Uint8Array {
  const ts = o.transferSyntax ?? TS.explicitLE;
  const ba = o.bitsAllocated ?? 16;
  const bs = o.bitsStored ?? ba;
  const spp = o.samplesPerPixel ?? 1;
  const els: Element[] = [
    { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
    { tag: 0x00080018, vr: 'UI', value: '2.25.1001' },
    { tag: 0x00080060, vr: 'CS', value: 'OT' },
    { tag: 0x00100010, vr: 'PN', value: 'TEST^PATIENT' },
    { tag: 0x0020000d, vr: 'UI', value: '2.25.1002' },
    { tag: 0x0020000e, vr: 'UI', value: '2.25.1003' },
    { tag: 0x00280002, vr: 'US', value: spp },
    { tag: 0x00280004, vr: 'CS', value: o.photometric ?? 'MONOCHROME2' },
    { tag: 0x00280010, vr: 'US', value: o.rows },
    { tag: 0x00280011, vr: 'US', value: o.columns },
    { tag: 0x00280100, vr: 'US', value: ba },
    { tag: 0x00280101, vr: 'US', value: bs },
    { tag: 0x00280102, vr: 'US', value: o.highBit ?? bs - 1 },
    { tag: 0x00280103, vr: 'US', value: o.pixelRepresentation ?? 0 },
    ...(o.extra ?? []),
  ];
  if (spp > 1) els.push({ tag: 0x00280006, vr: 'US', value: o.planarConfiguration ?? 0 });
  if (o.frames !== undefined) els.push({ tag: 0x00280008, vr: 'IS', value: String(o.frames) });
  if (o.rescale) {
    els.push({ tag: 0x00281053, vr: 'DS', value: String(o.rescale[0]) }, { tag: 0x00281052, vr: 'DS', value: String(o.rescale[1]) });
  }
  if (o.window) {
    els.push({ tag: 0x00281050, vr: 'DS', value: String(o.window[0]) }, { tag: 0x00281051, vr: 'DS', value: String(o.window[1]) });
  }
  if (!o.noPixelData) {
    if (o.fragments) {
      els.push({ tag: 0x7fe00010, vr: 'OB', value: { fragments: o.fragments } });
    } else {
      els.push({ tag: 0x7fe00010, vr: ba === 8 ? 'OB' : 'OW', value: packSamples(o.samples, ba, ts !== TS.explicitBE) });
    }
  }
  return part10(els, ts);
}
