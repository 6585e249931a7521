/**
 * Format `qcow2` (version 3, 64 KiB clusters, 16-bit refcounts, no compression), written
 * in one sequential pass plus a final metadata write:
 *
 *   cluster 0               header (written last)
 *   clusters 1..L           L1 table, sized for the whole disk (written last)
 *   then, in disk order     each data cluster that is not all zeros, and after the data
 *                           of each 512 MiB stretch of the disk (one L2 table's reach)
 *                           that L2 table, if the stretch held any data
 *   then                    refcount blocks, then the refcount table
 *
 * Every host cluster is used exactly once, so every refcount is 1 and the refcount blocks
 * are all ones up to the end of the file; the L1 and L2 entries carry the "copied" flag
 * (bit 63) that qemu-img check expects for refcount 1. Zero clusters are simply absent
 * (unallocated, reading as zeros). Memory: one L2 table and the L1 table (8 bytes per
 * 512 MiB of disk).
 */
import { UserError } from "../../../common/errors.js";
import type { DiskSource } from "./disk-source.js";
import type { ImageOutput } from "./image-output.js";
import type { ImageWriter, WriteContext } from "./image-writer.js";
import { readPieces } from "./read-pieces.js";
import { isZeroRange } from "./zero-runs.js";

const COPIED = 1n << 63n;
const HEADER_LENGTH = 104;
const REFCOUNT_ORDER = 4; // 16-bit refcounts
/** qemu refuses L1 tables above 32 MiB. */
const MAX_L1_BYTES = 32 * 1024 * 1024;
/** Refcount blocks go out in writes of this many clusters. */
const REFCOUNT_BATCH = 64;

export interface Qcow2Options {
  /**
   * log2 of the cluster size; 16 (64 KiB) unless a test wants tiny clusters (9 gives
   * 512-byte clusters, so a small disk needs many L2 tables and refcount blocks).
   */
  readonly clusterBits?: number;
}

interface Layout {
  readonly cluster: number;
  readonly l2Entries: number;
  readonly l1Entries: number;
  readonly l1Clusters: number;
}

function qcow2Header(
  size: number,
  bits: number,
  l1Entries: number,
  refcountTableAt: number,
  refcountTableClusters: number,
): Buffer {
  const b = Buffer.alloc(HEADER_LENGTH);
  b.writeUInt32BE(0x514649fb, 0); // "QFI\xfb"
  b.writeUInt32BE(3, 4); // version
  // Backing file offset and size (8, 16) stay zero: no backing file.
  b.writeUInt32BE(bits, 20);
  b.writeBigUInt64BE(BigInt(size), 24);
  // crypt_method (32) zero: not encrypted.
  b.writeUInt32BE(l1Entries, 36);
  b.writeBigUInt64BE(BigInt(1 << bits), 40); // L1 table offset: cluster 1
  b.writeBigUInt64BE(BigInt(refcountTableAt), 48);
  b.writeUInt32BE(refcountTableClusters, 56);
  // Snapshots (60, 64) and the feature bitmaps (72, 80, 88) stay zero.
  b.writeUInt32BE(REFCOUNT_ORDER, 96);
  b.writeUInt32BE(HEADER_LENGTH, 100);
  // The header extension area that follows is all zeros: its end marker.
  return b;
}

export class Qcow2Writer implements ImageWriter {
  readonly format = "qcow2";
  readonly extension = "qcow2";
  readonly #bits: number;

  constructor(options: Qcow2Options = {}) {
    this.#bits = options.clusterBits ?? 16;
    if (!Number.isInteger(this.#bits) || this.#bits < 9 || this.#bits > 21) {
      throw new RangeError(`qcow2 cluster bits must be 9 to 21, not ${this.#bits}`);
    }
  }

  virtualSize(sizeBytes: number): number {
    return sizeBytes;
  }

  #layout(size: number): Layout {
    const cluster = 1 << this.#bits;
    const l2Entries = cluster / 8;
    const l1Entries = Math.ceil(size / (l2Entries * cluster));
    return { cluster, l2Entries, l1Entries, l1Clusters: Math.ceil((l1Entries * 8) / cluster) };
  }

  checkSize(sizeBytes: number): void {
    if (this.#layout(sizeBytes).l1Entries * 8 > MAX_L1_BYTES) {
      throw new UserError(
        `Cannot write a qcow2 image of ${sizeBytes} bytes: its L1 table would exceed qemu's 32 MiB limit`,
      );
    }
  }

  async write(out: ImageOutput, source: DiskSource, ctx: WriteContext): Promise<void> {
    const size = source.sizeBytes;
    const { cluster, l2Entries, l1Entries, l1Clusters } = this.#layout(size);
    const l1 = Buffer.alloc(l1Clusters * cluster);
    let next = 1 + l1Clusters; // next free host cluster
    let l2 = Buffer.alloc(cluster);
    let l2Index = 0; // which L1 entry `l2` belongs to
    let l2Used = false;

    for await (const piece of readPieces(source, ctx.signal)) {
      const batch: Buffer[] = [];
      const batchAt = next * cluster;
      const closeL2 = (): void => {
        if (!l2Used) return;
        l1.writeBigUInt64BE(BigInt(next * cluster) | COPIED, l2Index * 8);
        batch.push(l2);
        next++;
        l2 = Buffer.alloc(cluster);
        l2Used = false;
      };
      for (let at = 0; at < piece.data.length; at += cluster) {
        const guest = (piece.offset + at) / cluster;
        const index = Math.floor(guest / l2Entries);
        if (index !== l2Index) {
          closeL2();
          l2Index = index;
        }
        const end = Math.min(at + cluster, piece.data.length);
        if (isZeroRange(piece.data, at, end)) continue;
        l2.writeBigUInt64BE(BigInt(next * cluster) | COPIED, (guest % l2Entries) * 8);
        l2Used = true;
        next++;
        const data = piece.data.subarray(at, end);
        // The disk's tail may end inside a cluster: the host cluster is still whole.
        batch.push(
          data.length === cluster ? data : Buffer.concat([data, Buffer.alloc(cluster - data.length)]),
        );
      }
      if (piece.offset + piece.data.length === size) closeL2();
      await out.write(batch, batchAt);
      ctx.onProgress?.(piece.offset + piece.data.length, size);
    }

    // Refcounts: clusters [0, total) are all in use once, the refcount structures included.
    const perBlock = (cluster * 8) >> REFCOUNT_ORDER;
    const dataEnd = next;
    let blocks = 0;
    let tableClusters = 0;
    for (;;) {
      const total = dataEnd + blocks + tableClusters;
      const b = Math.ceil(total / perBlock);
      const t = Math.ceil((b * 8) / cluster);
      if (b === blocks && t === tableClusters) break;
      blocks = b;
      tableClusters = t;
    }
    const total = dataEnd + blocks + tableClusters;
    const full = Buffer.alloc(cluster);
    for (let i = 0; i < perBlock; i++) full.writeUInt16BE(1, i * 2);
    for (let first = 0; first < blocks; first += REFCOUNT_BATCH) {
      const batch: Buffer[] = [];
      for (let i = first; i < Math.min(first + REFCOUNT_BATCH, blocks); i++) {
        const used = Math.min(perBlock, total - i * perBlock);
        if (used === perBlock) {
          batch.push(full);
        } else {
          const part = Buffer.alloc(cluster);
          full.copy(part, 0, 0, used * 2);
          batch.push(part);
        }
      }
      await out.write(batch, (dataEnd + first) * cluster);
    }
    const table = Buffer.alloc(tableClusters * cluster);
    for (let i = 0; i < blocks; i++) table.writeBigUInt64BE(BigInt((dataEnd + i) * cluster), i * 8);
    const tableAt = (dataEnd + blocks) * cluster;
    await out.write([table], tableAt);

    const header = Buffer.alloc(cluster);
    qcow2Header(size, this.#bits, l1Entries, tableAt, tableClusters).copy(header);
    await out.write([header, l1], 0);
  }
}
