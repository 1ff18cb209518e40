/** Huffman tables and the bit reader of the sequential DCT JPEG decoder (ISO/IEC 10918-1 F.2.2, C). */
export interface Huffman {
  /** For codes of up to LOOKUP bits: (length << 8) | value, indexed by the next LOOKUP bits; 0 when longer. */
  lookup: Uint16Array;
  maxcode: Int32Array; // by code length 1..16; -1 when no code of that length
  valptr: Int32Array;
  mincode: Int32Array;
  values: Uint8Array;
}

export const LOOKUP = 9;

export class JpegError extends Error {}

export function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const maxcode = new Int32Array(18).fill(-1);
  const valptr = new Int32Array(17);
  const mincode = new Int32Array(17);
  const lookup = new Uint16Array(1 << LOOKUP);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1] ?? 0;
    if (n > 0) {
      valptr[len] = k;
      mincode[len] = code;
      if (len <= LOOKUP) {
        for (let i = 0; i < n; i++) {
          const first = (code + i) << (LOOKUP - len);
          lookup.fill((len << 8) | (values[k + i] ?? 0), first, first + (1 << (LOOKUP - len)));
        }
      }
      code += n;
      k += n;
      maxcode[len] = code - 1;
    }
    code <<= 1;
  }
  return { lookup, maxcode, valptr, mincode, values };
}

/**
 * The entropy-coded data as a bit stream: byte stuffing (FF 00) removed, stopping at the first
 * marker. Past the data it yields zero bits and counts them, so a truncated scan is detected.
 */
export class BitReader {
  private acc = 0;
  private n = 0;
  /** Zero bytes appended after the data ended (as bits). */
  private fake = 0;
  /** Set when the data reached a marker; `pos` then points at its 0xFF. */
  marker: number | undefined;

  constructor(
    readonly b: Uint8Array,
    public pos: number,
  ) {}

  private fill(): void {
    while (this.n <= 16) {
      let byte = 0;
      if (this.marker === undefined && this.pos < this.b.length) {
        byte = this.b[this.pos]!;
        if (byte === 0xff) {
          const next = this.pos + 1 < this.b.length ? this.b[this.pos + 1]! : 0xd9;
          if (next === 0x00) this.pos += 2;
          else {
            this.marker = next;
            byte = 0;
            this.fake += 8;
          }
        } else this.pos++;
      } else this.fake += 8;
      this.acc = ((this.acc << 8) | byte) & 0xffffff;
      this.n += 8;
    }
  }

  /** True when bits past the end of the data have been consumed. */
  get overrun(): boolean {
    return this.fake > this.n;
  }

  receive(k: number): number {
    if (k === 0) return 0;
    if (this.n < k) this.fill();
    this.n -= k;
    return (this.acc >>> this.n) & ((1 << k) - 1);
  }

  decode(h: Huffman): number {
    if (this.n < 16) this.fill();
    const hit = h.lookup[(this.acc >>> (this.n - LOOKUP)) & ((1 << LOOKUP) - 1)]!;
    if (hit !== 0) {
      this.n -= hit >> 8;
      return hit & 0xff;
    }
    // longer than LOOKUP bits
    let len = LOOKUP + 1;
    let code = (this.acc >>> (this.n - len)) & ((1 << len) - 1);
    while (len <= 16 && code > h.maxcode[len]!) {
      len++;
      code = (this.acc >>> (this.n - len)) & ((1 << len) - 1);
    }
    if (len > 16) throw new JpegError('invalid Huffman code in the entropy-coded data');
    this.n -= len;
    return h.values[h.valptr[len]! + code - h.mincode[len]!] ?? 0;
  }

  /** Drops whatever was read ahead (at a restart marker or the end of a scan). */
  reset(): void {
    this.acc = 0;
    this.n = 0;
    this.fake = 0;
  }
}

export function extend(v: number, t: number): number {
  return t === 0 ? 0 : v < 1 << (t - 1) ? v - (1 << t) + 1 : v;
}
