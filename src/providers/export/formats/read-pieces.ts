/**
 * Reads a DiskSource front to back in pieces, keeping a couple of reads in flight so the
 * source's latency overlaps the writer's work. A piece's data is valid until the writer
 * asks for the next piece; what the writer hands to ImageOutput stays valid until written
 * (sources with `readInto` read into recycled buffers: piece-buffers.ts). Memory: (AHEAD + 1)
 * pieces plus those still being written.
 */
import type { DiskSource } from "./disk-source.js";
import { releaseBuffer, takeBuffer } from "./piece-buffers.js";

/** 4 MiB: large enough that per-call costs vanish, a multiple of every cluster, grain and block size used here. */
export const PIECE_BYTES = 4 * 1024 * 1024;
const AHEAD = 2;

export interface Piece {
  readonly offset: number;
  readonly data: Buffer;
}

function startRead(
  source: DiskSource,
  offset: number,
  length: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  if (source.readInto === undefined) return source.read(offset, length, signal);
  const buf = takeBuffer(PIECE_BYTES).subarray(0, length);
  return source.readInto(buf, offset, signal).then(
    () => buf,
    (err: unknown) => {
      releaseBuffer(buf);
      throw err;
    },
  );
}

export async function* readPieces(source: DiskSource, signal?: AbortSignal): AsyncGenerator<Piece> {
  const size = source.sizeBytes;
  const pending: Promise<Buffer>[] = [];
  let next = 0;
  let current: Buffer | undefined;
  try {
    for (let offset = 0; offset < size; offset += PIECE_BYTES) {
      signal?.throwIfAborted();
      while (pending.length <= AHEAD && next < size) {
        const read = startRead(source, next, Math.min(PIECE_BYTES, size - next), signal);
        // A read still in flight when the writer stops must not become an unhandled
        // rejection; the loop awaits `read` itself when it gets there.
        read.catch(() => undefined);
        pending.push(read);
        next += PIECE_BYTES;
      }
      const read = pending.shift();
      if (read === undefined) throw new Error(`No read started for offset ${offset}`);
      const data = await read;
      current = data;
      const want = Math.min(PIECE_BYTES, size - offset);
      if (data.length !== want) {
        throw new RangeError(`Disk source returned ${data.length} bytes at ${offset}, expected ${want}`);
      }
      yield { offset, data };
      current = undefined;
      releaseBuffer(data);
    }
  } finally {
    if (current !== undefined) releaseBuffer(current);
    // Reads still in flight fill their buffers until they settle: release them after.
    for (const read of pending) read.then(releaseBuffer, () => undefined);
  }
}
