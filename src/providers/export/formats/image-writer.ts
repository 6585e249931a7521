/**
 * The plug-in point for image formats: one ImageWriter per format, listed in
 * `image-writers.ts`; `writeImage` (write-image.ts) wraps every one of them with the
 * partial-file, fsync, rename and clean-up rules, so a writer only lays out bytes.
 *
 * Contract for `write`: the file is open for writing and empty; the writer reads the source
 * once, front to back (`readPieces`), skips zero ranges (holes in the output, or nothing
 * stored at all), writes the whole image and resolves; it does not fsync (the caller
 * does). It checks `signal` between pieces and reports progress in source bytes. Memory
 * stays bounded by a few pieces plus per-format tables that grow by a few bytes per
 * megabyte of disk at most.
 */
import type { FileHandle } from "node:fs/promises";
import type { ImageFormat } from "../../image-format.js";
import type { DiskSource } from "./disk-source.js";

export interface WriteImageOptions {
  readonly signal?: AbortSignal;
  /** Source bytes handled so far, of the source's size. Called after every piece. */
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface WriteContext extends WriteImageOptions {
  /** The final file name (no directory): VMDK names itself in its descriptor. */
  readonly fileName: string;
}

export interface ImageWriter {
  readonly format: ImageFormat;
  /** File name extension, without the dot. */
  readonly extension: string;
  /** The virtual size the image presents for a source of `sizeBytes` (VHD fixed rounds up). */
  virtualSize(sizeBytes: number): number;
  /** Throws UserError when the format cannot hold a disk of `sizeBytes`. */
  checkSize(sizeBytes: number): void;
  write(file: FileHandle, source: DiskSource, ctx: WriteContext): Promise<void>;
}
