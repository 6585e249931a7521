/**
 * Helpers for the store's tests and the crash-writer helper process: temporary store
 * directories that are always removed, deterministic pseudo-random block data, and a
 * tiny in-memory model of a disk's history to compare reads against.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Extent } from "../staging-store.js";

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-store-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Deterministic bytes for a seed (xorshift32), so a writer and a checker agree without sharing buffers. */
export function pattern(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  return out;
}

/** Small deterministic PRNG for choosing offsets and sizes. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** Every batch applied so far, to compute what a disk held at any seq. */
export class DiskModel {
  private readonly batches: Array<{ seq: number; extents: readonly Extent[] }> = [];

  constructor(private readonly sizes: readonly number[]) {}

  apply(seq: number, extents: readonly Extent[]): void {
    this.batches.push({ seq, extents });
  }

  at(disk: number, seq: number): Buffer {
    const out = Buffer.alloc(this.sizes[disk] ?? 0);
    // Appends may resolve in any order; history applies in seq order.
    for (const batch of [...this.batches].sort((a, b) => a.seq - b.seq)) {
      if (batch.seq > seq) continue;
      for (const e of batch.extents) {
        if (e.disk !== disk) continue;
        if (e.kind === "data") e.data.copy(out, e.offset);
        else out.fill(0, e.offset, e.offset + e.length);
      }
    }
    return out;
  }
}
