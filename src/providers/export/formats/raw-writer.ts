/** Format `raw`: the disk byte for byte, zero ranges left as holes. */
import type { FileHandle } from "node:fs/promises";
import type { DiskSource } from "./disk-source.js";
import type { ImageWriter, WriteContext } from "./image-writer.js";
import { copySparse } from "./sparse-copy.js";

export class RawWriter implements ImageWriter {
  readonly format = "raw";
  readonly extension = "img";

  virtualSize(sizeBytes: number): number {
    return sizeBytes;
  }

  checkSize(): void {}

  async write(file: FileHandle, source: DiskSource, ctx: WriteContext): Promise<void> {
    await file.truncate(source.sizeBytes);
    await copySparse(file, source, ctx);
  }
}
