/**
 * Reading a source disk for comparison: whole-disk chunk hashes (a RESCAN, the failback
 * client's first step) and a positional read that finishes short reads.
 */
import type { FileHandle } from "node:fs/promises";
import { chunkCount, hashChunksInto } from "../common/chunk-hash.js";
import { CHUNK_SIZE } from "../wire/frames.js";

/** Bytes read at once from a disk. */
export const DISK_READ_BYTES = 4 * 1024 * 1024;

/** Reads `length` bytes at `position` into `buf`; bytes past the end of the disk read as zero. */
export async function readFully(
  fh: FileHandle,
  buf: Buffer,
  length: number,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) {
      buf.fill(0, done, length); // the disk shrank under us: read the rest as zero, the next pass sees it
      return;
    }
    done += bytesRead;
  }
}

/** The chunk hashes of a whole disk; `onRead` hears of every piece read (progress). */
export async function hashDisk(
  fh: FileHandle,
  sizeBytes: number,
  signal?: AbortSignal,
  onRead?: (bytes: number) => void,
): Promise<BigUint64Array> {
  const hashes = new BigUint64Array(chunkCount(sizeBytes));
  const buf = Buffer.allocUnsafe(DISK_READ_BYTES);
  for (let offset = 0; offset < sizeBytes; offset += DISK_READ_BYTES) {
    signal?.throwIfAborted();
    const n = Math.min(DISK_READ_BYTES, sizeBytes - offset);
    await readFully(fh, buf, n, offset);
    hashChunksInto(buf.subarray(0, n), hashes, offset / CHUNK_SIZE);
    onRead?.(n);
  }
  return hashes;
}
