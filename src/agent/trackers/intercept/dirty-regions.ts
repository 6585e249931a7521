/**
 * RESCAN of dirty regions: what the intercept tracker does after it had to stop queueing
 * writes (the spool and the queue were full, or the agent restarted with regions pending).
 * The regions are read from the disk as they are now and sent whole: data where the disk
 * holds data, zero extents where 4 KiB blocks read as zeros. Sending beats comparing hashes
 * here: the regions are known to have been written, so most of them differ anyway.
 */
import type { FileHandle } from "node:fs/promises";
import type { DirtyMap } from "../../../nbd/dirty-map.js";
import { scanZeroRuns } from "../../../nbd/zero-scan.js";
import type { WireExtent } from "../../../wire/frames.js";
import { readFully } from "../../disk-hashes.js";
import type { ReplicationSink } from "../change-tracker.js";

export interface ByteRegion {
  readonly offset: number;
  readonly length: number;
}

/** Reads at most this much at once. */
const READ_BYTES = 1024 * 1024;
const ZERO_GRANULARITY = 4096;
const MAX_EXTENTS = 1024;

/** The dirty ranges of `map`, in order, clipped to its size. */
export function dirtyRegions(map: DirtyMap): ByteRegion[] {
  const out: ByteRegion[] = [];
  let at = 0;
  while (at < map.size) {
    for (const e of map.extents(at, map.size - at)) {
      if (e.flags !== 0) {
        const last = out.at(-1);
        if (last && last.offset + last.length === at)
          out[out.length - 1] = { offset: last.offset, length: last.length + e.length };
        else out.push({ offset: at, length: e.length });
      }
      at += e.length;
    }
  }
  return out;
}

export function regionBytes(regions: readonly ByteRegion[]): number {
  return regions.reduce((n, r) => n + r.length, 0);
}

export interface SendRegionsOptions {
  readonly fh: FileHandle;
  readonly disk: number;
  readonly regions: readonly ByteRegion[];
  readonly sink: ReplicationSink;
  readonly signal: AbortSignal;
  /** Data bytes per batch. */
  readonly batchBytes: number;
  readonly onRead?: (bytes: number) => void;
}

/** Reads `regions` of the disk and submits them as batches (none marked consistent). */
export async function sendRegions(o: SendRegionsOptions): Promise<void> {
  let extents: WireExtent[] = [];
  let data = 0;
  const flush = async (): Promise<void> => {
    if (extents.length === 0) return;
    const batch = extents;
    extents = [];
    data = 0;
    await o.sink.submit(batch, false, o.signal);
  };
  for (const region of o.regions) {
    for (let at = region.offset; at < region.offset + region.length; at += READ_BYTES) {
      o.signal.throwIfAborted();
      const n = Math.min(READ_BYTES, region.offset + region.length - at);
      const buf = Buffer.allocUnsafe(n);
      await readFully(o.fh, buf, n, at);
      for (const run of scanZeroRuns(buf, at, ZERO_GRANULARITY)) {
        if (run.zero) extents.push({ disk: o.disk, offset: run.offset, length: run.length, kind: "zero" });
        else {
          const piece = buf.subarray(run.offset - at, run.offset - at + run.length);
          extents.push({ disk: o.disk, offset: run.offset, length: run.length, kind: "data", data: piece });
          data += run.length;
        }
      }
      o.onRead?.(n);
      if (data >= o.batchBytes || extents.length >= MAX_EXTENTS) await flush();
    }
  }
  await flush();
}
