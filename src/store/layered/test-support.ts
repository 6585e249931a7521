/**
 * Helpers for the store's tests and the crash-writer helper process: temporary store
 * directories that are always removed, deterministic pseudo-random block data, and a
 * tiny in-memory model of a disk's history to compare reads against.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Xxh64 } from "@node-rs/xxhash";
import { KeyRing } from "../codec/key-ring.js";
import { LocalMasterKeyWrapper } from "../codec/local-master-key-wrapper.js";
import type { Extent, Timeline } from "../staging-store.js";
import { LayeredStore, type LayeredStoreOptions } from "./layered-store.js";

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
  const next = rng(seed * 2654435761);
  for (let i = 0; i + 4 <= length; i += 4) out.writeUInt32LE(next() * 0x100000000, i);
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

/** The crash test compacts often, so kills land in compaction and GC too. */
export const CRASH_COMPACTION = { maxLayers: 3, fanIn: 2, garbageRatio: 0.2 };

/** The crash test's disks: big enough for several zones, small enough to verify quickly. */
export const CRASH_DISKS = [
  { id: "disk0", sizeBytes: 4 * 1024 * 1024 },
  { id: "disk1", sizeBytes: 1024 * 1024 },
];

/**
 * The batch the crash writer sends for intent `id`, derived from `id` alone so the checking
 * process can rebuild it. Extent k lies in zone k of its disk, so a batch never overlaps itself.
 */
export function crashBatch(id: number): Extent[] {
  const random = rng(id * 7919 + 1);
  const count = 1 + Math.floor(random() * 3);
  const extents: Extent[] = [];
  for (let k = 0; k < count; k++) {
    const disk = random() < 0.75 ? 0 : 1;
    const zoneBlocks = Math.floor((CRASH_DISKS[disk]?.sizeBytes ?? 0) / 4096 / 3);
    const blocks = random() < 0.1 ? 64 : 1 + Math.floor(random() * 16);
    const block = k * zoneBlocks + Math.floor(random() * (zoneBlocks - blocks));
    const offset = block * 4096;
    const length = blocks * 4096;
    extents.push(
      random() < 0.1
        ? { disk, offset, length, kind: "zero" }
        : { disk, offset, length, kind: "data", data: pattern(id * 8 + k, length) },
    );
  }
  return extents;
}

/** XXH64 (hex) over every disk of the timeline at `seq`, read 1 MiB at a time. */
export async function digestAt(t: Timeline, seq: number): Promise<string> {
  const hash = new Xxh64();
  for (const [d, disk] of t.info.disks.entries()) {
    for (let at = 0; at < disk.sizeBytes; at += 1 << 20) {
      hash.update(await t.read(d, at, Math.min(1 << 20, disk.sizeBytes - at), seq));
    }
  }
  return hash.digest().toString(16);
}

/** A key ring in `<dir>/keys` with a local master key (created on first use). */
export async function testKeyRing(dir: string): Promise<KeyRing> {
  const keys = join(dir, "keys");
  return KeyRing.open(keys, await LocalMasterKeyWrapper.open(join(keys, "master.key")));
}

/** The crash test's store: encrypted with a key ring beside it, compacting often. */
export async function openCrashStore(dir: string, rollThresholdBytes: number): Promise<LayeredStore> {
  const options: LayeredStoreOptions = {
    rollThresholdBytes,
    compaction: CRASH_COMPACTION,
    keyRing: await testKeyRing(dir),
  };
  return LayeredStore.open(join(dir, "store"), options);
}
