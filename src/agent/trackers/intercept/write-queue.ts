/**
 * The intercept tracker's ordered queue of writes the NBD clients made and the pump has not
 * yet handed to the replication link. Order is the order the writes were applied to the
 * disk and acknowledged to the hook, which is what the standby must replay. The queue
 * counts its bytes so its owner can bound it; it never refuses a write itself.
 */
import { MAX_EXTENTS_PER_BATCH, type WireExtent } from "../../../wire/frames.js";

/** One applied change: data (copied out of the NBD request) or a zeroed range. */
export interface QueuedWrite {
  readonly disk: number;
  /** Hook order: 1, 2, 3, ... for the tracker's lifetime. */
  readonly seq: number;
  /** When the hook saw it (ms since epoch): the lag clock starts here. */
  readonly at: number;
  readonly offset: number;
  readonly length: number;
  /** Absent for a zeroed range (trim, write-zeroes). */
  readonly data?: Buffer;
}

/** One extent carries at most this many zero bytes (the wire's length is a u32). */
const MAX_ZERO_EXTENT = 1024 * 1024 * 1024;

export class WriteQueue {
  private items: QueuedWrite[] = [];
  private head = 0;
  private dataBytes = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** Data bytes held (zeroed ranges cost nothing here). */
  get bytes(): number {
    return this.dataBytes;
  }

  /** Oldest write, if any. */
  peek(): QueuedWrite | undefined {
    return this.items[this.head];
  }

  push(write: QueuedWrite): void {
    this.items.push(write);
    this.dataBytes += write.data?.length ?? 0;
  }

  /**
   * Takes the oldest writes, in order, up to `maxBytes` of data (at least one write) and as
   * many as fit in one batch's extents.
   */
  take(maxBytes: number): QueuedWrite[] {
    const out: QueuedWrite[] = [];
    let bytes = 0;
    let extents = 0;
    while (this.head < this.items.length) {
      const w = this.items[this.head]!;
      const size = w.data?.length ?? 0;
      const pieces = w.data ? 1 : Math.max(1, Math.ceil(w.length / MAX_ZERO_EXTENT));
      if (out.length > 0 && (bytes + size > maxBytes || extents + pieces > MAX_EXTENTS_PER_BATCH)) break;
      out.push(w);
      bytes += size;
      extents += pieces;
      this.head++;
    }
    this.dataBytes -= bytes;
    this.compact();
    return out;
  }

  /** Empties the queue, returning what it held, oldest first. */
  drain(): QueuedWrite[] {
    const out = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.dataBytes = 0;
    return out;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * Copies write data into 1 MiB slabs rather than one allocation per write: at tens of
 * thousands of 4 KiB writes a second, per-write ArrayBuffers cost more in GC than the copy.
 * A slab is freed once no queued, spooled or in-flight write refers to it.
 */
export class SlabCopier {
  private slab: Buffer = Buffer.alloc(0);
  private used = 0;

  constructor(private readonly slabBytes = 1024 * 1024) {}

  copy(data: Buffer): Buffer {
    if (data.length > this.slab.length - this.used) {
      this.slab = Buffer.allocUnsafe(Math.max(this.slabBytes, data.length));
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + data.length);
    data.copy(out);
    this.used += data.length;
    return out;
  }
}

/** The batch extents for `writes`, in order (large zeroed ranges split to fit the wire). */
export function toExtents(writes: readonly QueuedWrite[]): WireExtent[] {
  const out: WireExtent[] = [];
  for (const w of writes) {
    if (w.data) {
      out.push({ disk: w.disk, offset: w.offset, length: w.length, kind: "data", data: w.data });
      continue;
    }
    for (let at = 0; at < w.length; at += MAX_ZERO_EXTENT)
      out.push({
        disk: w.disk,
        offset: w.offset + at,
        length: Math.min(MAX_ZERO_EXTENT, w.length - at),
        kind: "zero",
      });
  }
  return out;
}
