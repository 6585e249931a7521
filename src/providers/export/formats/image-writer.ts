/**
 * The plug-in point for image formats: one ImageWriter per format, listed in
 * `image-writers.ts`; `writeImage` (write-image.ts) wraps every one of them with the
 * partial-file, fsync, rename and clean-up rules, so a writer only lays out bytes.
 *
 * Contract for `write`: the output is an empty file; the writer reads the source once,
 * front to back (`readPieces`), skips zero ranges (holes in the output, or nothing stored
 * at all), hands every byte of the image to `out` and resolves; the caller drains the
 * output and fsyncs. It checks `signal` between pieces and reports progress in source bytes. Memory
 * stays bounded by a few pieces plus per-format tables that grow by a few bytes per
 * megabyte of disk at most.
 */
import type { ImageFormat } from "../../image-format.js";
import type { DiskSource } from "./disk-source.js";
import type { ImageOutput } from "./image-output.js";

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
  write(out: ImageOutput, source: DiskSource, ctx: WriteContext): Promise<void>;
}
