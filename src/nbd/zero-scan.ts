/**
 * Finding zeros in data that was read: the file backend cannot ask the kernel where a
 * file's holes are (Node exposes neither SEEK_DATA/SEEK_HOLE nor FIEMAP), so it reports
 * what it can see instead: blocks that read as all zeros. Blocks are aligned to absolute
 * export offsets so that answers for overlapping requests agree.
 */
import type { ByteRange } from "./export-backend.js";

const ZERO_BLOCK = Buffer.alloc(64 * 1024);

function isZeroSlice(buf: Buffer, start: number, end: number): boolean {
  for (let at = start; at < end; at += ZERO_BLOCK.length) {
    const stop = Math.min(end, at + ZERO_BLOCK.length);
    if (buf.compare(ZERO_BLOCK, 0, stop - at, at, stop) !== 0) return false;
  }
  return true;
}

/** One run of blocks of `buf` (read at export offset `offset`) that are all zero or all not. */
export interface ZeroScanRun {
  readonly offset: number;
  readonly length: number;
  readonly zero: boolean;
}

/**
 * Splits `buf` into alternating runs of zero and non-zero blocks of `granularity` bytes
 * (a power of two, at most 64 KiB), aligned to export offsets; the first and last block
 * may be partial.
 */
export function scanZeroRuns(buf: Buffer, offset: number, granularity: number): ZeroScanRun[] {
  const runs: ZeroScanRun[] = [];
  let runStart = 0;
  let runZero: boolean | null = null;
  let at = 0;
  while (at < buf.length) {
    const blockEnd = Math.min(
      buf.length,
      (Math.floor((offset + at) / granularity) + 1) * granularity - offset,
    );
    const zero = isZeroSlice(buf, at, blockEnd);
    if (runZero === null) runZero = zero;
    else if (zero !== runZero) {
      runs.push({ offset: offset + runStart, length: at - runStart, zero: runZero });
      runStart = at;
      runZero = zero;
    }
    at = blockEnd;
  }
  if (runZero !== null) runs.push({ offset: offset + runStart, length: at - runStart, zero: runZero });
  return runs;
}

/** The zero runs of at least `minRun` bytes, or null when there are none. */
export function zeroRanges(
  buf: Buffer,
  offset: number,
  granularity: number,
  minRun: number,
): ByteRange[] | null {
  let out: ByteRange[] | null = null;
  for (const run of scanZeroRuns(buf, offset, granularity)) {
    if (!run.zero || run.length < minRun) continue;
    (out ??= []).push({ offset: run.offset, length: run.length });
  }
  return out;
}
