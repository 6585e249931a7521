/**
 * Format `vhd` (fixed): the disk byte for byte, then the 512-byte footer, as Azure takes
 * it for a page blob. Azure requires the virtual size to be a whole number of MiB, so the
 * size is rounded up to the next MiB; the extra tail reads as zeros (a hole) and the
 * footer's current size is the rounded size.
 */
import { UserError } from "../../../common/errors.js";
import type { DiskSource } from "./disk-source.js";
import type { ImageOutput } from "./image-output.js";
import type { ImageWriter, WriteContext } from "./image-writer.js";
import { copySparse } from "./sparse-copy.js";
import { vhdFooter } from "./vhd-footer.js";

const MIB = 1024 * 1024;
/** Azure's largest managed disk is 32 TiB; a fixed VHD is only ever that disk's upload. */
const MAX_FIXED_BYTES = 32 * 1024 * 1024 * MIB;

export class VhdFixedWriter implements ImageWriter {
  readonly format = "vhd";
  readonly extension = "vhd";

  virtualSize(sizeBytes: number): number {
    return Math.ceil(sizeBytes / MIB) * MIB;
  }

  checkSize(sizeBytes: number): void {
    if (this.virtualSize(sizeBytes) > MAX_FIXED_BYTES) {
      throw new UserError(
        `Cannot write a fixed VHD of ${sizeBytes} bytes: fixed VHDs go up to 32 TiB (the largest Azure managed disk); use raw or qcow2`,
      );
    }
  }

  async write(out: ImageOutput, source: DiskSource, ctx: WriteContext): Promise<void> {
    const size = this.virtualSize(source.sizeBytes);
    await out.truncate(size);
    await copySparse(out, source, ctx);
    await out.write([vhdFooter({ sizeBytes: size, type: "fixed" })], size);
  }
}
