/**
 * Format `vhd-dynamic`: a dynamic VHD with 2 MiB blocks, written in one pass.
 *
 *   0      footer copy (512)
 *   512    dynamic disk header (1024), "cxsparse"
 *   1536   BAT: one big-endian u32 per block (its sector offset, or 0xFFFFFFFF), padded
 *          to a sector
 *   ...    for each block holding any data, in disk order: a 512-byte sector bitmap (all
 *          ones: every sector of an allocated block is present) and the block's 2 MiB;
 *          zero 64 KiB granules inside it are holes in the file
 *   end    footer (512)
 *
 * Blocks that are all zeros get no space at all. The BAT lives in memory (4 bytes per
 * 2 MiB block, 4 MiB at the format's 2040 GiB limit) and is written once the blocks are;
 * the size is the source's, exactly (the footer says creator "win ", see vhd-footer.ts).
 */
import { UserError } from "../../../common/errors.js";
import type { DiskSource } from "./disk-source.js";
import type { ImageOutput } from "./image-output.js";
import type { ImageWriter, WriteContext } from "./image-writer.js";
import { readPieces } from "./read-pieces.js";
import { VHD_FOOTER_BYTES, VHD_NO_OFFSET, VHD_SECTOR, vhdChecksum, vhdFooter } from "./vhd-footer.js";
import { dataRuns } from "./zero-runs.js";

const BLOCK = 2 * 1024 * 1024;
const GRANULE = 64 * 1024;
const HEADER_AT = VHD_FOOTER_BYTES;
const HEADER_BYTES = 1024;
const BAT_AT = HEADER_AT + HEADER_BYTES;
/** The spec's limit: 2040 GiB, so that every sector offset fits the BAT's 32 bits. */
const MAX_DYNAMIC_BYTES = 2040 * 1024 * 1024 * 1024;
const BITMAP = Buffer.alloc(VHD_SECTOR, 0xff);

function dynamicHeader(maxTableEntries: number): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.write("cxsparse", 0, "latin1");
  b.writeBigUInt64BE(VHD_NO_OFFSET, 8); // data offset: unused
  b.writeBigUInt64BE(BigInt(BAT_AT), 16); // table offset
  b.writeUInt32BE(0x0001_0000, 24); // header version 1.0
  b.writeUInt32BE(maxTableEntries, 28);
  b.writeUInt32BE(BLOCK, 32);
  // Parent fields (differencing disks only) stay zero.
  b.writeUInt32BE(vhdChecksum(b, 36), 36);
  return b;
}

export class VhdDynamicWriter implements ImageWriter {
  readonly format = "vhd-dynamic";
  readonly extension = "vhd";

  virtualSize(sizeBytes: number): number {
    return sizeBytes;
  }

  checkSize(sizeBytes: number): void {
    if (sizeBytes > MAX_DYNAMIC_BYTES) {
      throw new UserError(
        `Cannot write a dynamic VHD of ${sizeBytes} bytes: the format holds at most 2040 GiB; use qcow2 or vhd (fixed)`,
      );
    }
  }

  async write(out: ImageOutput, source: DiskSource, ctx: WriteContext): Promise<void> {
    const size = source.sizeBytes;
    const entries = Math.ceil(size / BLOCK);
    const bat = Buffer.alloc(Math.ceil((entries * 4) / VHD_SECTOR) * VHD_SECTOR, 0xff);
    const footer = vhdFooter({ sizeBytes: size, type: "dynamic" });
    await out.write([footer, dynamicHeader(entries)], 0);
    let pos = BAT_AT + bat.length;
    for await (const piece of readPieces(source, ctx.signal)) {
      for (let at = 0; at < piece.data.length; at += BLOCK) {
        const block = piece.data.subarray(at, Math.min(at + BLOCK, piece.data.length));
        const runs = dataRuns(block, GRANULE);
        if (runs.length === 0) continue;
        bat.writeUInt32BE(pos / VHD_SECTOR, ((piece.offset + at) / BLOCK) * 4);
        for (const [i, run] of runs.entries()) {
          const data = block.subarray(run.start, run.end);
          if (i === 0 && run.start === 0) await out.write([BITMAP, data], pos);
          else {
            if (i === 0) await out.write([BITMAP], pos);
            await out.write([data], pos + VHD_SECTOR + run.start);
          }
        }
        pos += VHD_SECTOR + BLOCK;
      }
      ctx.onProgress?.(piece.offset + piece.data.length, size);
    }
    await out.write([bat], BAT_AT);
    await out.write([footer], pos);
  }
}
