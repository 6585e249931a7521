/**
 * Writes one disk as an image file, whatever the format: the writer fills
 * `<outPath>.partial`, which is fsync'd, renamed to `outPath` and its directory fsync'd.
 * A failure or an abort removes the partial file, so a file under the final name is always
 * complete and durable, and never half written.
 */
import { access, open, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { UserError, errorMessage } from "../../../common/errors.js";
import { fsyncDir } from "../../../common/durable-file.js";
import type { ImageFormat } from "../../image-format.js";
import type { DiskSource } from "./disk-source.js";
import { ImageOutput } from "./image-output.js";
import type { ImageWriter, WriteImageOptions } from "./image-writer.js";
import { imageWriter } from "./image-writers.js";

export type { WriteImageOptions };

export function writeImage(
  format: ImageFormat,
  source: DiskSource,
  outPath: string,
  options: WriteImageOptions = {},
): Promise<void> {
  return writeImageWith(imageWriter(format), source, outPath, options);
}

/** False also when the path cannot be looked up: opening the partial file then says why. */
async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** `writeImage` with a given writer (tests use writers with non-default options). */
export async function writeImageWith(
  writer: ImageWriter,
  source: DiskSource,
  outPath: string,
  options: WriteImageOptions = {},
): Promise<void> {
  const size = source.sizeBytes;
  if (size === 0) throw new UserError(`Cannot write ${outPath}: the disk is empty (0 bytes)`);
  if (!Number.isSafeInteger(size) || size < 0 || size % 512 !== 0) {
    throw new UserError(`Cannot write ${outPath}: the disk size ${size} is not a multiple of 512 bytes`);
  }
  writer.checkSize(size);
  options.signal?.throwIfAborted();
  if (await exists(outPath)) {
    throw new UserError(`Cannot write ${outPath}: the file already exists`, 409);
  }
  const partial = `${outPath}.partial`;
  let file: FileHandle;
  try {
    file = await open(partial, "w", 0o644);
  } catch (err) {
    throw new UserError(
      `Cannot write ${partial}: ${errorMessage(err)}; choose a writable output directory`,
      400,
      { cause: err },
    );
  }
  try {
    const out = new ImageOutput(file);
    try {
      await writer.write(out, source, { ...options, fileName: basename(outPath) });
      await out.drain();
      await file.sync();
    } finally {
      await out.settle();
      await file.close();
    }
    await rename(partial, outPath);
  } catch (err) {
    await rm(partial, { force: true });
    if (err instanceof UserError || options.signal?.aborted === true) throw err;
    throw new Error(`Writing the ${writer.format} image ${outPath} failed: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  await fsyncDir(dirname(outPath));
}
