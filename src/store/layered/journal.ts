/**
 * The journal of one timeline: append-only segment files of write-batch records with
 * group commit, replay and torn-tail repair at open, and sealing of a full segment so the
 * timeline can roll it into an L0 layer in the background. Every invariant it keeps is
 * in docs/store-format.md ("Write ordering invariants", "Opening and crash recovery").
 */
import { open, readdir, rm, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { xxh64 } from "@node-rs/xxhash";
import { CorruptionError, errorMessage } from "../../common/errors.js";
import { BLOCK_SIZE, type DiskSpec } from "../staging-store.js";
import type { FrameContext } from "./frame-context.js";
import { fsyncDir, handleReader, readExactAt, seqName, writeAllAt } from "./fs-util.js";
import { JournalIndex } from "./journal-index.js";
import {
  DESCRIPTOR_SIZE,
  HEADER_SIZE,
  RECORD_MAGIC,
  decodeBody,
  decodeHeader,
  encodeHeader,
  type EncodedBatch,
} from "./journal-record.js";
import { FileRef } from "./read-plan.js";

const SEGMENT_PATTERN = /^journal-(\d{16})\.log$/;

export interface Segment {
  readonly firstSeq: number;
  readonly path: string;
  readonly handle: FileHandle;
  /** The segment for reads; closing it closes `handle`. */
  readonly file: FileRef;
  /** Bytes of complete, synced records. */
  size: number;
  /** Seq and tag of its last record (or those before it when it has none). */
  lastSeq: number;
  lastTag: number | undefined;
}

interface Pending {
  readonly batch: EncodedBatch;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (seq: number) => void;
  readonly reject: (err: unknown) => void;
}

export interface JournalOptions {
  /** A segment this large is sealed for rolling. */
  readonly rollThresholdBytes: number;
  /** Called after a segment is sealed; the owner rolls `journal.sealed[0]`. */
  readonly onSealed: () => void;
  /** Resolves when the current roll is done; appends wait for it when the journal is far over threshold. */
  readonly rollSettled: () => Promise<void>;
  /** Opens the frames of this timeline's records (reads); records are sealed before they get here. */
  readonly frames: FrameContext;
}

/** What the manifest says about the seqs before and in the journal. */
export interface JournalStart {
  /** Seqs up to this one are in layers (or are the base). */
  readonly flushedSeq: number;
  readonly flushedTag: number | undefined;
  /**
   * Newest seq known to have been acknowledged (the newest PIT's): a damaged record at or
   * below it is never taken for a torn tail.
   */
  readonly acknowledgedSeq: number;
}

export class Journal {
  readonly index: JournalIndex;
  /** Sealed segments, oldest first, waiting to be rolled. */
  readonly sealed: Segment[] = [];
  /** Group commits written (one sync each), for stats. */
  groups = 0;
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private needsTruncate = false;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private active: Segment,
    private readonly options: JournalOptions,
    index: JournalIndex,
  ) {
    this.index = index;
  }

  get lastSeq(): number {
    return this.active.lastSeq;
  }

  get lastTag(): number | undefined {
    return this.active.lastTag;
  }

  /** Bytes in the active segment and the sealed ones. */
  get bytes(): number {
    return this.sealed.reduce((sum, s) => sum + s.size, this.active.size);
  }

  /**
   * Opens the journal of a timeline whose manifest says seqs up to `flushedSeq` are in
   * layers, replaying the records after it.
   */
  static async open(
    dir: string,
    disks: readonly DiskSpec[],
    start: JournalStart,
    options: JournalOptions,
  ): Promise<Journal> {
    const { flushedSeq, flushedTag } = start;
    const names = (await readdir(dir))
      .map((name) => ({ name, match: SEGMENT_PATTERN.exec(name) }))
      .filter((n) => n.match !== null)
      .map((n) => ({ path: join(dir, n.name), firstSeq: Number(n.match?.[1]) }))
      .sort((a, b) => a.firstSeq - b.firstSeq);
    // Segments already rolled into layers: the crash came before their unlink.
    while (names.length > 1 && (names[1]?.firstSeq ?? Infinity) <= flushedSeq + 1) {
      await rm((names.shift() as { path: string }).path, { force: true });
    }
    const index = new JournalIndex(disks.length);
    const segments: Segment[] = [];
    let lastSeq = flushedSeq;
    let lastTag = flushedTag;
    for (let i = 0; i < names.length; i++) {
      const { path, firstSeq } = names[i] as { path: string; firstSeq: number };
      if (firstSeq > lastSeq + 1 || (i > 0 && firstSeq !== lastSeq + 1)) {
        throw new CorruptionError(
          `Journal segment ${path} starts at seq ${firstSeq} but the journal so far ends at seq ${lastSeq}`,
        );
      }
      const handle = await open(path, "r+");
      const file = new FileRef(path, handleReader(handle, path), options.frames);
      const segment: Segment = { firstSeq, path, handle, file, size: 0, lastSeq, lastTag };
      segments.push(segment);
      try {
        await replaySegment(
          segment,
          start,
          disks,
          index,
          i === names.length - 1,
          options.frames.codec.encrypted,
        );
      } catch (err) {
        for (const s of segments) await s.file.retire();
        throw err;
      }
      lastSeq = segment.lastSeq;
      lastTag = segment.lastTag;
    }
    let active = segments.pop();
    if (active === undefined) {
      active = await createSegment(dir, lastSeq, lastTag, options.frames);
    }
    const journal = new Journal(dir, active, options, index);
    journal.sealed.push(...segments);
    return journal;
  }

  /**
   * Queues a batch for the next group commit; resolves with its seq once it is fsync'd.
   * Rejects, with the fs error as cause, if writing or syncing fails. An abort is honoured
   * until the batch's group starts writing; after that the batch becomes durable regardless.
   */
  append(batch: EncodedBatch, signal?: AbortSignal): Promise<number> {
    if (this.closed) return Promise.reject(new Error(`Journal is closed: ${this.dir}`));
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ batch, signal, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.flushing !== undefined) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      if (this.pending.length > 0) this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    // Let appends issued in the same tick join the first group.
    await Promise.resolve();
    while (this.pending.length > 0) {
      // Backpressure: a roll that cannot keep up must not let the journal grow without bound.
      if (this.sealed.length > 0 && this.active.size >= 4 * this.options.rollThresholdBytes) {
        await this.options.rollSettled().catch(() => undefined);
      }
      const group: Pending[] = [];
      for (const p of this.pending.splice(0, groupSize(this.pending))) {
        if (p.signal?.aborted) p.reject(p.signal.reason);
        else group.push(p);
      }
      if (group.length > 0) await this.writeGroup(group);
      await this.sealIfFull();
    }
  }

  private async writeGroup(group: readonly Pending[]): Promise<void> {
    const segment = this.active;
    const handle = segment.handle;
    const start = segment.size;
    const firstSeq = segment.lastSeq + 1;
    const buffers: Buffer[] = [];
    group.forEach((p, i) => {
      buffers.push(encodeHeader(p.batch, firstSeq + i, firstSeq));
      for (const b of p.batch.body) buffers.push(b);
    });
    let written: number;
    try {
      if (this.needsTruncate) {
        await handle.truncate(start);
        this.needsTruncate = false;
      }
      written = await writeAllAt(handle, buffers, start);
      await handle.datasync();
    } catch (err) {
      // Leave the segment as it was before the group, so later appends land after the last good record.
      try {
        await handle.truncate(start);
      } catch {
        this.needsTruncate = true;
      }
      const failure = new Error(`Cannot append to journal ${segment.path}: ${errorMessage(err)}`, {
        cause: err,
      });
      for (const p of group) p.reject(failure);
      return;
    }
    let pos = start;
    group.forEach((p, i) => {
      const seq = firstSeq + i;
      pos += HEADER_SIZE;
      pos = this.indexBatch(p.batch, seq, segment.file, pos);
      if (p.batch.tag !== undefined) segment.lastTag = p.batch.tag;
    });
    segment.size = start + written;
    this.groups++;
    segment.lastSeq = firstSeq + group.length - 1;
    group.forEach((p, i) => p.resolve(firstSeq + i));
  }

  /** Adds a written batch's extents to the index; returns the file position after its body. */
  private indexBatch(batch: EncodedBatch, seq: number, file: FileRef, bodyPos: number): number {
    let pos = bodyPos;
    for (const extent of batch.extents) {
      pos += DESCRIPTOR_SIZE;
      this.index.addExtent(seq, extent.disk, extent.offset, extent.length, file, pos, extent.frameEnds);
      const ends = extent.frameEnds;
      if (ends !== undefined) pos += ends[ends.length - 1] ?? 0;
    }
    return pos;
  }

  private async sealIfFull(): Promise<void> {
    // A segment with an untruncated failed group must not be sealed: sealed segments hold only synced groups.
    if (this.closed || this.needsTruncate) return;
    if (this.sealed.length > 0) {
      this.options.onSealed(); // a roll that failed earlier gets another chance
      return;
    }
    if (this.active.size < this.options.rollThresholdBytes) return;
    let next: Segment;
    try {
      next = await createSegment(this.dir, this.active.lastSeq, this.active.lastTag, this.options.frames);
    } catch {
      return; // e.g. ENOSPC: keep appending to the active segment; the next group tries again.
    }
    this.sealed.push(this.active);
    this.active = next;
    this.options.onSealed();
  }

  /** Forgets a sealed segment whose records are now in a durable layer named by the manifest. */
  async dropSealed(segment: Segment): Promise<void> {
    const i = this.sealed.indexOf(segment);
    if (i >= 0) this.sealed.splice(i, 1);
    this.index.removeFile(segment.file);
    await segment.file.retire();
    await unlink(segment.path);
    await fsyncDir(this.dir);
  }

  /** Resolves when no group is being written (including the seal that may follow it). */
  async idle(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
  }

  /** Waits for queued appends, then closes the segment files. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
    for (const s of [...this.sealed, this.active]) await s.file.retire();
  }
}

/** A group of at least this many bytes leaves the rest of the queue to the next group. */
const GROUP_SPLIT_BYTES = 1024 * 1024;

/**
 * How many queued batches the next group takes: all of them, unless they hold more than
 * 1 MiB, then about half (at least 1 MiB). Writers that wait for their acknowledgement
 * before sending more would otherwise all sit in one group, and sealing their next batches
 * (CPU) and writing the group (I/O) would take turns; split, the first half's writers seal
 * while the second half is being written.
 */
function groupSize(pending: readonly Pending[]): number {
  let total = 0;
  for (const p of pending) total += p.batch.bodyLength;
  const target = Math.max(GROUP_SPLIT_BYTES, total / 2);
  let bytes = 0;
  let n = 0;
  while (n < pending.length && bytes < target) bytes += (pending[n++] as Pending).batch.bodyLength;
  return n;
}

async function createSegment(
  dir: string,
  lastSeq: number,
  lastTag: number | undefined,
  frames: FrameContext,
): Promise<Segment> {
  const path = join(dir, `journal-${seqName(lastSeq + 1)}.log`);
  const handle = await open(path, "wx+");
  try {
    await handle.sync();
    await fsyncDir(dir);
  } catch (err) {
    await handle.close();
    await rm(path, { force: true });
    throw err;
  }
  const file = new FileRef(path, handleReader(handle, path), frames);
  return { firstSeq: lastSeq + 1, path, handle, file, size: 0, lastSeq, lastTag };
}

/** Replays one segment into the index; see "Opening and crash recovery" step 4. */
async function replaySegment(
  segment: Segment,
  start: JournalStart,
  disks: readonly DiskSpec[],
  index: JournalIndex,
  isLast: boolean,
  encrypted: boolean,
): Promise<void> {
  const { handle, path } = segment;
  const { flushedSeq } = start;
  const { size } = await handle.stat();
  let pos = 0;
  let expected = segment.firstSeq;
  const header = Buffer.alloc(HEADER_SIZE);
  while (pos < size) {
    const problem = await (async (): Promise<string | undefined> => {
      if (pos + HEADER_SIZE > size) return "record header cut short";
      await readExactAt(handle, header, pos, path);
      const h = decodeHeader(header);
      if (h === undefined) return "bad record header";
      if (h.seq !== expected) return `record has seq ${h.seq}, expected ${expected}`;
      if (pos + HEADER_SIZE + h.bodyLength > size) return "record body cut short";
      const body = Buffer.alloc(h.bodyLength);
      await readExactAt(handle, body, pos + HEADER_SIZE, path);
      if (xxh64(body) !== h.bodyChecksum) return "record body checksum mismatch";
      const extents = decodeBody(body, h.extentCount, encrypted);
      if (extents === undefined) return "record body does not decode";
      for (const e of extents) {
        const disk = disks[e.disk];
        if (disk === undefined || e.offset % BLOCK_SIZE || e.length % BLOCK_SIZE || e.length === 0) {
          return "record names an unknown disk or unaligned extent";
        }
        if (e.offset + e.length > disk.sizeBytes) return "record extent beyond the disk";
      }
      if (h.seq > flushedSeq) {
        for (const e of extents) {
          const filePos = pos + HEADER_SIZE + e.dataOffset;
          index.addExtent(h.seq, e.disk, e.offset, e.length, segment.file, filePos, e.frameEnds);
        }
      }
      segment.lastSeq = h.seq;
      if (h.tag !== undefined) segment.lastTag = h.tag;
      pos += HEADER_SIZE + h.bodyLength;
      expected++;
      return undefined;
    })();
    if (problem === undefined) continue;
    const where = `${path} at offset ${pos} (seq ${expected})`;
    if (!isLast) throw new CorruptionError(`Damaged record in sealed journal segment ${where}: ${problem}`);
    if (expected <= start.acknowledgedSeq) {
      throw new CorruptionError(
        `Damaged acknowledged record in journal ${where}: ${problem}; a PIT was cut at seq ` +
          `${start.acknowledgedSeq}, so it is not a torn tail. Refusing to drop acknowledged data: ` +
          "resync the disk or drop the timeline",
      );
    }
    await checkTornTail(segment, pos, expected, size, where, problem);
    await handle.truncate(pos);
    await handle.sync();
    break;
  }
  segment.size = pos;
}

/**
 * A failing record at the tail is torn (never acknowledged) unless a valid record header of a
 * later group follows it: groups are written only after the previous group's sync, so such a
 * header proves the damaged record had been acknowledged.
 */
async function checkTornTail(
  segment: Segment,
  pos: number,
  expected: number,
  size: number,
  where: string,
  problem: string,
): Promise<void> {
  const rest = Buffer.alloc(size - pos);
  await readExactAt(segment.handle, rest, pos, segment.path);
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(RECORD_MAGIC, 0);
  for (let at = rest.indexOf(magic, 1); at >= 0; at = rest.indexOf(magic, at + 1)) {
    const h = decodeHeader(rest.subarray(at, at + HEADER_SIZE));
    if (h !== undefined && h.groupFirstSeq > expected) {
      throw new CorruptionError(
        `Damaged acknowledged record in journal ${where}: ${problem}; a later record (seq ${h.seq}) follows ` +
          `it, so it is not a torn tail. Refusing to drop acknowledged data: resync the disk or drop the timeline`,
      );
    }
  }
}
