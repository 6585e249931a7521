/**
 * Chunk hashing shared by the agent (what is on the source disk), the replicator (what the
 * staging store holds) and the failback client: xxh3-64 of each CHUNK_SIZE chunk, with the
 * low bit forced to 1 so that 0 can mean "unknown" in a hash map.
 */
import { xxh3 } from "@node-rs/xxhash";
import { CHUNK_SIZE } from "../wire/frames.js";

export const UNKNOWN_HASH = 0n;

const hasher = xxh3.Xxh3.withSeed();

export function hashChunk(chunk: Buffer): bigint {
  hasher.reset();
  hasher.update(chunk);
  if (chunk.length < CHUNK_SIZE) hasher.update(zeroChunk.subarray(0, CHUNK_SIZE - chunk.length));
  return hasher.digest() | 1n;
}

const zeroChunk = Buffer.alloc(CHUNK_SIZE);
export const ZERO_CHUNK_HASH = hashChunk(zeroChunk);

export function isZero(buf: Buffer): boolean {
  // Compare against a zero buffer in CHUNK_SIZE steps: Buffer.equals is memcmp.
  for (let at = 0; at < buf.length; at += CHUNK_SIZE) {
    const part = buf.subarray(at, Math.min(at + CHUNK_SIZE, buf.length));
    if (!part.equals(zeroChunk.subarray(0, part.length))) return false;
  }
  return true;
}

export function chunkCount(sizeBytes: number): number {
  return Math.ceil(sizeBytes / CHUNK_SIZE);
}

/** Hashes consecutive chunks of `buf` (whose first byte is chunk `first`) into `out`. */
export function hashChunksInto(buf: Buffer, out: BigUint64Array, first: number): void {
  for (let i = 0, at = 0; at < buf.length; i++, at += CHUNK_SIZE) {
    out[first + i] = hashChunk(buf.subarray(at, Math.min(at + CHUNK_SIZE, buf.length)));
  }
}
