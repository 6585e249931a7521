/**
 * Small durable-I/O helpers shared by the journal, the layer writer and the manifest: a
 * positional write that finishes partial writes, a directory fsync (so a created, renamed
 * or unlinked name survives a crash), and exact-length positional reads.
 */
import type { FileHandle } from "node:fs/promises";
import { CorruptionError } from "../../common/errors.js";

export { fsyncDir } from "../../common/durable-file.js";

/** Writes every buffer at `position`, in order, continuing after short writes. Returns the byte count. */
export async function writeAllAt(
  handle: FileHandle,
  buffers: readonly Buffer[],
  position: number,
): Promise<number> {
  let pending = buffers.filter((b) => b.length > 0);
  let pos = position;
  while (pending.length > 0) {
    // writev takes at most IOV_MAX buffers at a time on some platforms; keep groups modest.
    const slice = pending.slice(0, 512);
    const total = slice.reduce((sum, b) => sum + b.length, 0);
    const { bytesWritten } = await handle.writev(slice, pos);
    pos += bytesWritten;
    if (bytesWritten === total) {
      pending = pending.slice(slice.length);
      continue;
    }
    // Short write: drop what was written and retry the rest.
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    pending = rest;
  }
  return pos - position;
}

/** Reads exactly `target.length` bytes at `position`; a short read means the file is shorter than its index says. */
export async function readExactAt(
  handle: FileHandle,
  target: Buffer,
  position: number,
  path: string,
): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await handle.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) {
      throw new CorruptionError(
        `File is shorter than expected: ${path}: wanted ${target.length} bytes at offset ${position}, got ${done}`,
      );
    }
    done += bytesRead;
  }
}

/** Zero-padded 16-digit decimal, so file names sort in seq order. */
export function seqName(seq: number): string {
  return String(seq).padStart(16, "0");
}

/** A RandomReader (read-plan.ts) over an open local file; closing it closes the handle. */
export function handleReader(
  handle: FileHandle,
  path: string,
): { read(target: Buffer, position: number): Promise<void>; close(): Promise<void> } {
  return {
    read: (target, position) => readExactAt(handle, target, position, path),
    close: () => handle.close(),
  };
}
