/**
 * Which blocks of an export were written since a point its owner chooses (`clear()`): the
 * `lifeboat:dirty` metadata context, and what the intercept tracker sweeps. One bit per
 * block of `granularity` bytes (64 KiB by default, the replication chunk size), so a
 * 1 TiB export costs 2 MiB.
 *
 * Blocks are marked after the write landed, so a sweep that clears a block's bit and then
 * reads the block never misses a write: either it reads the new data, or the bit is set
 * again for the next sweep.
 */
import { STATE_DIRTY, type StatusExtent } from "./protocol.js";

export const DEFAULT_DIRTY_GRANULARITY = 64 * 1024;

export class DirtyMap {
  private readonly bits: Uint8Array;
  private readonly blocks: number;
  private count = 0;

  constructor(
    readonly size: number,
    readonly granularity = DEFAULT_DIRTY_GRANULARITY,
  ) {
    if (granularity <= 0 || (granularity & (granularity - 1)) !== 0)
      throw new RangeError(`Dirty map granularity ${granularity} is not a power of two`);
    this.blocks = Math.ceil(size / granularity);
    this.bits = new Uint8Array(Math.ceil(this.blocks / 8));
  }

  /** Number of dirty blocks. */
  get dirtyBlocks(): number {
    return this.count;
  }

  mark(offset: number, length: number): void {
    if (length <= 0) return;
    const first = Math.floor(offset / this.granularity);
    const last = Math.min(this.blocks, Math.ceil((offset + length) / this.granularity));
    for (let b = first; b < last; b++) {
      const mask = 1 << (b & 7);
      const byte = this.bits[b >> 3]!;
      if ((byte & mask) === 0) {
        this.bits[b >> 3] = byte | mask;
        this.count++;
      }
    }
  }

  isDirty(offset: number): boolean {
    const b = Math.floor(offset / this.granularity);
    return ((this.bits[b >> 3] ?? 0) & (1 << (b & 7))) !== 0;
  }

  /** Forgets every mark: the new point "since" which writes are reported. */
  clear(): void {
    this.bits.fill(0);
    this.count = 0;
  }

  /** Clears one block range's marks (a sweep that has read those blocks). */
  clearRange(offset: number, length: number): void {
    const first = Math.floor(offset / this.granularity);
    const last = Math.min(this.blocks, Math.ceil((offset + length) / this.granularity));
    for (let b = first; b < last; b++) {
      const mask = 1 << (b & 7);
      const byte = this.bits[b >> 3]!;
      if ((byte & mask) !== 0) {
        this.bits[b >> 3] = byte & ~mask;
        this.count--;
      }
    }
  }

  /**
   * Consecutive extents from `offset` covering at most `length` bytes, flags STATE_DIRTY
   * or 0, at most `maxExtents` of them (the caller asks again for the rest).
   */
  extents(offset: number, length: number, maxExtents = 1024): StatusExtent[] {
    const end = Math.min(this.size, offset + length);
    const out: StatusExtent[] = [];
    let at = offset;
    while (at < end && out.length < maxExtents) {
      const dirty = this.isDirty(at);
      let b = Math.floor(at / this.granularity) + 1;
      const lastBlock = Math.ceil(end / this.granularity);
      while (b < lastBlock) {
        const byte = this.bits[b >> 3]!;
        // Skip whole bytes of equal bits when aligned.
        if ((b & 7) === 0 && b + 8 <= lastBlock && byte === (dirty ? 0xff : 0)) {
          b += 8;
          continue;
        }
        if (((byte >> (b & 7)) & 1) !== (dirty ? 1 : 0)) break;
        b++;
      }
      const runEnd = Math.min(end, b * this.granularity);
      out.push({ length: runEnd - at, flags: dirty ? STATE_DIRTY : 0 });
      at = runEnd;
    }
    return out;
  }
}
