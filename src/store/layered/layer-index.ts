/**
 * A layer's index file (docs/store-format.md, "Layer index"): the frame table (where each
 * frame of the data file is and which blocks of which seq it holds) and the interval and
 * version index that resolves a block at a seq to a frame and a block within it, or to
 * zeros. Built by the roll and by compaction (LayerIndexBuilder), checked whole and loaded
 * into typed arrays when a layer opens (decodeLayerIndex): a few bytes per frame, interval
 * and version, no object per block.
 */
import { xxh64 } from "@node-rs/xxhash";
import type { Compression } from "../codec/block-codec.js";
import { HEADER_BYTES, NONCE_BYTES, TAG_BYTES } from "../codec/frame-header.js";
import { CorruptionError } from "../../common/errors.js";
import { BLOCKS_PER_FRAME, FRAME_PLAIN_BYTES, MIN_FRAME_BYTES } from "./frame-context.js";
import { f64, u32, u8 } from "./growable.js";
import { safeNumber } from "./journal-record.js";

export const INDEX_MAGIC = 0x584c424c; // "LBLX" read as a little-endian u32
export const INDEX_VERSION = 2;
export const INDEX_HEADER_SIZE = 64;
export const FRAME_ENTRY_SIZE = 36;
export const INTERVAL_SIZE = 24;
export const VERSION_SIZE = 16;
/** A version's frame number meaning "zeros". */
export const ZERO_FRAME = 0xffffffff;
const FLAG_ENCRYPTED = 1;
const FLAG_PACKED = 2;
const MAX_FRAME_LENGTH = HEADER_BYTES + FRAME_PLAIN_BYTES + NONCE_BYTES + TAG_BYTES;
const COMPRESSIONS: readonly Compression[] = ["none", "lz4", "zstd"];

export interface LayerIndexHeader {
  readonly fromSeq: number;
  readonly toSeq: number;
  /** Frames are sealed with a data key. */
  readonly encrypted: boolean;
  /** A compacted layer (its data file holds only frames); false for L0 (a journal segment). */
  readonly packed: boolean;
  /** The compression its frames were sealed with (frames that did not shrink are stored plain). */
  readonly compression: Compression;
  /** Exact length of the data file. */
  readonly dataLength: number;
}

/** The loaded index, in typed arrays. Intervals of disk d are `diskFirst[d] .. diskFirst[d+1]`. */
export interface LayerIndex extends LayerIndexHeader {
  readonly frOffset: Float64Array;
  readonly frLength: Uint32Array;
  readonly frDisk: Uint32Array;
  readonly frFirst: Float64Array;
  readonly frSeq: Float64Array;
  readonly frCount: Uint8Array;
  readonly diskFirst: Uint32Array;
  readonly ivStart: Float64Array;
  readonly ivCount: Float64Array;
  /** Versions of interval i are `ivVer[i] .. ivVer[i+1]`, seq ascending. */
  readonly ivVer: Uint32Array;
  readonly verSeq: Float64Array;
  /** Frame of the version's first block, or ZERO_FRAME. Its blocks continue into the next frames. */
  readonly verFrame: Uint32Array;
  readonly verOffset: Uint8Array;
  /** Size of the index file. */
  readonly indexBytes: number;
}

/** Collects a layer's frames, intervals and versions, then encodes the index file. */
export class LayerIndexBuilder {
  private readonly frOffset = f64();
  private readonly frLength = u32();
  private readonly frDisk = u32();
  private readonly frFirst = f64();
  private readonly frSeq = f64();
  private readonly frCount = u8();
  private readonly ivDisk = u32();
  private readonly ivStart = f64();
  private readonly ivCount = f64();
  private readonly ivVersions = u32();
  private readonly verSeq = f64();
  private readonly verFrame = u32();
  private readonly verOffset = u8();

  get frames(): number {
    return this.frOffset.length;
  }

  /** Adds a frame (in data file order); returns its number. */
  addFrame(
    offset: number,
    length: number,
    disk: number,
    firstBlock: number,
    blockCount: number,
    seq: number,
  ): number {
    this.frLength.push(length);
    this.frDisk.push(disk);
    this.frFirst.push(firstBlock);
    this.frSeq.push(seq);
    this.frCount.push(blockCount);
    return this.frOffset.push(offset);
  }

  /** Starts an interval (sorted by disk and block); its versions follow with addVersion. */
  addInterval(disk: number, startBlock: number, blockCount: number): number {
    this.ivDisk.push(disk);
    this.ivStart.push(startBlock);
    this.ivVersions.push(0);
    return this.ivCount.push(blockCount);
  }

  /** Lengthens the last interval (two adjacent intervals turned out to have the same versions). */
  extendLastInterval(blocks: number): void {
    const i = this.ivCount.length - 1;
    this.ivCount.set(i, this.ivCount.get(i) + blocks);
  }

  /** Adds a version to the last interval; `frame` is ZERO_FRAME for zeros. Returns its number. */
  addVersion(seq: number, frame: number, offset: number): number {
    const i = this.ivVersions.length - 1;
    this.ivVersions.set(i, this.ivVersions.get(i) + 1);
    this.verFrame.push(frame);
    this.verOffset.push(offset);
    return this.verSeq.push(seq);
  }

  /** Points version `v` (added with a placeholder) at its frame. */
  setVersionFrame(v: number, frame: number, offset: number): void {
    this.verFrame.set(v, frame);
    this.verOffset.set(v, offset);
  }

  encode(header: LayerIndexHeader): Buffer {
    const frames = this.frOffset.length;
    const intervals = this.ivStart.length;
    const versions = this.verSeq.length;
    const size =
      INDEX_HEADER_SIZE + frames * FRAME_ENTRY_SIZE + intervals * INTERVAL_SIZE + versions * VERSION_SIZE;
    const out = Buffer.alloc(size);
    let at = INDEX_HEADER_SIZE;
    for (let f = 0; f < frames; f++, at += FRAME_ENTRY_SIZE) {
      writeU64(out, this.frOffset.get(f), at);
      out.writeUInt32LE(this.frLength.get(f), at + 8);
      out.writeUInt32LE(this.frDisk.get(f), at + 12);
      writeU64(out, this.frFirst.get(f), at + 16);
      writeU64(out, this.frSeq.get(f), at + 24);
      out.writeUInt16LE(this.frCount.get(f), at + 32);
    }
    for (let i = 0; i < intervals; i++, at += INTERVAL_SIZE) {
      out.writeUInt32LE(this.ivDisk.get(i), at);
      out.writeUInt32LE(this.ivVersions.get(i), at + 4);
      writeU64(out, this.ivStart.get(i), at + 8);
      writeU64(out, this.ivCount.get(i), at + 16);
    }
    for (let v = 0; v < versions; v++, at += VERSION_SIZE) {
      writeU64(out, this.verSeq.get(v), at);
      out.writeUInt32LE(this.verFrame.get(v), at + 8);
      out.writeUInt32LE(this.verOffset.get(v), at + 12);
    }
    out.writeUInt32LE(INDEX_MAGIC, 0);
    out.writeUInt16LE(INDEX_VERSION, 4);
    out.writeUInt16LE((header.encrypted ? FLAG_ENCRYPTED : 0) | (header.packed ? FLAG_PACKED : 0), 6);
    writeU64(out, header.fromSeq, 8);
    writeU64(out, header.toSeq, 16);
    out.writeUInt32LE(frames, 24);
    out.writeUInt32LE(intervals, 28);
    out.writeUInt32LE(versions, 32);
    out.writeUInt8(COMPRESSIONS.indexOf(header.compression), 36);
    writeU64(out, header.dataLength, 40);
    out.writeBigUInt64LE(xxh64(out.subarray(INDEX_HEADER_SIZE)), 48);
    out.writeBigUInt64LE(xxh64(out.subarray(0, 56)), 56);
    return out;
  }
}

function writeU64(out: Buffer, value: number, at: number): void {
  out.writeBigUInt64LE(BigInt(value), at);
}

/**
 * Checks and loads an index file's bytes. `diskBlocks` are the timeline's disk sizes in
 * blocks; `fromSeq`/`toSeq` what the manifest says the layer holds. Throws a
 * CorruptionError naming `name` for anything inconsistent.
 */
export function decodeLayerIndex(
  buf: Buffer,
  name: string,
  fromSeq: number,
  toSeq: number,
  diskBlocks: readonly number[],
): LayerIndex {
  const bad = (what: string): CorruptionError => new CorruptionError(`Damaged layer index ${name}: ${what}`);
  if (buf.length < INDEX_HEADER_SIZE) throw bad(`file is ${buf.length} bytes, shorter than its header`);
  if (buf.readUInt32LE(0) !== INDEX_MAGIC) throw bad("bad magic");
  if (buf.readBigUInt64LE(56) !== xxh64(buf.subarray(0, 56))) throw bad("header checksum mismatch");
  const version = buf.readUInt16LE(4);
  if (version !== INDEX_VERSION) throw bad(`unsupported version ${version}`);
  const flags = buf.readUInt16LE(6);
  if ((flags & ~(FLAG_ENCRYPTED | FLAG_PACKED)) !== 0) throw bad(`unknown flags ${flags}`);
  const num = (offset: number): number => {
    const value = safeNumber(buf.readBigUInt64LE(offset));
    if (value === undefined) throw bad(`field at ${offset} out of range`);
    return value;
  };
  if (num(8) !== fromSeq || num(16) !== toSeq) {
    throw bad(`holds seqs (${num(8)}, ${num(16)}] but the manifest says (${fromSeq}, ${toSeq}]`);
  }
  const frames = buf.readUInt32LE(24);
  const intervals = buf.readUInt32LE(28);
  const versions = buf.readUInt32LE(32);
  const compression = COMPRESSIONS[buf.readUInt8(36)];
  if (compression === undefined) throw bad(`unknown compression ${buf.readUInt8(36)}`);
  const dataLength = num(40);
  const expected =
    INDEX_HEADER_SIZE + frames * FRAME_ENTRY_SIZE + intervals * INTERVAL_SIZE + versions * VERSION_SIZE;
  if (buf.length !== expected) throw bad(`file is ${buf.length} bytes, expected ${expected}`);
  if (xxh64(buf.subarray(INDEX_HEADER_SIZE)) !== buf.readBigUInt64LE(48)) throw bad("checksum mismatch");

  const frOffset = new Float64Array(frames);
  const frLength = new Uint32Array(frames);
  const frDisk = new Uint32Array(frames);
  const frFirst = new Float64Array(frames);
  const frSeq = new Float64Array(frames);
  const frCount = new Uint8Array(frames);
  let at = INDEX_HEADER_SIZE;
  let prevEnd = 0;
  for (let f = 0; f < frames; f++, at += FRAME_ENTRY_SIZE) {
    const offset = num(at);
    const length = buf.readUInt32LE(at + 8);
    const disk = buf.readUInt32LE(at + 12);
    const first = num(at + 16);
    const seq = num(at + 24);
    const count = buf.readUInt16LE(at + 32);
    const blocks = diskBlocks[disk];
    if (
      offset < prevEnd ||
      length < MIN_FRAME_BYTES ||
      length > MAX_FRAME_LENGTH ||
      offset + length > dataLength ||
      blocks === undefined ||
      count === 0 ||
      count > BLOCKS_PER_FRAME ||
      first + count > blocks ||
      seq <= fromSeq ||
      seq > toSeq
    ) {
      throw bad(`frame ${f} is out of range or overlaps the previous one`);
    }
    prevEnd = offset + length;
    frOffset[f] = offset;
    frLength[f] = length;
    frDisk[f] = disk;
    frFirst[f] = first;
    frSeq[f] = seq;
    frCount[f] = count;
  }

  const diskCount = diskBlocks.length;
  const diskFirst = new Uint32Array(diskCount + 1);
  const ivStart = new Float64Array(intervals);
  const ivCount = new Float64Array(intervals);
  const ivVer = new Uint32Array(intervals + 1);
  const verSeq = new Float64Array(versions);
  const verFrame = new Uint32Array(versions);
  const verOffset = new Uint8Array(versions);
  const versionsAt = at + intervals * INTERVAL_SIZE;
  let v = 0;
  let prevDisk = 0;
  let prevIvEnd = 0;
  for (let i = 0; i < intervals; i++, at += INTERVAL_SIZE) {
    const disk = buf.readUInt32LE(at);
    const count = buf.readUInt32LE(at + 4);
    const start = num(at + 8);
    const blocks = num(at + 16);
    const diskSize = diskBlocks[disk];
    if (blocks === 0 || count === 0 || diskSize === undefined || start + blocks > diskSize) {
      throw bad(`interval ${i} is out of range`);
    }
    if (disk < prevDisk || (disk === prevDisk && i > 0 && start < prevIvEnd))
      throw bad(`interval ${i} out of order`);
    for (let d = prevDisk + 1; d <= disk; d++) diskFirst[d] = i;
    prevDisk = disk;
    prevIvEnd = start + blocks;
    ivStart[i] = start;
    ivCount[i] = blocks;
    ivVer[i] = v;
    if (v + count > versions) throw bad(`interval ${i} versions beyond the index`);
    let prevSeq = fromSeq;
    for (let k = 0; k < count; k++, v++) {
      const vat = versionsAt + v * VERSION_SIZE;
      const seq = num(vat);
      const frame = buf.readUInt32LE(vat + 8);
      const offset = buf.readUInt32LE(vat + 12);
      if (seq <= prevSeq || seq > toSeq) throw bad(`version ${v} has seq ${seq} out of order or range`);
      prevSeq = seq;
      if (frame !== ZERO_FRAME) {
        checkChain(frame, offset, disk, start, blocks, seq);
      } else if (offset !== 0) {
        throw bad(`zero version ${v} has an offset`);
      }
      verSeq[v] = seq;
      verFrame[v] = frame;
      verOffset[v] = offset;
    }
  }
  if (v !== versions) throw bad(`index lists ${v} versions, header says ${versions}`);
  ivVer[intervals] = v;
  for (let d = prevDisk + 1; d <= diskCount; d++) diskFirst[d] = intervals;

  // A data version's blocks start at block `offset` of `frame` and continue through the next
  // frames, which must hold the following blocks of the same disk. A frame's seq is the
  // newest of its blocks: a packed frame may hold adjacent blocks written at different seqs.
  function checkChain(
    frame: number,
    offset: number,
    disk: number,
    start: number,
    blocks: number,
    seq: number,
  ): void {
    let f = frame;
    let o = offset;
    let block = start;
    let left = blocks;
    while (left > 0) {
      if (
        f >= frames ||
        frDisk[f] !== disk ||
        (frSeq[f] ?? 0) < seq ||
        (frFirst[f] ?? 0) + o !== block ||
        o >= (frCount[f] ?? 0)
      ) {
        throw bad(
          `version of disk ${disk} blocks ${start}+${blocks} at seq ${seq} does not match frame ${f}`,
        );
      }
      const take = Math.min(left, (frCount[f] ?? 0) - o);
      left -= take;
      block += take;
      f++;
      o = 0;
    }
  }

  return {
    fromSeq,
    toSeq,
    encrypted: (flags & FLAG_ENCRYPTED) !== 0,
    packed: (flags & FLAG_PACKED) !== 0,
    compression,
    dataLength,
    frOffset,
    frLength,
    frDisk,
    frFirst,
    frSeq,
    frCount,
    diskFirst,
    ivStart,
    ivCount,
    ivVer,
    verSeq,
    verFrame,
    verOffset,
    indexBytes: buf.length,
  };
}
