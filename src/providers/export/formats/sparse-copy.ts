/**
 * The data area of a raw image and of a fixed VHD: the source byte for byte at the same
 * offsets, with every all-zero 64 KiB granule left as a hole (the file was truncated to its
 * size first, so holes read as zeros and cost no space).
 */
import type { DiskSource } from "./disk-source.js";
import type { ImageOutput } from "./image-output.js";
import type { WriteImageOptions } from "./image-writer.js";
import { readPieces } from "./read-pieces.js";
import { dataRuns } from "./zero-runs.js";

const GRANULE = 64 * 1024;

export async function copySparse(
  out: ImageOutput,
  source: DiskSource,
  opts: WriteImageOptions,
): Promise<void> {
  for await (const piece of readPieces(source, opts.signal)) {
    for (const run of dataRuns(piece.data, GRANULE)) {
      await out.write([piece.data.subarray(run.start, run.end)], piece.offset + run.start);
    }
    opts.onProgress?.(piece.offset + piece.data.length, source.sizeBytes);
  }
}
