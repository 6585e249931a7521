/**
 * Builds a delta layer file from the journal entries of one sealed segment. The disk's
 * block space is cut at every extent boundary into non-overlapping intervals, each with
 * its versions by seq, so a read finds a block with one binary search. Block data is
 * copied from the segment and checked against the journal's XXH64s on the way, and those
 * same checksums become the layer's: damage is caught, never laundered into a fresh sum.
 * The file is fsync'd, and its directory, before this returns (write ordering invariant 5).
 *
 * Compaction uses the same writer on the entries of several adjacent layers, with the
 * limits of garbage collection: versions no readable seq sees are dropped.
 */
import { open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { xxh64 } from "@node-rs/xxhash";
import { CorruptionError } from "../../common/errors.js";
import { BLOCK_SIZE } from "../staging-store.js";
import { fsyncDir, readExactAt, writeAllAt } from "./fs-util.js";
import type { JournalEntry } from "./journal-index.js";
import {
  INTERVAL_SIZE,
  LAYER_HEADER_SIZE,
  LAYER_MAGIC,
  LAYER_VERSION,
  VERSION_SIZE,
  ZERO_VERSION,
} from "./delta-layer.js";
import { lowerBound, versionNeeded, type GcLimits } from "./gc-limits.js";

/** Layer data is assembled and written 4 MiB at a time. */
const CHUNK_BLOCKS = 1024;
const COPY_CONCURRENCY = 16;

/** `blocks` blocks of a journal entry, from its block `first`, go to layer data block `dataBlock`. */
interface Copy {
  readonly entry: JournalEntry;
  readonly first: number;
  readonly blocks: number;
  readonly dataBlock: number;
}

async function copyBlocks(copy: Copy, target: Buffer, layerPath: string): Promise<void> {
  const { entry, first } = copy;
  await readExactAt(entry.file.handle, target, entry.filePos + first * BLOCK_SIZE, entry.file.path);
  for (let b = 0; b < copy.blocks; b++) {
    if (xxh64(target.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE)) !== entry.sums[first + b]) {
      throw new CorruptionError(
        `Block checksum mismatch in ${entry.file.path}: disk ${entry.disk} block ` +
          `${entry.start + first + b} (seq ${entry.seq}) while rolling it into ${layerPath}`,
      );
    }
  }
}

interface Version {
  readonly interval: number;
  readonly entry: JournalEntry;
  /** Blocks into the entry where this interval starts. */
  readonly skip: number;
}

interface Interval {
  readonly disk: number;
  readonly start: number;
  readonly blocks: number;
  readonly versions: Version[];
}

/** Cuts one disk's entries into elementary intervals, one version per (interval, seq). */
function intervalsOf(disk: number, entries: readonly JournalEntry[], gc: GcLimits | undefined): Interval[] {
  const points = [...new Set(entries.flatMap((e) => [e.start, e.end]))].sort((a, b) => a - b);
  const versions: Version[] = [];
  for (const entry of entries) {
    const last = lowerBound(points, entry.end);
    for (let k = lowerBound(points, entry.start); k < last; k++) {
      versions.push({ interval: k, entry, skip: (points[k] ?? 0) - entry.start });
    }
  }
  versions.sort((a, b) => a.interval - b.interval || a.entry.seq - b.entry.seq || a.entry.ord - b.entry.ord);
  const out: Interval[] = [];
  for (let i = 0; i < versions.length; i++) {
    const v = versions[i] as Version;
    const next = versions[i + 1];
    // Same interval and seq: a later extent of the same batch overrides this one.
    if (next !== undefined && next.interval === v.interval && next.entry.seq === v.entry.seq) continue;
    let current = out[out.length - 1];
    const start = points[v.interval] ?? 0;
    if (current === undefined || current.start !== start) {
      current = { disk, start, blocks: (points[v.interval + 1] ?? 0) - start, versions: [] };
      out.push(current);
    }
    current.versions.push(v);
  }
  if (gc === undefined) return out;
  const collected: Interval[] = [];
  for (const iv of out) {
    const versions = iv.versions.filter((v, j) =>
      versionNeeded(v.entry.seq, iv.versions[j + 1]?.entry.seq ?? Infinity, gc),
    );
    collected.push({ ...iv, versions });
  }
  return collected;
}

export interface LayerSummary {
  readonly dataBlocks: number;
  readonly intervals: number;
  readonly versions: number;
}

export async function writeDeltaLayer(
  path: string,
  entries: readonly JournalEntry[],
  fromSeq: number,
  toSeq: number,
  diskCount: number,
  signal?: AbortSignal,
  gc?: GcLimits,
): Promise<LayerSummary> {
  const intervals: Interval[] = [];
  for (let disk = 0; disk < diskCount; disk++) {
    const own = entries.filter((e) => e.disk === disk);
    for (const iv of intervalsOf(disk, own, gc)) intervals.push(iv);
  }

  // Pass 1: the index, the checksum section, and the list of block copies, in data order.
  let versionCount = 0;
  for (const iv of intervals) versionCount += iv.versions.length;
  const index = Buffer.alloc(intervals.length * INTERVAL_SIZE + versionCount * VERSION_SIZE);
  const copies: Copy[] = [];
  let dataBlock = 0;
  let v = 0;
  for (let i = 0; i < intervals.length; i++) {
    const iv = intervals[i] as Interval;
    const at = i * INTERVAL_SIZE;
    index.writeUInt32LE(iv.disk, at);
    index.writeUInt32LE(iv.versions.length, at + 4);
    index.writeBigUInt64LE(BigInt(iv.start), at + 8);
    index.writeBigUInt64LE(BigInt(iv.blocks), at + 16);
    for (const version of iv.versions) {
      const vat = intervals.length * INTERVAL_SIZE + v++ * VERSION_SIZE;
      index.writeBigUInt64LE(BigInt(version.entry.seq), vat);
      if (version.entry.zero) {
        index.writeBigUInt64LE(ZERO_VERSION, vat + 8);
        continue;
      }
      index.writeBigUInt64LE(BigInt(dataBlock), vat + 8);
      // Split at chunk boundaries so each copy lands inside one chunk.
      for (let done = 0; done < iv.blocks;) {
        const room = CHUNK_BLOCKS - ((dataBlock + done) % CHUNK_BLOCKS);
        const blocks = Math.min(iv.blocks - done, room);
        copies.push({
          entry: version.entry,
          first: version.skip + done,
          blocks,
          dataBlock: dataBlock + done,
        });
        done += blocks;
      }
      dataBlock += iv.blocks;
    }
  }
  const dataBlocks = dataBlock;
  const sums = Buffer.alloc(dataBlocks * 8);
  for (const copy of copies) {
    for (let b = 0; b < copy.blocks; b++) {
      sums.writeBigUInt64LE(copy.entry.sums[copy.first + b] ?? 0n, (copy.dataBlock + b) * 8);
    }
  }

  // Written under a temporary name and renamed, so a layer file is complete whenever it exists.
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, "w");
  try {
    // Pass 2: fill one chunk at a time, several preads in flight (the versions are scattered in
    // the segment), check every block against the journal's sum, write the chunk.
    const chunk = Buffer.alloc(CHUNK_BLOCKS * BLOCK_SIZE);
    let writePos = LAYER_HEADER_SIZE;
    let c = 0;
    for (let chunkStart = 0; chunkStart < dataBlocks; chunkStart += CHUNK_BLOCKS) {
      signal?.throwIfAborted();
      const chunkEnd = Math.min(chunkStart + CHUNK_BLOCKS, dataBlocks);
      const inChunk: Copy[] = [];
      while (c < copies.length && (copies[c] as Copy).dataBlock < chunkEnd) inChunk.push(copies[c++] as Copy);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < inChunk.length) {
          const copy = inChunk[next++] as Copy;
          const offset = (copy.dataBlock - chunkStart) * BLOCK_SIZE;
          await copyBlocks(copy, chunk.subarray(offset, offset + copy.blocks * BLOCK_SIZE), path);
        }
      };
      await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, inChunk.length) }, worker));
      writePos += await writeAllAt(
        handle,
        [chunk.subarray(0, (chunkEnd - chunkStart) * BLOCK_SIZE)],
        writePos,
      );
    }
    await writeAllAt(handle, [sums, index], writePos);
    const header = Buffer.alloc(LAYER_HEADER_SIZE);
    header.writeUInt32LE(LAYER_MAGIC, 0);
    header.writeUInt16LE(LAYER_VERSION, 4);
    header.writeUInt16LE(0, 6);
    header.writeBigUInt64LE(BigInt(fromSeq), 8);
    header.writeBigUInt64LE(BigInt(toSeq), 16);
    header.writeBigUInt64LE(BigInt(dataBlocks), 24);
    header.writeBigUInt64LE(BigInt(intervals.length), 32);
    header.writeBigUInt64LE(BigInt(versionCount), 40);
    header.writeBigUInt64LE(xxh64(index), 48);
    header.writeBigUInt64LE(xxh64(header.subarray(0, 56)), 56);
    await writeAllAt(handle, [header], 0);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, path);
  await fsyncDir(dirname(path));
  return { dataBlocks, intervals: intervals.length, versions: versionCount };
}
