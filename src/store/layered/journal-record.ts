/**
 * The journal's record format (docs/store-format.md, "Record"): encoding a validated write
 * batch into header and body buffers without copying its data, and decoding records on
 * replay. Checksums are computed here, once: the body checksum for the record and one
 * XXH64 per data block, which the journal index keeps so reads and rolls can verify blocks.
 */
import { Xxh64, xxh64 } from "@node-rs/xxhash";
import { BLOCK_SIZE, type Extent } from "../staging-store.js";

export const RECORD_MAGIC = 0x314a424c; // "LBJ1" read as a little-endian u32
export const RECORD_VERSION = 1;
export const HEADER_SIZE = 56;
export const DESCRIPTOR_SIZE = 24;
export const KIND_DATA = 1;
export const KIND_ZERO = 2;
const FLAG_TAG = 1;
/** bodyLength is a u32. */
export const MAX_BODY_LENGTH = 0xffffffff;

/** A batch ready to be written: everything but its seq, which the group commit assigns. */
export interface EncodedBatch {
  readonly extents: readonly Extent[];
  /** descriptor, then data (for data extents), per extent: the record body. */
  readonly body: readonly Buffer[];
  readonly bodyLength: number;
  readonly bodyChecksum: bigint;
  /** One XXH64 per block of each data extent (empty array for zero extents). */
  readonly blockSums: readonly BigUint64Array[];
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

/** One extent decoded from a record body; `dataOffset` is relative to the body start. */
export interface DecodedExtent {
  readonly disk: number;
  readonly kind: typeof KIND_DATA | typeof KIND_ZERO;
  readonly offset: number;
  readonly length: number;
  readonly dataOffset: number;
}

export function blockChecksums(data: Uint8Array): BigUint64Array {
  const sums = new BigUint64Array(data.length / BLOCK_SIZE);
  for (let i = 0; i < sums.length; i++) {
    sums[i] = xxh64(data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
  }
  return sums;
}

/** Encodes a batch whose extents are already validated. */
export function encodeBatch(extents: readonly Extent[], tag: number | undefined): EncodedBatch {
  const hasher = new Xxh64();
  const body: Buffer[] = [];
  const blockSums: BigUint64Array[] = [];
  let bodyLength = 0;
  for (const extent of extents) {
    const desc = Buffer.alloc(DESCRIPTOR_SIZE);
    desc.writeUInt32LE(extent.disk, 0);
    desc.writeUInt8(extent.kind === "data" ? KIND_DATA : KIND_ZERO, 4);
    desc.writeBigUInt64LE(BigInt(extent.offset), 8);
    desc.writeBigUInt64LE(BigInt(extent.length), 16);
    hasher.update(desc);
    body.push(desc);
    bodyLength += DESCRIPTOR_SIZE;
    if (extent.kind === "data") {
      hasher.update(extent.data);
      body.push(extent.data);
      bodyLength += extent.length;
      blockSums.push(blockChecksums(extent.data));
    } else {
      blockSums.push(new BigUint64Array(0));
    }
  }
  return { extents, body, bodyLength, bodyChecksum: hasher.digest(), blockSums, tag };
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

/** Decodes a body whose checksum has been verified; undefined if its structure is inconsistent. */
export function decodeBody(body: Buffer, extentCount: number): DecodedExtent[] | undefined {
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
    out.push({ disk, kind, offset, length, dataOffset: pos });
    if (kind === KIND_DATA) pos += length;
  }
  return pos === body.length ? out : undefined;
}

export function safeNumber(value: bigint): number | undefined {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}
