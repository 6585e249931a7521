/**
 * An immutable delta layer opened for reading (format: docs/store-format.md, "Delta
 * layers"). The header and index are checked and loaded into typed arrays when the layer
 * opens, a few bytes per interval and version and no object per block; block data and
 * block checksums stay on disk and are read, and verified, per read.
 */
import { open, type FileHandle } from "node:fs/promises";
import { xxh64 } from "@node-rs/xxhash";
import { CorruptionError } from "../../common/errors.js";
import { BLOCK_SIZE } from "../staging-store.js";
import { readExactAt } from "./fs-util.js";
import { safeNumber } from "./journal-record.js";
import { versionNeeded, type GcLimits } from "./gc-limits.js";
import type { JournalEntry } from "./journal-index.js";
import { FileRef, type ReadPlan } from "./read-plan.js";

export const LAYER_MAGIC = 0x4c44424c; // "LBDL" read as a little-endian u32
export const LAYER_VERSION = 1;
export const LAYER_HEADER_SIZE = 4096;
export const INTERVAL_SIZE = 24;
export const VERSION_SIZE = 16;
export const ZERO_VERSION = 0xffffffffffffffffn;

export class DeltaLayer {
  private constructor(
    readonly file: FileRef,
    readonly fromSeq: number,
    readonly toSeq: number,
    private readonly sumsPos: number,
    private readonly diskFirst: Uint32Array,
    private readonly ivStart: Float64Array,
    private readonly ivCount: Float64Array,
    private readonly ivVer: Uint32Array,
    private readonly verSeq: Float64Array,
    private readonly verData: Float64Array,
  ) {}

  /** Opens and checks a layer; `fromSeq`/`toSeq` are what the manifest says it holds. */
  static async open(path: string, fromSeq: number, toSeq: number, diskCount: number): Promise<DeltaLayer> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (err) {
      throw new CorruptionError(`Cannot open layer named by the manifest: ${path}`, { cause: err });
    }
    try {
      return await DeltaLayer.load(path, handle, fromSeq, toSeq, diskCount);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  private static async load(
    path: string,
    handle: FileHandle,
    fromSeq: number,
    toSeq: number,
    diskCount: number,
  ): Promise<DeltaLayer> {
    const bad = (what: string): CorruptionError => new CorruptionError(`Damaged layer ${path}: ${what}`);
    const { size } = await handle.stat();
    if (size < LAYER_HEADER_SIZE) throw bad(`file is ${size} bytes, shorter than its header`);
    const header = Buffer.alloc(64);
    await readExactAt(handle, header, 0, path);
    if (header.readUInt32LE(0) !== LAYER_MAGIC) throw bad("bad magic");
    if (header.readBigUInt64LE(56) !== xxh64(header.subarray(0, 56))) throw bad("header checksum mismatch");
    if (header.readUInt16LE(4) !== LAYER_VERSION) throw bad(`unsupported version ${header.readUInt16LE(4)}`);
    if (header.readUInt16LE(6) !== 0) throw bad(`unsupported flags ${header.readUInt16LE(6)}`);
    const num = (offset: number): number => {
      const value = safeNumber(header.readBigUInt64LE(offset));
      if (value === undefined) throw bad(`header field at ${offset} out of range`);
      return value;
    };
    if (num(8) !== fromSeq || num(16) !== toSeq) {
      throw bad(`holds seqs (${num(8)}, ${num(16)}] but the manifest says (${fromSeq}, ${toSeq}]`);
    }
    const dataBlocks = num(24);
    const intervals = num(32);
    const versions = num(40);
    const sumsPos = LAYER_HEADER_SIZE + dataBlocks * BLOCK_SIZE;
    const indexPos = sumsPos + dataBlocks * 8;
    const indexLength = intervals * INTERVAL_SIZE + versions * VERSION_SIZE;
    if (size !== indexPos + indexLength)
      throw bad(`file is ${size} bytes, expected ${indexPos + indexLength}`);
    const index = Buffer.alloc(indexLength);
    await readExactAt(handle, index, indexPos, path);
    if (xxh64(index) !== header.readBigUInt64LE(48)) throw bad("index checksum mismatch");

    const diskFirst = new Uint32Array(diskCount + 1);
    const ivStart = new Float64Array(intervals);
    const ivCount = new Float64Array(intervals);
    const ivVer = new Uint32Array(intervals + 1);
    const verSeq = new Float64Array(versions);
    const verData = new Float64Array(versions);
    let v = 0;
    let prevDisk = 0;
    let prevEnd = 0;
    for (let i = 0; i < intervals; i++) {
      const at = i * INTERVAL_SIZE;
      const disk = index.readUInt32LE(at);
      const count = index.readUInt32LE(at + 4);
      const start = safeNumber(index.readBigUInt64LE(at + 8));
      const blocks = safeNumber(index.readBigUInt64LE(at + 16));
      if (start === undefined || blocks === undefined || blocks === 0 || count === 0)
        throw bad(`interval ${i}`);
      if (disk >= diskCount || disk < prevDisk || (disk === prevDisk && i > 0 && start < prevEnd)) {
        throw bad(`interval ${i} out of order`);
      }
      for (let d = prevDisk + 1; d <= disk; d++) diskFirst[d] = i;
      prevDisk = disk;
      prevEnd = start + blocks;
      ivStart[i] = start;
      ivCount[i] = blocks;
      ivVer[i] = v;
      if (v + count > versions) throw bad(`interval ${i} versions beyond the index`);
      let prevSeq = fromSeq;
      for (let k = 0; k < count; k++, v++) {
        const vat = intervals * INTERVAL_SIZE + v * VERSION_SIZE;
        const seq = safeNumber(index.readBigUInt64LE(vat));
        const raw = index.readBigUInt64LE(vat + 8);
        const data = raw === ZERO_VERSION ? -1 : safeNumber(raw);
        if (seq === undefined || seq <= prevSeq || seq > toSeq || data === undefined)
          throw bad(`version ${v}`);
        prevSeq = seq;
        if (data >= 0 && data + blocks > dataBlocks) throw bad(`version ${v} points beyond the data section`);
        verSeq[v] = seq;
        verData[v] = data;
      }
    }
    if (v !== versions) throw bad(`index lists ${v} versions, header says ${versions}`);
    ivVer[intervals] = v;
    for (let d = prevDisk + 1; d <= diskCount; d++) diskFirst[d] = intervals;
    return new DeltaLayer(
      new FileRef(path, handle),
      fromSeq,
      toSeq,
      sumsPos,
      diskFirst,
      ivStart,
      ivCount,
      ivVer,
      verSeq,
      verData,
    );
  }

  /** Index of the first interval of `disk` ending after `block`. */
  private firstAfter(disk: number, block: number): number {
    let lo = this.diskFirst[disk] ?? 0;
    let hi = this.diskFirst[disk + 1] ?? lo;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ivStart[mid] ?? 0) + (this.ivCount[mid] ?? 0) <= block) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Fills the plan's unfilled blocks with this layer's newest version at or below `seq`. */
  plan(plan: ReadPlan, seq: number): void {
    if (seq <= this.fromSeq || plan.remaining === 0) return;
    const first = plan.firstBlock;
    const end = first + plan.filled.length;
    const last = this.diskFirst[plan.disk + 1] ?? 0;
    for (let i = this.firstAfter(plan.disk, first); i < last; i++) {
      const start = this.ivStart[i] ?? 0;
      if (start >= end) break;
      let chosen = -1;
      for (let v = (this.ivVer[i + 1] ?? 0) - 1; v >= (this.ivVer[i] ?? 0); v--) {
        if ((this.verSeq[v] ?? Infinity) <= seq) {
          chosen = v;
          break;
        }
      }
      if (chosen < 0) continue;
      const data = this.verData[chosen] ?? -1;
      const versionSeq = this.verSeq[chosen] ?? 0;
      const hi = Math.min(start + (this.ivCount[i] ?? 0), end);
      for (let b = Math.max(start, first); b < hi; b++) {
        const o = b - first;
        if (plan.filled[o]) continue;
        if (data < 0) plan.fillZero(o);
        else {
          const dataBlock = data + (b - start);
          plan.fillFrom(o, this.file, LAYER_HEADER_SIZE + dataBlock * BLOCK_SIZE, versionSeq, {
            sumPos: this.sumsPos + dataBlock * 8,
          });
        }
      }
      if (plan.remaining === 0) return;
    }
  }

  /**
   * Every version as a journal-style entry (block range, seq, data position and checksums),
   * for compaction to write into a merged layer. `ord` continues from `firstOrd`.
   */
  async entries(firstOrd: number): Promise<JournalEntry[]> {
    const dataBlocks = (this.sumsPos - LAYER_HEADER_SIZE) / BLOCK_SIZE;
    const raw = Buffer.alloc(dataBlocks * 8);
    await readExactAt(this.file.handle, raw, this.sumsPos, this.file.path);
    const sums = new BigUint64Array(dataBlocks);
    for (let b = 0; b < dataBlocks; b++) sums[b] = raw.readBigUInt64LE(b * 8);
    const out: JournalEntry[] = [];
    let ord = firstOrd;
    for (let disk = 0; disk + 1 < this.diskFirst.length; disk++) {
      for (let i = this.diskFirst[disk] ?? 0; i < (this.diskFirst[disk + 1] ?? 0); i++) {
        const start = this.ivStart[i] ?? 0;
        const blocks = this.ivCount[i] ?? 0;
        for (let v = this.ivVer[i] ?? 0; v < (this.ivVer[i + 1] ?? 0); v++) {
          const data = this.verData[v] ?? -1;
          out.push({
            ord: ord++,
            seq: this.verSeq[v] ?? 0,
            disk,
            start,
            end: start + blocks,
            zero: data < 0,
            file: this.file,
            filePos: data < 0 ? 0 : LAYER_HEADER_SIZE + data * BLOCK_SIZE,
            sums: data < 0 ? new BigUint64Array(0) : sums.subarray(data, data + blocks),
          });
        }
      }
    }
    return out;
  }

  /**
   * Bytes of data versions no readable seq sees, judged within this layer alone (a version
   * superseded in a newer layer is found when the two are merged).
   */
  garbageBytes(gc: GcLimits): number {
    if (gc.horizon <= this.fromSeq) return 0;
    let blocks = 0;
    const intervals = this.ivStart.length;
    for (let i = 0; i < intervals; i++) {
      const end = (this.ivVer[i + 1] ?? 0) - 1; // the newest version is always needed
      for (let v = this.ivVer[i] ?? 0; v < end; v++) {
        if ((this.verData[v] ?? -1) < 0) continue;
        if (!versionNeeded(this.verSeq[v] ?? 0, this.verSeq[v + 1] ?? 0, gc)) blocks += this.ivCount[i] ?? 0;
      }
    }
    return blocks * BLOCK_SIZE;
  }

  /**
   * Bytes of this layer's newest data versions that `newer` (the next layer up) supersedes
   * with no readable seq in between: the garbage a merge of the two would find.
   */
  supersededBytes(newer: DeltaLayer, gc: GcLimits): number {
    if (gc.horizon <= this.fromSeq) return 0;
    let blocks = 0;
    for (let disk = 0; disk + 1 < this.diskFirst.length; disk++) {
      let j = newer.diskFirst[disk] ?? 0;
      const jEnd = newer.diskFirst[disk + 1] ?? 0;
      for (let i = this.diskFirst[disk] ?? 0; i < (this.diskFirst[disk + 1] ?? 0); i++) {
        const newest = (this.ivVer[i + 1] ?? 0) - 1;
        if ((this.verData[newest] ?? -1) < 0) continue;
        const start = this.ivStart[i] ?? 0;
        const end = start + (this.ivCount[i] ?? 0);
        while (j < jEnd && (newer.ivStart[j] ?? 0) + (newer.ivCount[j] ?? 0) <= start) j++;
        for (let k = j; k < jEnd && (newer.ivStart[k] ?? 0) < end; k++) {
          const next = newer.verSeq[newer.ivVer[k] ?? 0] ?? 0;
          if (versionNeeded(this.verSeq[newest] ?? 0, next, gc)) continue;
          const lo = Math.max(start, newer.ivStart[k] ?? 0);
          const hi = Math.min(end, (newer.ivStart[k] ?? 0) + (newer.ivCount[k] ?? 0));
          blocks += hi - lo;
        }
      }
    }
    return blocks * BLOCK_SIZE;
  }

  /** Bytes of block data this layer holds. */
  get dataBytes(): number {
    return this.sumsPos - LAYER_HEADER_SIZE;
  }

  /** Block ranges [start, end) of `disk` with a version in (fromSeq, toSeq], sorted. */
  changed(disk: number, fromSeq: number, toSeq: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    if (toSeq <= this.fromSeq || fromSeq >= this.toSeq) return out;
    const last = this.diskFirst[disk + 1] ?? 0;
    for (let i = this.diskFirst[disk] ?? 0; i < last; i++) {
      for (let v = this.ivVer[i] ?? 0; v < (this.ivVer[i + 1] ?? 0); v++) {
        const seq = this.verSeq[v] ?? 0;
        if (seq > fromSeq && seq <= toSeq) {
          const start = this.ivStart[i] ?? 0;
          out.push([start, start + (this.ivCount[i] ?? 0)]);
          break;
        }
      }
    }
    return out;
  }

  close(): Promise<void> {
    return this.file.retire();
  }
}
