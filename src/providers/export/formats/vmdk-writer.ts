/**
 * Format `vmdk`: a monolithic sparse extent with createType "streamOptimized", the form
 * AWS VM Import and OVF tools take. Written strictly front to back:
 *
 *   sector 0        header (gdOffset = GD_AT_END: "read the footer")
 *   sectors 1-20    embedded descriptor; zeros up to sector 128
 *   then            per grain (64 KiB) holding data, in disk order: a grain marker
 *                   (lba, compressed size) followed by the zlib-compressed grain, padded
 *                   to a sector; after the grains of each 32 MiB stretch, a GT marker
 *                   and that stretch's grain table (512 entries: the marker's sector,
 *                   or 0 for a zero grain); a stretch without data gets no table
 *   then            GD marker and grain directory (one entry per table, 0 if none),
 *                   footer marker and footer (the header with the real gdOffset),
 *                   end-of-stream marker
 *
 * Grains are compressed with zlib (RFC 1950, what qemu and VMware inflate) at level 1, the
 * fastest level that still compresses; level 0 (stored) is valid too but leaves the image
 * as large as the disk, which defeats the format's purpose. Compression runs on the libuv
 * thread pool, all grains of a piece at once, while the previous piece is being written.
 */
import { promisify } from "node:util";
import { deflate as deflateCb } from "node:zlib";
import { UserError } from "../../../common/errors.js";
import type { DiskSource } from "./disk-source.js";
import type { ImageOutput } from "./image-output.js";
import type { ImageWriter, WriteContext } from "./image-writer.js";
import { readPieces } from "./read-pieces.js";
import {
  GD_AT_END,
  GRAIN_SECTORS,
  GTES_PER_GT,
  MARKER_EOS,
  MARKER_FOOTER,
  MARKER_GD,
  MARKER_GT,
  OVERHEAD_SECTORS,
  SECTOR,
  grainMarker,
  vmdkDescriptor,
  vmdkHeader,
  vmdkMarker,
} from "./vmdk-metadata.js";
import { isZeroRange } from "./zero-runs.js";

const deflate = promisify(deflateCb);
const GRAIN = GRAIN_SECTORS * SECTOR;
const GT_BYTES = GTES_PER_GT * 4;
/** Grain and grain table offsets are 32-bit sector numbers: 2 TiB. */
const MAX_SECTOR = 0xffff_ffff;
const MAX_VMDK_BYTES = 2 * 1024 * 1024 * 1024 * 1024;
const PAD = Buffer.alloc(SECTOR);

function sectorsFor(bytes: number): number {
  return Math.ceil(bytes / SECTOR);
}

export class VmdkWriter implements ImageWriter {
  readonly format = "vmdk";
  readonly extension = "vmdk";

  virtualSize(sizeBytes: number): number {
    return sizeBytes;
  }

  checkSize(sizeBytes: number): void {
    if (sizeBytes > MAX_VMDK_BYTES) {
      throw new UserError(
        `Cannot write a VMDK of ${sizeBytes} bytes: a sparse extent holds at most 2 TiB; use qcow2 or raw`,
      );
    }
  }

  async write(out: ImageOutput, source: DiskSource, ctx: WriteContext): Promise<void> {
    const size = source.sizeBytes;
    const capacity = size / SECTOR;
    const tables = Math.ceil(capacity / (GRAIN_SECTORS * GTES_PER_GT));
    const gd = Buffer.alloc(sectorsFor(tables * 4) * SECTOR);
    await out.write([vmdkHeader(capacity, GD_AT_END), vmdkDescriptor(capacity, ctx.fileName)], 0);

    let sector = OVERHEAD_SECTORS; // where the next thing goes
    let gt = Buffer.alloc(GT_BYTES);
    let gtIndex = 0;
    let gtUsed = false;
    const place = (sectors: number): number => {
      const at = sector;
      sector += sectors;
      if (sector > MAX_SECTOR) throw new Error(`VMDK image grew beyond 2 TiB of file: ${ctx.fileName}`);
      return at;
    };

    for await (const piece of readPieces(source, ctx.signal)) {
      const grains: { index: number; data: Buffer }[] = [];
      for (let at = 0; at < piece.data.length; at += GRAIN) {
        const end = Math.min(at + GRAIN, piece.data.length);
        if (isZeroRange(piece.data, at, end)) continue;
        const data = piece.data.subarray(at, end);
        // A tail shorter than a grain is padded: readers inflate whole grains.
        grains.push({
          index: (piece.offset + at) / GRAIN,
          data: data.length === GRAIN ? data : Buffer.concat([data, Buffer.alloc(GRAIN - data.length)]),
        });
      }
      const compressed = await Promise.all(grains.map((g) => deflate(g.data, { level: 1 })));

      const batch: Buffer[] = [];
      const batchAt = sector * SECTOR;
      const closeGt = (): void => {
        if (!gtUsed) return;
        batch.push(vmdkMarker(GT_BYTES / SECTOR, MARKER_GT));
        place(1);
        gd.writeUInt32LE(place(GT_BYTES / SECTOR), gtIndex * 4);
        batch.push(gt);
        gt = Buffer.alloc(GT_BYTES);
        gtUsed = false;
      };
      for (const [i, g] of grains.entries()) {
        const z = compressed[i] as Buffer;
        const table = Math.floor(g.index / GTES_PER_GT);
        if (table !== gtIndex) {
          closeGt();
          gtIndex = table;
        }
        const bytes = 12 + z.length;
        const at = place(sectorsFor(bytes));
        gt.writeUInt32LE(at, (g.index % GTES_PER_GT) * 4);
        gtUsed = true;
        batch.push(grainMarker(g.index * GRAIN_SECTORS, z.length), z);
        const pad = sectorsFor(bytes) * SECTOR - bytes;
        if (pad > 0) batch.push(PAD.subarray(0, pad));
      }
      const last = piece.offset + piece.data.length === size;
      // A stretch is done once the disk has moved past it; the last one at the end.
      const doneStretch = Math.floor((piece.offset + piece.data.length) / (GRAIN * GTES_PER_GT));
      if (last || doneStretch > gtIndex) closeGt();

      await out.write(batch, batchAt);
      ctx.onProgress?.(piece.offset + piece.data.length, size);
    }

    const gdMarkerAt = place(1);
    const gdAt = place(gd.length / SECTOR);
    place(1); // footer marker
    place(1); // footer
    place(1); // end of stream
    const tail = [
      vmdkMarker(gd.length / SECTOR, MARKER_GD),
      gd,
      vmdkMarker(1, MARKER_FOOTER),
      vmdkHeader(capacity, BigInt(gdAt)),
      vmdkMarker(0, MARKER_EOS),
    ];
    await out.write(tail, gdMarkerAt * SECTOR);
  }
}
