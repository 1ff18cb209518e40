/**
 * A small decoder for sequential DCT JPEG with Huffman coding (ISO/IEC 10918-1 processes 1, 2
 * and 4: baseline and extended, 8- and 12-bit samples). It exists for 12-bit JPEG Extended
 * (1.2.840.10008.1.2.4.51), which the 8-bit libjpeg-turbo build cannot decode and for which no
 * maintained JavaScript or WebAssembly package exists; 8-bit streams go to libjpeg-turbo.
 *
 * Output: samples at full resolution (chroma replicated when subsampled), pixel-interleaved,
 * no colour conversion. The inverse DCT is the separable floating-point one, so values may
 * differ from libjpeg's integer IDCT by one count at most. Strict about truncation: a scan that
 * runs out of data is an error, not a grey band.
 */
import { isSof, sofName } from './jpeg-markers.ts';
import { BitReader, buildHuffman, extend, JpegError, type Huffman } from './jpeg-huffman.ts';

export interface DctImage {
  width: number;
  height: number;
  precision: number;
  components: number;
  /** width * height * components samples, pixel-interleaved. */
  samples: Uint16Array;
}

/** Zig-zag position → natural (row-major) position in the 8x8 block. */
const ZIGZAG = Int32Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57,
  50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]);

/** IDCT basis: COS[x * 8 + u] = C(u)/2 * cos((2x + 1) u pi / 16). */
const COS = (() => {
  const t = new Float64Array(64);
  for (let x = 0; x < 8; x++) {
    for (let u = 0; u < 8; u++) t[x * 8 + u] = (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  }
  return t;
})();

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Blocks per line and column of this component's own extent (non-interleaved scans). */
  blocksPerLine: number;
  blocksPerColumn: number;
  /** The plane, padded to whole MCUs. */
  planeWidth: number;
  plane: Uint16Array;
  pred: number;
  dc: Huffman | undefined;
  ac: Huffman | undefined;
}



export function decodeJpegDct(b: Uint8Array): DctImage {
  const u16 = (p: number): number => ((b[p] ?? 0) << 8) | (b[p + 1] ?? 0);
  if (u16(0) !== 0xffd8) throw new JpegError('not a JPEG stream (no SOI marker)');
  const qt: (Int32Array | undefined)[] = [];
  const dcTables: (Huffman | undefined)[] = [];
  const acTables: (Huffman | undefined)[] = [];
  let restartInterval = 0;
  let frame: { precision: number; width: number; height: number; comps: Component[]; hmax: number; vmax: number; mcusX: number; mcusY: number } | undefined;
  let scans = 0;
  let pos = 2;

  for (;;) {
    while (pos < b.length && b[pos] !== 0xff) pos++;
    while (pos < b.length && b[pos] === 0xff) pos++;
    if (pos >= b.length) break; // no EOI: accept when a scan was decoded
    const marker = b[pos++] ?? 0;
    if (marker === 0xd9) break;
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) continue;
    const length = u16(pos);
    const end = pos + length;
    if (length < 2 || end > b.length) throw new JpegError(`marker ff ${marker.toString(16)} runs past the end of the stream`);
    let p = pos + 2;
    switch (marker) {
      case 0xdb: // DQT
        while (p < end) {
          const pq = (b[p] ?? 0) >> 4;
          const tq = (b[p] ?? 0) & 15;
          p++;
          const table = new Int32Array(64);
          for (let k = 0; k < 64; k++) {
            table[k] = pq === 0 ? (b[p] ?? 0) : u16(p);
            p += pq === 0 ? 1 : 2;
          }
          qt[tq] = table;
        }
        break;
      case 0xc4: // DHT
        while (p < end) {
          const tc = (b[p] ?? 0) >> 4;
          const th = (b[p] ?? 0) & 15;
          const counts = b.subarray(p + 1, p + 17);
          const total = counts.reduce((s, n) => s + n, 0);
          const values = b.slice(p + 17, p + 17 + total);
          if (p + 17 + total > end) throw new JpegError('a Huffman table runs past its segment');
          (tc === 0 ? dcTables : acTables)[th] = buildHuffman(counts, values);
          p += 17 + total;
        }
        break;
      case 0xdd: // DRI
        restartInterval = u16(p);
        break;
      case 0xda: {
        // SOS
        if (frame === undefined) throw new JpegError('a scan comes before the frame header');
        const f = frame;
        const ns = b[p] ?? 0;
        const scomps: Component[] = [];
        for (let i = 0; i < ns; i++) {
          const id = b[p + 1 + 2 * i] ?? 0;
          const t = b[p + 2 + 2 * i] ?? 0;
          const c = f.comps.find((x) => x.id === id);
          if (c === undefined) throw new JpegError(`the scan names component ${id}, which the frame does not have`);
          c.dc = dcTables[t >> 4];
          c.ac = acTables[t & 15];
          if (c.dc === undefined || c.ac === undefined) throw new JpegError(`component ${id} uses a Huffman table that was not defined`);
          scomps.push(c);
        }
        // Ss, Se, Ah/Al are fixed for sequential DCT (0, 63, 0): not checked, as DCMTK does not.
        const reader = new BitReader(b, end);
        decodeScan(reader, f, scomps, restartInterval, qt);
        scans++;
        pos = reader.pos;
        continue;
      }
      default:
        if (isSof(marker)) {
          if (marker !== 0xc0 && marker !== 0xc1) throw new JpegError(`${sofName(marker)} is not supported by this decoder`);
          const precision = b[p] ?? 0;
          if (precision !== 8 && precision !== 12) throw new JpegError(`sample precision ${precision} is not valid for DCT JPEG (8 or 12)`);
          const height = u16(p + 1);
          const width = u16(p + 3);
          const n = b[p + 5] ?? 0;
          if (height === 0 || width === 0 || n === 0) throw new JpegError(`the frame header says ${width}x${height} with ${n} component(s)`);
          const raw: { id: number; h: number; v: number; tq: number }[] = [];
          for (let i = 0; i < n; i++) {
            const hv = b[p + 7 + 3 * i] ?? 0;
            raw.push({ id: b[p + 6 + 3 * i] ?? 0, h: hv >> 4 || 1, v: hv & 15 || 1, tq: b[p + 8 + 3 * i] ?? 0 });
          }
          const hmax = Math.max(...raw.map((c) => c.h));
          const vmax = Math.max(...raw.map((c) => c.v));
          const mcusX = Math.ceil(width / (8 * hmax));
          const mcusY = Math.ceil(height / (8 * vmax));
          const comps = raw.map((c) => {
            const planeWidth = mcusX * c.h * 8;
            return {
              ...c,
              blocksPerLine: Math.ceil(Math.ceil((width * c.h) / hmax) / 8),
              blocksPerColumn: Math.ceil(Math.ceil((height * c.v) / vmax) / 8),
              planeWidth,
              plane: new Uint16Array(planeWidth * mcusY * c.v * 8),
              pred: 0,
              dc: undefined,
              ac: undefined,
            };
          });
          frame = { precision, width, height, comps, hmax, vmax, mcusX, mcusY };
        }
      // other markers (APPn, COM, DNL, …) are skipped
    }
    pos = end;
  }
  if (frame === undefined) throw new JpegError('the JPEG stream has no frame header');
  if (scans === 0) throw new JpegError('the JPEG stream has no scan');
  return assemble(frame);
}

function decodeScan(
  reader: BitReader,
  f: { precision: number; comps: Component[]; mcusX: number; mcusY: number },
  scomps: Component[],
  restartInterval: number,
  qt: (Int32Array | undefined)[],
): void {
  const coef = new Float64Array(64);
  const tmp = new Float64Array(64);
  const shift = 1 << (f.precision - 1);
  const max = (1 << f.precision) - 1;
  for (const c of scomps) c.pred = 0;

  const block = (c: Component, bx: number, by: number): void => {
    const q = qt[c.tq];
    if (q === undefined) throw new JpegError(`component ${c.id} uses quantisation table ${c.tq}, which was not defined`);
    decodeBlock(reader, c, q, coef);
    idct(coef, tmp, c.plane, by * 8 * c.planeWidth + bx * 8, c.planeWidth, shift, max);
  };

  const single = scomps.length === 1;
  const only = scomps[0] as Component;
  const mcusPerLine = single ? only.blocksPerLine : f.mcusX;
  const total = single ? only.blocksPerLine * only.blocksPerColumn : f.mcusX * f.mcusY;
  for (let m = 0; m < total; m++) {
    if (restartInterval > 0 && m > 0 && m % restartInterval === 0) restart(reader, scomps);
    const mx = m % mcusPerLine;
    const my = Math.floor(m / mcusPerLine);
    if (single) block(only, mx, my);
    else {
      for (const c of scomps) {
        for (let v = 0; v < c.v; v++) for (let h = 0; h < c.h; h++) block(c, mx * c.h + h, my * c.v + v);
      }
    }
    if (reader.overrun) throw new JpegError(`the entropy-coded data ends after ${m} of ${total} MCUs (truncated stream)`);
  }
  // Position the reader after the scan, on the next marker.
  reader.reset();
  skipToMarker(reader);
}

/** One block's coefficients, dequantised, in natural order. */
function decodeBlock(reader: BitReader, c: Component, q: Int32Array, coef: Float64Array): void {
  coef.fill(0);
  const t = reader.decode(c.dc!);
  if (t > 16) throw new JpegError('invalid DC difference category');
  c.pred += extend(reader.receive(t), t);
  coef[0] = c.pred * q[0]!;
  const ac = c.ac!;
  for (let k = 1; k < 64; ) {
    const rs = reader.decode(ac);
    const s = rs & 15;
    const r = rs >> 4;
    if (s === 0) {
      if (r !== 15) break; // end of block
      k += 16;
      continue;
    }
    k += r;
    if (k > 63) throw new JpegError('an AC coefficient run goes past the end of the block');
    coef[ZIGZAG[k]!] = extend(reader.receive(s), s) * q[k]!;
    k++;
  }
}

/** Separable inverse DCT of one block into `out` at `at` (row stride `stride`), level-shifted and clamped. */
function idct(coef: Float64Array, tmp: Float64Array, out: Uint16Array, at: number, stride: number, shift: number, max: number): void {
  for (let y = 0; y < 8; y++) {
    const row = y * 8;
    let nonzero = false;
    for (let u = 1; u < 8; u++) if (coef[row + u] !== 0) nonzero = true;
    if (!nonzero) {
      const dc = coef[row]! * COS[0]!; // COS[x * 8 + 0] is the same for every x
      for (let x = 0; x < 8; x++) tmp[row + x] = dc;
      continue;
    }
    for (let x = 0; x < 8; x++) {
      let s = 0;
      for (let u = 0; u < 8; u++) s += COS[x * 8 + u]! * coef[row + u]!;
      tmp[row + x] = s;
    }
  }
  for (let x = 0; x < 8; x++) {
    for (let y = 0; y < 8; y++) {
      let s = 0;
      for (let v = 0; v < 8; v++) s += COS[y * 8 + v]! * tmp[v * 8 + x]!;
      const val = Math.round(s) + shift;
      out[at + y * stride + x] = val < 0 ? 0 : val > max ? max : val;
    }
  }
}

function restart(reader: BitReader, scomps: Component[]): void {
  reader.reset();
  skipToMarker(reader);
  const m = reader.marker;
  if (m === undefined || m < 0xd0 || m > 0xd7) throw new JpegError('a restart marker is missing');
  reader.marker = undefined;
  reader.pos += 2;
  for (const c of scomps) c.pred = 0;
}

/** Moves `pos` to the next marker at or after it (the reader may already be on one). */
function skipToMarker(reader: BitReader): void {
  if (reader.marker !== undefined) return;
  const b = reader.b;
  let p = reader.pos;
  while (p + 1 < b.length && !(b[p] === 0xff && b[p + 1] !== 0x00 && b[p + 1] !== 0xff)) p++;
  reader.pos = p;
  if (p + 1 < b.length) reader.marker = b[p + 1];
}

function assemble(f: { width: number; height: number; precision: number; comps: Component[]; hmax: number; vmax: number }): DctImage {
  const n = f.comps.length;
  const out = new Uint16Array(f.width * f.height * n);
  f.comps.forEach((c, ci) => {
    const xs = new Int32Array(f.width);
    for (let x = 0; x < f.width; x++) xs[x] = Math.floor((x * c.h) / f.hmax);
    for (let y = 0; y < f.height; y++) {
      const row = Math.floor((y * c.v) / f.vmax) * c.planeWidth;
      let o = y * f.width * n + ci;
      for (let x = 0; x < f.width; x++, o += n) out[o] = c.plane[row + (xs[x] ?? 0)] ?? 0;
    }
  });
  return { width: f.width, height: f.height, precision: f.precision, components: n, samples: out };
}
