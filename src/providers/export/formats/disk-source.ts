/**
 * The input every image writer consumes: a disk of `sizeBytes` that can be read at any
 * offset. Writers read it front to back in large pieces (`readPieces`), find the zero
 * ranges themselves and skip them, so a source needs no notion of allocation; memory stays
 * a few pieces whatever the disk size.
 */
import type { Timeline } from "../../../store/staging-store.js";

export interface DiskSource {
  /** Bytes; a positive multiple of 512 (the staging store's disks are multiples of 4096). */
  readonly sizeBytes: number;
  /**
   * Resolves with exactly `length` bytes at `offset`. Writers only ask for ranges inside
   * the disk whose offset and length are multiples of 4096 (the tail piece ends at
   * `sizeBytes`). The buffer belongs to the caller, which may keep it until it is written.
   */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer>;
  /**
   * Optional: fills `buf` with the `buf.length` bytes at `offset`. Writers then read into
   * recycled buffers (piece-buffers.ts), which saves the cost of fresh large buffers.
   */
  readInto?(buf: Buffer, offset: number, signal?: AbortSignal): Promise<void>;
}

/** Disk `disk` of a staging-store timeline as it was at sequence `seq`. */
export function timelineSource(timeline: Timeline, disk: number, seq: number): DiskSource {
  const spec = timeline.info.disks[disk];
  if (spec === undefined) throw new RangeError(`Timeline ${timeline.info.id} has no disk ${disk}`);
  return {
    sizeBytes: spec.sizeBytes,
    read: (offset, length, signal) => timeline.read(disk, offset, length, seq, signal),
  };
}
