/**
 * Crafted DICOM Part 10 files, generated at test time (nothing large is committed): what an
 * attacker drops into a watched folder or a PACS sends back. Each is small on disk and declares
 * or expands to something huge. Synthetic: no patient data.
 */
import { constants, deflateRawSync } from 'node:zlib';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const DEFLATED = '1.2.840.10008.1.2.1.99';
const RLE = '1.2.840.10008.1.2.5';
const LONG_VRS = new Set(['OB', 'OW', 'SQ', 'UN', 'UT', 'UC', 'UR', 'OD', 'OF', 'OL', 'OV', 'SV', 'UV']);

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}
function pad(s: string, vr: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
}

/** One Explicit VR Little Endian element; `length` overrides the value's own (a lie, on purpose). */
export function element(tag: number, vr: string, value: Buffer | string, length?: number): Buffer {
  const v = typeof value === 'string' ? pad(value, vr) : value;
  const head = [u16(tag >>> 16), u16(tag & 0xffff), Buffer.from(vr, 'latin1')];
  if (LONG_VRS.has(vr)) head.push(u16(0), u32(length ?? v.length));
  else head.push(u16(length ?? v.length));
  return Buffer.concat([...head, v]);
}

function fileMeta(transferSyntax: string, sopInstanceUID: string): Buffer {
  const body = Buffer.concat([
    element(0x00020001, 'OB', Buffer.from([0, 1])),
    element(0x00020002, 'UI', '1.2.840.10008.5.1.4.1.1.1'),
    element(0x00020003, 'UI', sopInstanceUID),
    element(0x00020010, 'UI', transferSyntax),
  ]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), element(0x00020000, 'UL', u32(body.length)), body]);
}

/**
 * The identifying elements every crafted file carries: a frontal chest CR as the selection rules
 * want it, so that only its crafted part is wrong and it reaches the decoder.
 */
export function identity(studyUID: string, n = 1): Buffer {
  return Buffer.concat([
    element(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.1'),
    element(0x00080018, 'UI', `${studyUID}.9.${n}`),
    element(0x00080060, 'CS', 'CR'),
    element(0x00100020, 'LO', 'HOSTILE'),
    element(0x00180015, 'CS', 'CHEST'),
    element(0x00185101, 'CS', 'PA'),
    element(0x0020000d, 'UI', studyUID),
    element(0x0020000e, 'UI', `${studyUID}.8`),
  ]);
}

export function part10(dataset: Buffer, transferSyntax = EXPLICIT_LE, sop = '1.2.3.4'): Buffer {
  return Buffer.concat([fileMeta(transferSyntax, sop), transferSyntax === DEFLATED ? deflateRawSync(dataset) : dataset]);
}

/** `depth` undefined-length sequences, each in the only item of the one before (ContentSequence). */
export function deepNesting(studyUID: string, depth: number): Buffer {
  const open = Buffer.concat([u16(0x0040), u16(0xa730), Buffer.from('SQ'), u16(0), u32(0xffffffff), u16(0xfffe), u16(0xe000), u32(0xffffffff)]);
  const close = Buffer.concat([u16(0xfffe), u16(0xe00d), u32(0), u16(0xfffe), u16(0xe0dd), u32(0)]);
  return part10(Buffer.concat([identity(studyUID), Buffer.alloc(open.length * depth, open), Buffer.alloc(close.length * depth, close)]));
}

/**
 * A Deflated Explicit VR LE file whose data set inflates to `inflatedBytes` and more (one OB of
 * zeros). Built without ever holding the inflated bytes: one 1 MiB chunk of zeros is deflated
 * ending in a full flush (byte-aligned, dictionary reset), so its output can be repeated, then a
 * final empty block ends the stream. ~1 KB on disk per MiB inflated.
 */
export function deflateBomb(studyUID: string, inflatedBytes: number): Buffer {
  const head = Buffer.concat([identity(studyUID), u16(0x0042), u16(0x0011), Buffer.from('OB'), u16(0), u32(Math.min(inflatedBytes, 0xfffffffe))]);
  const MiB = 1024 * 1024;
  const start = deflateRawSync(head, { finishFlush: constants.Z_FULL_FLUSH });
  const zeros = deflateRawSync(Buffer.alloc(MiB), { finishFlush: constants.Z_FULL_FLUSH });
  const end = deflateRawSync(Buffer.alloc(0));
  const n = Math.ceil(inflatedBytes / MiB);
  return Buffer.concat([fileMeta(DEFLATED, '1.2.3.4'), start, Buffer.alloc(zeros.length * n, zeros), end]);
}

/** An image that declares `rows` × `columns` × `frames` in a few bytes of Pixel Data (native, or RLE). */
export function hugeDeclaredImage(studyUID: string, o: { rows: number; columns: number; frames?: number; syntax: 'native' | 'rle' }): Buffer {
  const image = Buffer.concat([
    element(0x00280002, 'US', u16(1)),
    element(0x00280004, 'CS', 'MONOCHROME2'),
    element(0x00280008, 'IS', String(o.frames ?? 1)),
    element(0x00280010, 'US', u16(Math.min(o.rows, 0xffff))),
    element(0x00280011, 'US', u16(Math.min(o.columns, 0xffff))),
    element(0x00280100, 'US', u16(16)),
    element(0x00280101, 'US', u16(16)),
    element(0x00280102, 'US', u16(15)),
    element(0x00280103, 'US', u16(0)),
  ]);
  if (o.syntax === 'native') {
    return part10(Buffer.concat([identity(studyUID), image, element(0x7fe00010, 'OW', Buffer.alloc(16))]));
  }
  // RLE: an empty offset table, then one fragment with a 64-byte RLE header of one segment.
  const rleHeader = Buffer.alloc(64 + 4);
  rleHeader.writeUInt32LE(1, 0);
  rleHeader.writeUInt32LE(64, 4);
  const pixels = Buffer.concat([
    u16(0x7fe0), u16(0x0010), Buffer.from('OB'), u16(0), u32(0xffffffff),
    u16(0xfffe), u16(0xe000), u32(0),
    u16(0xfffe), u16(0xe000), u32(rleHeader.length), rleHeader,
    u16(0xfffe), u16(0xe0dd), u32(0),
  ]);
  return part10(Buffer.concat([identity(studyUID), image, pixels]), RLE);
}

/** An element that declares `length` bytes (0xFFFFFFF0) where a handful follow. */
export function hugeElementLength(studyUID: string, length = 0xfffffff0): Buffer {
  return part10(Buffer.concat([identity(studyUID), element(0x00091010, 'OB', Buffer.alloc(8), length)]));
}

/** A valid small file cut after `keep` bytes. */
export function truncated(file: Buffer, keep: number): Buffer {
  return file.subarray(0, keep);
}

/** A file whose StudyInstanceUID is `uid` verbatim (path traversal, markup): the value is the attack. */
export function withStudyUid(uid: string): Buffer {
  return part10(
    Buffer.concat([
      element(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
      element(0x00080018, 'UI', '1.2.3.4.5'),
      element(0x00100020, 'LO', 'HOSTILE'),
      element(0x0020000d, 'LO', uid),
      element(0x0020000e, 'UI', '1.2.3.4.6'),
    ]),
  );
}
