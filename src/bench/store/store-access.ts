/**
 * What the store phases share: opening the store through its public API only
 * (`LayeredStore.open` and the `StagingStore` contract), the timeline names, and the
 * two ways an agent produces batches: reading a disk sequentially into extents, and a
 * stream of random 4 KiB writes.
 */
import type { FileHandle } from "node:fs/promises";
import type { Extent } from "../../common/extent.js";
import type { StagingStore } from "../../store/staging-store.js";
import { LayeredStore } from "../../store/layered/layered-store.js";
import { BLOCK, SeededContent, below, seededRandom } from "../seeded-content.js";

/** The timeline the image is ingested into and the PIT hour is written to. */
export const MACHINE = "bench-machine";
/** The big sparse disk's timeline, in its own store. */
export const BIG_MACHINE = "bench-big";

export function openStore(dir: string, rollThresholdBytes: number | null): Promise<StagingStore> {
  return LayeredStore.open(dir, rollThresholdBytes === null ? undefined : { rollThresholdBytes });
}

/**
 * One chunk of a sequentially read disk as extents of `extentBytes`: all-zero ones become
 * zero extents (merged when adjacent), the rest data extents viewing `chunk`.
 */
export function chunkExtents(chunk: Buffer, offset: number, extentBytes: number, disk = 0): Extent[] {
  const zeros = Buffer.alloc(extentBytes);
  const extents: Extent[] = [];
  for (let at = 0; at < chunk.length; at += extentBytes) {
    const length = Math.min(extentBytes, chunk.length - at);
    const data = chunk.subarray(at, at + length);
    const last = extents[extents.length - 1];
    if (data.equals(zeros.subarray(0, length))) {
      if (last?.kind === "zero") extents[extents.length - 1] = { ...last, length: last.length + length };
      else extents.push({ disk, offset: offset + at, length, kind: "zero" });
    } else {
      extents.push({ disk, offset: offset + at, length, kind: "data", data });
    }
  }
  return extents;
}

export async function readFully(handle: FileHandle, into: Buffer, position: number): Promise<void> {
  for (let done = 0; done < into.length;) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error(`Unexpected end of file at ${position + done}`);
    done += bytesRead;
  }
}

/** Random 4 KiB writes anywhere on one disk, half text-like and half random data, from a seed. */
export class RandomWrites {
  private readonly random: () => number;
  private readonly content: SeededContent;
  private readonly blocks: number;

  constructor(
    seed: number,
    diskBytes: number,
    private readonly disk = 0,
  ) {
    this.random = seededRandom(seed);
    this.content = new SeededContent(seed);
    this.blocks = Math.floor(diskBytes / BLOCK);
    this.content.fillRandomBlocks(Buffer.alloc(BLOCK), this.random); // builds its pool now, not in a timed loop
  }

  /** A batch of `count` 4 KiB data extents; each batch has a buffer of its own. */
  batch(count: number): Extent[] {
    const data = Buffer.allocUnsafe(count * BLOCK);
    const extents: Extent[] = [];
    for (let i = 0; i < count; i++) {
      const block = data.subarray(i * BLOCK, (i + 1) * BLOCK);
      if (this.random() < 0.5) this.content.fillText(block, this.random);
      else this.content.fillRandomBlocks(block, this.random);
      const offset = below(this.random, this.blocks) * BLOCK;
      extents.push({ disk: this.disk, offset, length: BLOCK, kind: "data", data: block });
    }
    return extents;
  }
}
