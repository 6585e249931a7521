/** Format `raw`: the disk byte for byte, zero ranges left as holes. */
import type { DiskSource } from "./disk-source.js";
import type { ImageOutput } from "./image-output.js";
import type { ImageWriter, WriteContext } from "./image-writer.js";
import { copySparse } from "./sparse-copy.js";

export class RawWriter implements ImageWriter {
  readonly format = "raw";
  readonly extension = "img";

  virtualSize(sizeBytes: number): number {
    return sizeBytes;
  }

  checkSize(): void {}

  async write(out: ImageOutput, source: DiskSource, ctx: WriteContext): Promise<void> {
    await out.truncate(source.sizeBytes);
    await copySparse(out, source, ctx);
  }
}
