/**
 * The agent's bounded on-disk spool of batches not yet acknowledged by the replicator. A
 * batch is written here (as its encoded BATCH frame) before it is sent; after a disconnect
 * or a restart every spooled batch newer than the replicator's last durable tag is sent
 * again, in order. An acknowledged batch stops counting against the limit at once, but its
 * file stays until `prune`: the tracker prunes only after its hash map, which records the
 * batch as replicated, is durable. So a crash in between loses nothing: on restart the
 * acknowledged batches are handed back to the tracker instead of being sent again.
 * When the spool holds `limitBytes` of unacknowledged batches, `add` waits: the tracker
 * stops reading the disk rather than grow memory or disk use.
 *
 * The scan tracker can always re-read a chunk from the disk, so spool files are not fsync'd
 * per batch, and after a restart the batches that were never acknowledged are dropped
 * (`dropUnacknowledged`) rather than sent again: the tracker's next pass finds those chunks
 * as they are now, and sends each once. A writer that acknowledges writes to its own caller
 * (the intercept tracker) passes `durable: true` and re-sends them instead.
 */
import { mkdir, open, readdir, readFile, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { encodeFrame } from "../wire/codec.js";
import { FrameReader } from "../wire/frame-reader.js";
import { FrameType, type Batch } from "../wire/frames.js";

export interface SpoolEntry {
  readonly batch: Batch;
  readonly bytes: number;
}

export class Spool {
  private readonly entries = new Map<number, SpoolEntry>();
  /** Acknowledged, file kept until prune. */
  private readonly acked = new Set<number>();
  private used = 0;
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly dir: string,
    readonly limitBytes: number,
    private readonly durable: boolean,
  ) {}

  static async open(dir: string, limitBytes: number, durable = false): Promise<Spool> {
    await mkdir(dir, { recursive: true });
    const spool = new Spool(dir, limitBytes, durable);
    const names = (await readdir(dir)).filter((n) => n.endsWith(".batch")).sort();
    for (const name of names) {
      const path = join(dir, name);
      try {
        const frames = new FrameReader().push(await readFile(path));
        const frame = frames[0];
        if (frames.length !== 1 || frame?.type !== FrameType.BATCH) throw new Error("not one BATCH frame");
        spool.entries.set(frame.body.tag, { batch: frame.body, bytes: sizeOf(frame.body) });
        spool.used += sizeOf(frame.body);
      } catch {
        // A torn spool file (crash while writing it) was never sent as complete: drop it; the
        // tracker re-reads its chunks because their hashes were never committed.
        await unlink(path);
      }
    }
    return spool;
  }

  /** Spooled batches, oldest first. */
  list(): Batch[] {
    return [...this.entries.keys()].sort((a, b) => a - b).map((t) => this.entries.get(t)!.batch);
  }

  maxTag(): number {
    let max = 0;
    for (const t of this.entries.keys()) max = Math.max(max, t);
    for (const t of this.acked) max = Math.max(max, t);
    return max;
  }

  get usedBytes(): number {
    return this.used;
  }

  /** Adds a batch, waiting while the spool is full (one batch may overshoot an empty spool). */
  async add(batch: Batch, signal?: AbortSignal): Promise<void> {
    const size = sizeOf(batch);
    while (this.used > 0 && this.used + size > this.limitBytes) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    }
    const fh = await open(this.pathOf(batch.tag), "w");
    try {
      // One system call for the whole frame (a batch of small writes has hundreds of parts).
      await fh.writev(encodeFrame({ type: FrameType.BATCH, body: batch }));
      if (this.durable) await fh.sync();
    } finally {
      await fh.close();
    }
    this.entries.set(batch.tag, { batch, bytes: size });
    this.used += size;
  }

  /** Marks every batch with tag <= `tag` acknowledged; returns them, oldest first. Files stay until `prune`. */
  release(tag: number): Batch[] {
    const done = this.list().filter((b) => b.tag <= tag);
    for (const b of done) {
      this.entries.delete(b.tag);
      this.acked.add(b.tag);
      this.used -= sizeOf(b);
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    return done;
  }

  /** Deletes the files of acknowledged batches with tag <= `tag` (their effect is durable elsewhere). */
  async prune(tag: number): Promise<void> {
    for (const t of [...this.acked].filter((x) => x <= tag)) {
      this.acked.delete(t);
      await rm(this.pathOf(t), { force: true });
    }
  }

  /** Deletes every batch not yet acknowledged; returns how many there were. */
  async dropUnacknowledged(): Promise<number> {
    const pending = this.list();
    for (const b of pending) {
      this.entries.delete(b.tag);
      this.used -= sizeOf(b);
      await rm(this.pathOf(b.tag), { force: true });
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    return pending.length;
  }

  /** Empties the spool (the timeline changed: its batches no longer apply). */
  async clear(): Promise<void> {
    this.release(Number.MAX_SAFE_INTEGER);
    await this.prune(Number.MAX_SAFE_INTEGER);
  }

  private pathOf(tag: number): string {
    return join(this.dir, `${String(tag).padStart(16, "0")}.batch`);
  }
}

function sizeOf(batch: Batch): number {
  let n = 0;
  for (const e of batch.extents) n += e.kind === "data" ? e.length : 0;
  return n + 64;
}
