/**
 * The journal's record format, version 2 (docs/store-format.md, "Journal records"):
 * encoding a validated write batch into header and body buffers, and decoding records on
 * replay. A batch's data is sealed into frames here, when `append` is called and before the
 * group commit, so sealing overlaps the previous group's write and sync. All-zero blocks
 * inside data extents become zero extents: zeros are never stored.
 */
import { Xxh64, xxh64 } from "@node-rs/xxhash";
import { isZero } from "../codec/is-zero.js";
import { BLOCK_SIZE, type Extent } from "../staging-store.js";
import {
  BLOCKS_PER_FRAME,
  FRAME_PLAIN_BYTES,
  frameInfo,
  frameLengthAt,
  type FrameContext,
} from "./frame-context.js";

export const RECORD_MAGIC = 0x314a424c; // "LBJ1" read as a little-endian u32
export const RECORD_VERSION = 2;
export const HEADER_SIZE = 56;
export const DESCRIPTOR_SIZE = 24;
export const KIND_DATA = 1;
export const KIND_ZERO = 2;
const FLAG_TAG = 1;
/** bodyLength is a u32. */
export const MAX_BODY_LENGTH = 0xffffffff;

/** One extent as written: a data extent carries the byte ends of its frames. */
export interface EncodedExtent {
  readonly disk: number;
  /** Bytes, block aligned. */
  readonly offset: number;
  readonly length: number;
  /**
   * Data extent: end of each frame relative to the start of the first one (frame k spans
   * `[ends[k-1] ?? 0, ends[k])` and holds blocks `16k ..` of the extent). Zero extent: undefined.
   */
  readonly frameEnds: Uint32Array | undefined;
}

/** A batch ready to be written: everything but its seq, which the group commit assigns. */
export interface EncodedBatch {
  readonly extents: readonly EncodedExtent[];
  /** descriptor, then frames (for data extents), per extent: the record body. */
  readonly body: readonly Buffer[];
  readonly bodyLength: number;
  readonly bodyChecksum: bigint;
  readonly tag: number | undefined;
}

export interface RecordHeader {
  readonly seq: number;
  readonly groupFirstSeq: number;
  readonly tag: number | undefined;
  readonly extentCount: number;
  readonly bodyLength: number;
  readonly bodyChecksum: bigint;
}

/** One extent decoded from a record body; `dataOffset` (its first frame) is relative to the body start. */
export interface DecodedExtent extends EncodedExtent {
  readonly dataOffset: number;
}

function descriptor(disk: number, kind: number, offset: number, length: number): Buffer {
  const desc = Buffer.alloc(DESCRIPTOR_SIZE);
  desc.writeUInt32LE(disk, 0);
  desc.writeUInt8(kind, 4);
  desc.writeBigUInt64LE(BigInt(offset), 8);
  desc.writeBigUInt64LE(BigInt(length), 16);
  return desc;
}

/**
 * Encodes a batch whose extents are already validated, sealing its data with `frames`.
 * Runs of all-zero blocks in a data extent are written as zero extents, in place, so the
 * batch means the same.
 */
export function encodeBatch(
  extents: readonly Extent[],
  tag: number | undefined,
  frames: FrameContext,
): EncodedBatch {
  const hasher = new Xxh64();
  const body: Buffer[] = [];
  const out: EncodedExtent[] = [];
  let bodyLength = 0;
  const push = (buf: Buffer): void => {
    hasher.update(buf);
    body.push(buf);
    bodyLength += buf.length;
  };
  const zeroRun = (disk: number, offset: number, length: number): void => {
    push(descriptor(disk, KIND_ZERO, offset, length));
    out.push({ disk, offset, length, frameEnds: undefined });
  };
  const dataRun = (disk: number, offset: number, data: Buffer): void => {
    push(descriptor(disk, KIND_DATA, offset, data.length));
    const count = Math.ceil(data.length / FRAME_PLAIN_BYTES);
    const ends = new Uint32Array(count);
    let end = 0;
    const firstBlock = offset / BLOCK_SIZE;
    for (let k = 0; k < count; k++) {
      const plain = data.subarray(k * FRAME_PLAIN_BYTES, (k + 1) * FRAME_PLAIN_BYTES);
      const frame = frames.seal(plain, disk, firstBlock + k * BLOCKS_PER_FRAME, plain.length / BLOCK_SIZE);
      push(frame);
      end += frame.length;
      ends[k] = end;
    }
    out.push({ disk, offset, length: data.length, frameEnds: ends });
  };
  for (const extent of extents) {
    if (extent.kind === "zero") {
      zeroRun(extent.disk, extent.offset, extent.length);
      continue;
    }
    // Split into runs of zero and non-zero blocks.
    const blocks = extent.length / BLOCK_SIZE;
    let runStart = 0;
    let runZero = isZero(extent.data.subarray(0, BLOCK_SIZE));
    for (let b = 1; b <= blocks; b++) {
      const zero = b < blocks ? isZero(extent.data.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE)) : !runZero;
      if (zero === runZero) continue;
      const offset = extent.offset + runStart * BLOCK_SIZE;
      if (runZero) zeroRun(extent.disk, offset, (b - runStart) * BLOCK_SIZE);
      else dataRun(extent.disk, offset, extent.data.subarray(runStart * BLOCK_SIZE, b * BLOCK_SIZE));
      runStart = b;
      runZero = zero;
    }
  }
  return { extents: out, body, bodyLength, bodyChecksum: hasher.digest(), tag };
}

export function encodeHeader(batch: EncodedBatch, seq: number, groupFirstSeq: number): Buffer {
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32LE(RECORD_MAGIC, 0);
  header.writeUInt8(RECORD_VERSION, 4);
  header.writeUInt8(batch.tag === undefined ? 0 : FLAG_TAG, 5);
  header.writeBigUInt64LE(BigInt(seq), 8);
  header.writeBigUInt64LE(BigInt(groupFirstSeq), 16);
  header.writeDoubleLE(batch.tag ?? 0, 24);
  header.writeUInt32LE(batch.extents.length, 32);
  header.writeUInt32LE(batch.bodyLength, 36);
  header.writeBigUInt64LE(batch.bodyChecksum, 40);
  header.writeBigUInt64LE(xxh64(header.subarray(0, 48)), 48);
  return header;
}

/** Decodes a header; undefined when the magic, version or header checksum is wrong. */
export function decodeHeader(buf: Buffer): RecordHeader | undefined {
  if (buf.length < HEADER_SIZE) return undefined;
  if (buf.readUInt32LE(0) !== RECORD_MAGIC || buf.readUInt8(4) !== RECORD_VERSION) return undefined;
  if (buf.readBigUInt64LE(48) !== xxh64(buf.subarray(0, 48))) return undefined;
  const seq = safeNumber(buf.readBigUInt64LE(8));
  const groupFirstSeq = safeNumber(buf.readBigUInt64LE(16));
  if (seq === undefined || groupFirstSeq === undefined) return undefined;
  const flags = buf.readUInt8(5);
  return {
    seq,
    groupFirstSeq,
    tag: flags & FLAG_TAG ? buf.readDoubleLE(24) : undefined,
    extentCount: buf.readUInt32LE(32),
    bodyLength: buf.readUInt32LE(36),
    bodyChecksum: buf.readBigUInt64LE(40),
  };
}

/**
 * Decodes a body whose checksum has been verified, parsing frame headers (without opening
 * the frames) to find each frame's length. Undefined if its structure is inconsistent:
 * wrong frame count or sizes for an extent, or frames not `encrypted` as the timeline's are.
 */
export function decodeBody(
  body: Buffer,
  extentCount: number,
  encrypted: boolean,
): DecodedExtent[] | undefined {
  const out: DecodedExtent[] = [];
  let pos = 0;
  for (let i = 0; i < extentCount; i++) {
    if (pos + DESCRIPTOR_SIZE > body.length) return undefined;
    const disk = body.readUInt32LE(pos);
    const kind = body.readUInt8(pos + 4);
    const offset = safeNumber(body.readBigUInt64LE(pos + 8));
    const length = safeNumber(body.readBigUInt64LE(pos + 16));
    if ((kind !== KIND_DATA && kind !== KIND_ZERO) || offset === undefined || length === undefined) {
      return undefined;
    }
    pos += DESCRIPTOR_SIZE;
    if (kind === KIND_ZERO) {
      out.push({ disk, offset, length, frameEnds: undefined, dataOffset: pos });
      continue;
    }
    if (length === 0 || length % BLOCK_SIZE !== 0) return undefined;
    const count = Math.ceil(length / FRAME_PLAIN_BYTES);
    const ends = new Uint32Array(count);
    const dataOffset = pos;
    for (let k = 0; k < count; k++) {
      const frameLength = frameLengthAt(body, pos);
      if (frameLength === undefined) return undefined;
      const info = frameInfo(body, pos);
      if (info.encrypted !== encrypted) return undefined;
      if (info.plainLength !== Math.min(FRAME_PLAIN_BYTES, length - k * FRAME_PLAIN_BYTES)) return undefined;
      pos += frameLength;
      ends[k] = pos - dataOffset;
    }
    out.push({ disk, offset, length, frameEnds: ends, dataOffset });
  }
  return pos === body.length ? out : undefined;
}

export function safeNumber(value: bigint): number | undefined {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}
