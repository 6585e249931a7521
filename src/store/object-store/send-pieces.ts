/**
 * Sends an object to a cloud backend in fixed-size pieces (S3 multipart parts, Azure
 * blocks), a few in flight, so memory stays at about `concurrency x pieceSize` however
 * big the object: a piece is loaded (read from the file) only when a sender is free.
 */
import type { FileHandle } from "node:fs/promises";
import { readExactAt } from "../layered/fs-util.js";

export interface Piece {
  /** 0-based piece number. */
  readonly index: number;
  readonly offset: number;
  readonly data: Buffer;
}

export interface SendPiecesOptions {
  /** Object size in bytes. */
  readonly size: number;
  readonly pieceSize: number;
  readonly concurrency: number;
  readonly signal: AbortSignal | undefined;
  /** Loads `length` bytes at `offset` of the object. */
  load(offset: number, length: number): Promise<Buffer>;
  /** Sends one piece; `signal` fires when the caller aborts or another piece failed. */
  send(piece: Piece, signal: AbortSignal): Promise<void>;
}

/** Number of pieces of `pieceSize` bytes that hold `size` bytes (at least one). */
export function pieceCount(size: number, pieceSize: number): number {
  return Math.max(1, Math.ceil(size / pieceSize));
}

/**
 * Loads and sends every piece, at most `concurrency` at a time. On the first failure the
 * other sends are aborted, and once all have settled the failure is rethrown (the caller's
 * abort reason when its signal fired), so nothing is still in flight when this rejects.
 */
export async function sendPieces(options: SendPiecesOptions): Promise<void> {
  const { size, pieceSize, signal } = options;
  const stop = new AbortController();
  const inner = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
  const count = pieceCount(size, pieceSize);
  let next = 0;
  let failure: { err: unknown } | undefined;

  const worker = async (): Promise<void> => {
    while (next < count && failure === undefined) {
      const index = next++;
      const offset = index * pieceSize;
      try {
        inner.throwIfAborted();
        const data = await options.load(offset, Math.min(pieceSize, size - offset));
        inner.throwIfAborted();
        await options.send({ index, offset, data }, inner);
      } catch (err) {
        failure ??= { err };
        stop.abort(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, count) }, worker));
  if (signal?.aborted) throw signal.reason;
  if (failure !== undefined) throw failure.err;
}

/** A `load` that reads pieces of an open file with positioned reads. */
export function fileLoader(
  handle: FileHandle,
  path: string,
): (offset: number, length: number) => Promise<Buffer> {
  return async (offset, length) => {
    const data = Buffer.allocUnsafe(length);
    await readExactAt(handle, data, offset, path);
    return data;
  };
}
