/**
 * Reads a DiskSource front to back in pieces, keeping a couple of reads in flight so the
 * source's latency overlaps the writer's work. Memory: (AHEAD + 1) pieces.
 */
import type { DiskSource } from "./disk-source.js";

/** 4 MiB: large enough that per-call costs vanish, a multiple of every cluster, grain and block size used here. */
export const PIECE_BYTES = 4 * 1024 * 1024;
const AHEAD = 2;

export interface Piece {
  readonly offset: number;
  readonly data: Buffer;
}

export async function* readPieces(
  source: DiskSource,
  signal?: AbortSignal,
  pieceBytes = PIECE_BYTES,
): AsyncGenerator<Piece> {
  const size = source.sizeBytes;
  const pending: Promise<Buffer>[] = [];
  let next = 0;
  const fill = (): void => {
    while (pending.length <= AHEAD && next < size) {
      const p = source.read(next, Math.min(pieceBytes, size - next), signal);
      // A read still in flight when the consumer stops must not become an unhandled
      // rejection; the consumer awaits `p` itself when it gets there.
      p.catch(() => undefined);
      pending.push(p);
      next += pieceBytes;
    }
  };
  for (let offset = 0; offset < size; offset += pieceBytes) {
    signal?.throwIfAborted();
    fill();
    const data = await (pending.shift() as Promise<Buffer>);
    const want = Math.min(pieceBytes, size - offset);
    if (data.length !== want) {
      throw new RangeError(`Disk source returned ${data.length} bytes at ${offset}, expected ${want}`);
    }
    yield { offset, data };
  }
}
