/**
 * Chunk hashes of what a staging timeline holds at a seq, in the agent's hashing, for
 * compares (RESCAN) and for failback. Reads in 4 MiB pieces.
 */
import { hashChunksInto } from "../common/chunk-hash.js";
import type { Timeline } from "../store/staging-store.js";
import { CHUNK_SIZE } from "../wire/frames.js";

const PIECE = 4 * 1024 * 1024;

export async function timelineHashes(
  timeline: Timeline,
  disk: number,
  firstChunk: number,
  count: number,
  seq: number,
  signal?: AbortSignal,
): Promise<BigUint64Array> {
  const size = timeline.info.disks[disk]!.sizeBytes;
  const out = new BigUint64Array(count);
  const start = firstChunk * CHUNK_SIZE;
  const end = Math.min(size, (firstChunk + count) * CHUNK_SIZE);
  for (let at = start; at < end; at += PIECE) {
    const n = Math.min(PIECE, end - at);
    const buf = await timeline.read(disk, at, n, seq, signal);
    const hashes = new BigUint64Array(Math.ceil(n / CHUNK_SIZE));
    hashChunksInto(buf, hashes, 0);
    out.set(hashes, (at - start) / CHUNK_SIZE);
  }
  return out;
}
