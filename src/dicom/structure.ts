/**
 * A structural check of a DICOM Part 10 file: walks the element headers (values are skipped,
 * sequences and encapsulated fragments are followed) and reports the first element that runs
 * past the end of the bytes.
 *
 * Why: dcmjs reads a truncated file without complaint — a value cut short comes back padded
 * with zeros, and a data set cut between elements just ends — so a partial download would
 * otherwise reach the model as an image with a black band. Pure; no I/O.
 */

/** VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length (PS3.5 7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);
/** Every VR of PS3.5 6.2; anything else is read the way dcmjs reads it (as UN). */
const KNOWN_VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'PN',
  'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);
const UNDEFINED = 0xffffffff;
/** Nesting allowed when the caller names no limit (limits.dicom.maxDepth). */
const DEFAULT_MAX_DEPTH = 64;

export class StructureError extends Error {
  constructor(
    message: string,
    readonly truncated: boolean,
    /** Nested past the depth limit: a crafted file, not a damaged one. */
    readonly tooDeep = false,
  ) {
    super(message);
    this.name = 'StructureError';
  }
}

interface Cursor {
  dv: DataView;
  end: number;
  explicit: boolean;
  le: boolean;
  maxDepth: number;
  /** Stop at the top-level Pixel Data (its header start): a header read needs nothing after it. */
  stopAtPixelData?: boolean;
  /** Told of each top-level element (see checkDatasetStructure). */
  visit?: ElementVisitor | undefined;
}

/**
 * A top-level element of the data set: its tag as (group << 16 | element) >>> 0, its VR
 * (undefined in Implicit VR), where its value starts and how long it is (-1: undefined length).
 */
export type ElementVisitor = (tag: number, vr: string | undefined, offset: number, length: number) => void;

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

function tagName(group: number, element: number): string {
  return `(${hex4(group)},${hex4(element)})`;
}

function need(c: Cursor, pos: number, bytes: number, what: string): void {
  if (pos + bytes > c.end) {
    throw new StructureError(`file is truncated: ${what} at byte ${pos} needs ${bytes} bytes, ${Math.max(0, c.end - pos)} remain`, true);
  }
}

/**
 * Walks a data set from `pos`; returns where it ended. With `untilItemEnd`, stops after an
 * Item Delimitation Item (undefined-length sequence item).
 */
function walkDataset(c: Cursor, pos: number, untilItemEnd: boolean, depth: number): number {
  if (depth > c.maxDepth) throw new StructureError(`sequences nested deeper than ${c.maxDepth} (limits.dicom.maxDepth)`, false, true);
  while (pos < c.end) {
    need(c, pos, 8, 'an element header');
    const group = c.dv.getUint16(pos, c.le);
    const element = c.dv.getUint16(pos + 2, c.le);
    if (depth === 0 && c.stopAtPixelData && group === 0x7fe0 && element === 0x0010) return pos;
    if (group === 0xfffe) {
      if (element === 0xe00d && untilItemEnd) return pos + 8;
      throw new StructureError(`unexpected delimiter ${tagName(group, element)} at byte ${pos}`, false);
    }
    let length: number;
    let vr: string | undefined;
    let header: number;
    if (c.explicit) {
      vr = String.fromCharCode(c.dv.getUint8(pos + 4), c.dv.getUint8(pos + 5));
      if (LONG_VRS.has(vr) || !KNOWN_VRS.has(vr)) {
        need(c, pos, 12, `the header of element ${tagName(group, element)}`);
        length = c.dv.getUint32(pos + 8, c.le);
        header = 12;
      } else {
        length = c.dv.getUint16(pos + 6, c.le);
        header = 8;
      }
    } else {
      length = c.dv.getUint32(pos + 4, c.le);
      header = 8;
    }
    pos += header;
    if (depth === 0 && c.visit) c.visit(((group << 16) | element) >>> 0, vr, pos, length === UNDEFINED ? -1 : length);
    if (length === UNDEFINED) {
      const isPixelData = group === 0x7fe0 && element === 0x0010;
      if (isPixelData && vr !== 'SQ') {
        pos = walkItems(c, pos, depth, `Pixel Data fragments`, false);
      } else {
        // SQ (or implicit-VR sequence); UN of undefined length is encoded as Implicit VR Little Endian.
        const inner: Cursor = vr === 'UN' ? { ...c, explicit: false, le: true } : c;
        pos = walkItems(inner, pos, depth, `sequence ${tagName(group, element)}`, true);
      }
    } else {
      if (pos + length > c.end) {
        throw new StructureError(
          `file is truncated: element ${tagName(group, element)} declares ${length} bytes at byte ${pos}, ${Math.max(0, c.end - pos)} remain`,
          true,
        );
      }
      pos += length;
    }
  }
  if (untilItemEnd) throw new StructureError('file is truncated: a sequence item has no Item Delimitation Item', true);
  return pos;
}

/** Items of an undefined-length sequence (or the fragments of encapsulated Pixel Data). */
function walkItems(c: Cursor, pos: number, depth: number, what: string, datasets: boolean): number {
  for (;;) {
    need(c, pos, 8, `an item header in ${what}`);
    const group = c.dv.getUint16(pos, c.le);
    const element = c.dv.getUint16(pos + 2, c.le);
    const length = c.dv.getUint32(pos + 4, c.le);
    pos += 8;
    if (group === 0xfffe && element === 0xe0dd) return pos;
    if (group !== 0xfffe || element !== 0xe000) {
      throw new StructureError(`expected an item in ${what} at byte ${pos - 8}, found ${tagName(group, element)}`, false);
    }
    if (length === UNDEFINED) {
      if (!datasets) throw new StructureError(`a fragment of undefined length in ${what}`, false);
      pos = walkDataset(c, pos, true, depth + 1);
    } else {
      if (pos + length > c.end) {
        throw new StructureError(`file is truncated: an item in ${what} declares ${length} bytes at byte ${pos}, ${Math.max(0, c.end - pos)} remain`, true);
      }
      pos += length;
    }
  }
}

/**
 * Byte offset where the data set starts (after the preamble, "DICM" and the File Meta
 * Information group, whose group length says how long it is).
 */
export function datasetOffset(bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const c: Cursor = { dv, end: bytes.byteLength, explicit: true, le: true, maxDepth: DEFAULT_MAX_DEPTH };
  need(c, 0, 132 + 12, 'the preamble and File Meta Information Group Length');
  const group = dv.getUint16(132, true);
  const element = dv.getUint16(134, true);
  if (group !== 0x0002 || element !== 0x0000) {
    throw new StructureError('the File Meta Information does not start with its group length (0002,0000)', false);
  }
  const metaLength = dv.getUint32(140, true);
  const start = 144 + metaLength;
  if (start > bytes.byteLength) {
    throw new StructureError(`file is truncated: File Meta Information declares ${metaLength} bytes, ${bytes.byteLength - 144} remain`, true);
  }
  return start;
}

/**
 * The Transfer Syntax UID (0002,0010) from the File Meta Information (always Explicit VR
 * Little Endian), or undefined when the group has none. `metaEnd` comes from datasetOffset.
 */
export function metaTransferSyntax(bytes: Uint8Array, metaEnd: number): string | undefined {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const c: Cursor = { dv, end: metaEnd, explicit: true, le: true, maxDepth: DEFAULT_MAX_DEPTH };
  let pos = 144;
  while (pos < metaEnd) {
    need(c, pos, 8, 'a File Meta Information element header');
    const group = dv.getUint16(pos, true);
    const element = dv.getUint16(pos + 2, true);
    const vr = String.fromCharCode(dv.getUint8(pos + 4), dv.getUint8(pos + 5));
    let length: number;
    if (LONG_VRS.has(vr) || !KNOWN_VRS.has(vr)) {
      need(c, pos, 12, `the header of element ${tagName(group, element)}`);
      length = dv.getUint32(pos + 8, true);
      pos += 12;
    } else {
      length = dv.getUint16(pos + 6, true);
      pos += 8;
    }
    need(c, pos, length, `the value of element ${tagName(group, element)}`);
    if (group === 0x0002 && element === 0x0010) {
      let uid = '';
      for (let i = 0; i < length; i++) uid += String.fromCharCode(dv.getUint8(pos + i));
      return uid.replace(/[\0\s]+$/, '').trim();
    }
    pos += length;
  }
  return undefined;
}

/**
 * Throws StructureError when the data set in `bytes` runs past its end or is malformed.
 * `visit` is told of every top-level element on the way (the walk reads every header anyway).
 */
export function checkDatasetStructure(bytes: Uint8Array, explicitVr: boolean, littleEndian: boolean, visit?: ElementVisitor, maxDepth = DEFAULT_MAX_DEPTH): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  walkDataset({ dv, end: bytes.byteLength, explicit: explicitVr, le: littleEndian, visit, maxDepth }, 0, false, 0);
}

/**
 * Walks the data set up to its top-level Pixel Data and returns where that element starts (the
 * data set's length when it has none). What follows Pixel Data is not looked at: the header of a
 * file can be read from a prefix of it.
 */
export function headerStructure(bytes: Uint8Array, explicitVr: boolean, littleEndian: boolean, visit?: ElementVisitor, maxDepth = DEFAULT_MAX_DEPTH): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return walkDataset({ dv, end: bytes.byteLength, explicit: explicitVr, le: littleEndian, visit, maxDepth, stopAtPixelData: true }, 0, false, 0);
}
