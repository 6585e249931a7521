/**
 * A read in two steps: the journal index, the layers and the parent chain are consulted
 * synchronously and produce a plan (which blocks come from which file position), then the
 * plan runs: one pread per contiguous run, straight into the caller's buffer, and every
 * block checked against its XXH64. Building the plan without awaiting means a roll that
 * swaps the index mid-read cannot give a read half old and half new sources; the files
 * the plan names are reference-counted so a roll can retire a segment while a read still
 * holds it.
 */
import type { FileHandle } from "node:fs/promises";
import { xxh64 } from "@node-rs/xxhash";
import { CorruptionError } from "../../common/errors.js";
import { BLOCK_SIZE } from "../staging-store.js";
import { readExactAt } from "./fs-util.js";

/** An open file shared by reads; closed once retired and no plan holds it. */
export class FileRef {
  private refs = 0;
  private retired = false;
  private closed: Promise<void> | undefined;

  constructor(
    readonly path: string,
    readonly handle: FileHandle,
  ) {}

  acquire(): void {
    this.refs++;
  }

  release(): void {
    this.refs--;
    if (this.retired && this.refs === 0) void this.closeOnce();
  }

  /** No new reads will be planned on this file; it closes when the last one finishes. */
  retire(): Promise<void> {
    this.retired = true;
    return this.refs === 0 ? this.closeOnce() : Promise.resolve();
  }

  private closeOnce(): Promise<void> {
    this.closed ??= this.handle.close().catch(() => undefined);
    return this.closed;
  }
}

const READ_CONCURRENCY = 8;

interface Piece {
  readonly file: FileRef;
  readonly filePos: number;
  readonly outBlock: number;
  blocks: number;
  /** Checksums in memory (journal) starting at sumsIndex, or on disk (layer) at sumPos. */
  readonly sums: BigUint64Array | undefined;
  readonly sumsIndex: number;
  readonly sumPos: number;
  readonly disk: number;
  readonly diskBlock: number;
  readonly seq: number;
}

export type PieceSource =
  { readonly sums: BigUint64Array; readonly sumsIndex: number } | { readonly sumPos: number };

export class ReadPlan {
  private readonly pieces: Piece[] = [];
  private readonly files = new Set<FileRef>();

  /** `filled[i]` is 1 once block i of the read has a source (or is known to be zero). */
  readonly filled: Uint8Array;
  remaining: number;

  constructor(
    readonly disk: number,
    readonly firstBlock: number,
    blocks: number,
  ) {
    this.filled = new Uint8Array(blocks);
    this.remaining = blocks;
  }

  /** Marks one block zero (a zero extent): the output buffer is already zeroed. */
  fillZero(outBlock: number): void {
    this.filled[outBlock] = 1;
    this.remaining--;
  }

  /** Marks one block as read from `file` at `filePos`, merging it into the previous run when contiguous. */
  fillFrom(outBlock: number, file: FileRef, filePos: number, seq: number, source: PieceSource): void {
    this.filled[outBlock] = 1;
    this.remaining--;
    const last = this.pieces[this.pieces.length - 1];
    const inMemory = "sums" in source;
    if (
      last !== undefined &&
      last.file === file &&
      last.seq === seq &&
      last.outBlock + last.blocks === outBlock &&
      last.filePos + last.blocks * BLOCK_SIZE === filePos &&
      (inMemory
        ? last.sums === source.sums && last.sumsIndex + last.blocks === source.sumsIndex
        : last.sums === undefined && last.sumPos + last.blocks * 8 === source.sumPos)
    ) {
      last.blocks++;
      return;
    }
    if (!this.files.has(file)) {
      file.acquire();
      this.files.add(file);
    }
    this.pieces.push({
      file,
      filePos,
      outBlock,
      blocks: 1,
      sums: inMemory ? source.sums : undefined,
      sumsIndex: inMemory ? source.sumsIndex : 0,
      sumPos: inMemory ? -1 : source.sumPos,
      disk: this.disk,
      diskBlock: this.firstBlock + outBlock,
      seq,
    });
  }

  /** Reads every planned run into `out` and verifies each block. Releases the files in any case. */
  async execute(out: Buffer, signal?: AbortSignal): Promise<void> {
    let next = 0;
    let failure: { error: unknown } | undefined;
    // A few preads in flight at a time: enough to keep the disk busy, not one promise per block.
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < this.pieces.length) {
        const piece = this.pieces[next++] as Piece;
        try {
          await readPiece(piece, out, signal);
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, this.pieces.length) }, worker));
    } finally {
      // Only now, with no pread in flight, may a retired file close.
      for (const file of this.files) file.release();
      this.files.clear();
    }
    if (failure !== undefined) throw failure.error;
  }

  /** Releases the files without reading (when planning failed). */
  abandon(): void {
    for (const file of this.files) file.release();
    this.files.clear();
  }
}

async function readPiece(piece: Piece, out: Buffer, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const target = out.subarray(piece.outBlock * BLOCK_SIZE, (piece.outBlock + piece.blocks) * BLOCK_SIZE);
  await readExactAt(piece.file.handle, target, piece.filePos, piece.file.path);
  let expected: (i: number) => bigint | undefined;
  if (piece.sums !== undefined) {
    const sums = piece.sums;
    expected = (i) => sums[piece.sumsIndex + i];
  } else {
    const raw = Buffer.alloc(piece.blocks * 8);
    await readExactAt(piece.file.handle, raw, piece.sumPos, piece.file.path);
    expected = (i) => raw.readBigUInt64LE(i * 8);
  }
  for (let i = 0; i < piece.blocks; i++) {
    const block = target.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
    if (xxh64(block) !== expected(i)) {
      throw new CorruptionError(
        `Block checksum mismatch in ${piece.file.path}: disk ${piece.disk} block ${piece.diskBlock + i} ` +
          `(seq ${piece.seq}, file offset ${piece.filePos + i * BLOCK_SIZE}); the stored data is damaged`,
      );
    }
  }
}
