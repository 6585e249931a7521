/**
 * The scan tracker: works on any file or block device. Each pass reads every disk, hashes
 * each 64 KiB chunk and sends the chunks whose hash differs from what the standby holds
 * (the hash maps, kept on disk) or was last sent. A pass over all disks ends with a
 * consistent point (a PIT) when no disk changed while the pass read it (regular files:
 * ctime, mtime and size unchanged from the start of its read to the end of the pass; this
 * sees changes at the filesystem's timestamp granularity, and a block device gives no such
 * signal); a pass that saw a change sends what it read but no consistent point, and the
 * next pass starts at once. So the RPO is about one pass. A regular file whose ctime, mtime and size are
 * unchanged since the start of the previous pass is skipped, except for a full read every
 * `fullPassEveryMs`; block devices are always read.
 *
 * While the link is down the tracker does not run: its hash maps are its dirty map, and
 * the first pass after a reconnect or a restart (phase `rescan`) sends only the chunks
 * that differ from them. That costs no spool space however long the outage, and sends each
 * chunk once, as it is now.
 */
import { mkdir, open, readFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { UNKNOWN_HASH, ZERO_CHUNK_HASH, chunkCount, hashChunk, isZero } from "../../../common/chunk-hash.js";
import { writeFileDurably } from "../../../common/durable-file.js";
import { CHUNK_SIZE, HASHES_PER_FRAME, type Batch, type WireExtent } from "../../../wire/frames.js";
import { DISK_READ_BYTES, hashDisk, readFully } from "../../disk-hashes.js";
import { HashMap } from "../../hash-map.js";
import type {
  ChangeTracker,
  ReplicationSink,
  SubmittedBatch,
  TrackerBaseline,
  TrackerProgress,
} from "../change-tracker.js";

export interface ScanDisk {
  readonly path: string;
  readonly sizeBytes: number;
}

export interface ScanTrackerOptions {
  readonly disks: readonly ScanDisk[];
  /** Where the hash maps and the tracker state live. */
  readonly stateDir: string;
  /** Pause between passes. */
  readonly intervalMs?: number;
  /** A regular file is read in full at least this often even when its times did not change. */
  readonly fullPassEveryMs?: number;
  /** Upper bound of data bytes in one batch. */
  readonly batchBytes?: number;
  /**
   * Mark a still pass as a consistent point (default true). The intercept tracker turns this
   * off: it sees every write, and decides itself where the standby's image is consistent.
   */
  readonly consistentPoints?: boolean;
}

interface DiskState {
  readonly index: number;
  /** Bytes read by the current pass, submitted and not acknowledged, read by compares. */
  scanned: number;
  backlog: number;
  rescanned: number;
  readonly spec: ScanDisk;
  readonly fh: FileHandle;
  readonly map: HashMap;
  /** Chunk -> hash submitted but not yet acknowledged. */
  readonly sent: Map<number, bigint>;
  lastStat: string | null;
  lastFullReadAt: number;
}

interface TrackerState {
  /** Timeline whose initial sync completed. */
  syncedTimeline: string;
}

export class ScanTracker implements ChangeTracker {
  readonly name = "scan";
  private phase: TrackerProgress["phase"] = "idle";
  private durableAsOf: number | null = null;
  private lastSubmitted: SubmittedBatch | null = null;
  private passChain: Promise<void> = Promise.resolve();
  private timelineId = "";
  private state: TrackerState;
  private flushTimer: NodeJS.Timeout | null = null;
  /** Start of the first of the latest passes that saw a disk change while reading it; null after a still pass. */
  private changingSince: number | null = null;
  /** Data went to the sink after the last consistent point. */
  private unmarked = false;
  /** Newest tag whose batch (and every one before it) is recorded in the hash maps in memory. */
  private ackedTag = 0;
  private checkpointedTag = 0;
  private sink: ReplicationSink | null = null;
  /** Bumped by each prepare, so a pass of an earlier connection does not move the phase. */
  private generation = 0;

  private constructor(
    private readonly disks: DiskState[],
    private readonly opts: ScanTrackerOptions,
    state: TrackerState,
  ) {
    this.state = state;
  }

  static async open(opts: ScanTrackerOptions): Promise<ScanTracker> {
    await mkdir(opts.stateDir, { recursive: true });
    const disks: DiskState[] = [];
    for (const [index, spec] of opts.disks.entries()) {
      const fh = await open(spec.path, "r");
      const map = await HashMap.load(join(opts.stateDir, `disk${index}.hashes`), chunkCount(spec.sizeBytes));
      disks.push({
        index,
        spec,
        fh,
        map,
        sent: new Map(),
        lastStat: null,
        lastFullReadAt: 0,
        scanned: 0,
        backlog: 0,
        rescanned: 0,
      });
    }
    let state: TrackerState = { syncedTimeline: "" };
    try {
      state = JSON.parse(await readFile(join(opts.stateDir, "scan-tracker.json"), "utf8")) as TrackerState;
    } catch {
      // No state yet: nothing synced.
    }
    return new ScanTracker(disks, opts, state);
  }

  async prepare(baseline: TrackerBaseline, sink: ReplicationSink, signal: AbortSignal): Promise<void> {
    this.generation++;
    this.timelineId = baseline.timelineId;
    this.sink = sink;
    for (const d of this.disks) {
      if (d.map.timelineId === baseline.timelineId) continue;
      d.sent.clear();
      d.lastStat = null;
      if (baseline.fresh) d.map.reset(baseline.timelineId, ZERO_CHUNK_HASH);
      else await this.compareDisk(d, baseline.timelineId, sink, signal);
      await d.map.flush();
    }
    // Synced before: the next pass catches up with what changed while the link was down.
    this.phase = this.state.syncedTimeline === baseline.timelineId ? "rescan" : "initial";
  }

  /**
   * Stops trusting the hash maps: they no longer describe any standby timeline, so the next
   * `prepare` compares hashes with the standby (or starts from zero on a fresh timeline).
   * For an owner that sends changes the maps do not record (the intercept tracker), and
   * after an unclean stop. Durable after the next `flush`.
   */
  forget(): void {
    for (const d of this.disks) {
      d.map.reset("", UNKNOWN_HASH);
      d.sent.clear();
      d.lastStat = null;
    }
  }

  /** RESCAN: sends this disk's hash list; the standby says which chunks differ. */
  private async compareDisk(
    d: DiskState,
    timelineId: string,
    sink: ReplicationSink,
    signal: AbortSignal,
  ): Promise<void> {
    this.phase = "compare";
    d.rescanned = 0;
    const local = await hashDisk(d.fh, d.spec.sizeBytes, signal, (n) => (d.rescanned += n));
    const chunks = local.length;
    const pending: Promise<void>[] = [];
    for (let first = 0; first < chunks; first += HASHES_PER_FRAME) {
      const slice = local.subarray(first, Math.min(first + HASHES_PER_FRAME, chunks));
      pending.push(
        sink.compare(d.index, first, slice, signal).then((differs) => {
          differs.forEach((diff, i) =>
            d.map.set(first + i, diff ? UNKNOWN_HASH : (slice[i] ?? UNKNOWN_HASH)),
          );
        }),
      );
    }
    await Promise.all(pending);
    d.map.timelineId = timelineId;
  }

  async run(sink: ReplicationSink, signal: AbortSignal): Promise<void> {
    const interval = this.opts.intervalMs ?? 1000;
    while (!signal.aborted) {
      await this.passNow(sink, signal);
      try {
        // After a pass that saw the disks change, look again at once for a still moment.
        await sleep(this.changingSince === null ? interval : 20, undefined, { signal });
      } catch {
        return;
      }
    }
  }

  passNow(sink: ReplicationSink, signal: AbortSignal): Promise<void> {
    const next = this.passChain.then(() => this.pass(sink, signal));
    this.passChain = next.catch(() => undefined);
    return next;
  }

  private async pass(sink: ReplicationSink, signal: AbortSignal): Promise<void> {
    const passStart = Date.now();
    const batchBytes = this.opts.batchBytes ?? 4 * 1024 * 1024;
    let extents: WireExtent[] = [];
    let pendingChunks: { d: DiskState; chunk: number; hash: bigint }[] = [];
    let batchData = 0;
    let submittedAny = false;
    const generation = this.generation;
    const catchUp = this.phase === "rescan";
    for (const d of this.disks) {
      d.scanned = 0;
      if (catchUp) d.rescanned = 0;
    }

    const flushBatch = async (consistent: boolean): Promise<void> => {
      if (extents.length === 0 && !consistent) return;
      const chunks = pendingChunks;
      const backlog = new Map<DiskState, number>();
      for (const e of extents) {
        const d = this.disks[e.disk]!;
        if (e.kind === "data") backlog.set(d, (backlog.get(d) ?? 0) + e.length);
      }
      const submitted = await sink.submit(extents, consistent, signal);
      this.unmarked = !consistent;
      extents = [];
      pendingChunks = [];
      batchData = 0;
      submittedAny = true;
      this.lastSubmitted = submitted;
      for (const [d, n] of backlog) d.backlog += n;
      submitted.acked.then(
        () => {
          for (const [d, n] of backlog) d.backlog -= n;
          for (const c of chunks) this.record(c.d, c.chunk, c.hash);
          this.acknowledged(submitted.tag);
        },
        () => undefined, // a lost batch is re-sent from the spool or found again by the next pass
      );
    };

    const preKeys: (string | null)[] = [];
    let stable = false;
    try {
      const buf = Buffer.allocUnsafe(DISK_READ_BYTES);
      for (const d of this.disks) {
        const statKey = await statKeyOf(d.fh);
        preKeys.push(statKey);
        const fullDue = passStart - d.lastFullReadAt >= (this.opts.fullPassEveryMs ?? 60_000);
        if (statKey !== null && statKey === d.lastStat && !fullDue && d.sent.size === 0) {
          d.scanned = d.spec.sizeBytes;
          if (catchUp) d.rescanned = d.spec.sizeBytes;
          continue;
        }
        for (let offset = 0; offset < d.spec.sizeBytes; offset += DISK_READ_BYTES) {
          signal.throwIfAborted();
          const n = Math.min(DISK_READ_BYTES, d.spec.sizeBytes - offset);
          await readFully(d.fh, buf, n, offset);
          let runStart = -1;
          const closeRun = (endAt: number): void => {
            if (runStart < 0) return;
            const data = Buffer.from(buf.subarray(runStart, endAt));
            extents.push({
              disk: d.index,
              offset: offset + runStart,
              length: endAt - runStart,
              kind: "data",
              data,
            });
            batchData += data.length;
            runStart = -1;
          };
          for (let at = 0; at < n; at += CHUNK_SIZE) {
            const end = Math.min(at + CHUNK_SIZE, n);
            const chunk = (offset + at) / CHUNK_SIZE;
            const piece = buf.subarray(at, end);
            const hash = hashChunk(piece);
            const known = d.sent.get(chunk) ?? d.map.get(chunk);
            if (hash === known) {
              closeRun(at);
              continue;
            }
            d.sent.set(chunk, hash);
            pendingChunks.push({ d, chunk, hash });
            if (hash === ZERO_CHUNK_HASH && isZero(piece)) {
              closeRun(at);
              extents.push({ disk: d.index, offset: offset + at, length: end - at, kind: "zero" });
            } else if (runStart < 0) {
              runStart = at;
            }
          }
          closeRun(n);
          d.scanned += n;
          if (catchUp) d.rescanned += n;
          if (batchData >= batchBytes || extents.length >= 1024) await flushBatch(false);
        }
        d.lastStat = statKey;
        d.lastFullReadAt = passStart;
      }
      // The pass is a crash-consistent image only if no disk changed between the start of its
      // read and now: then, at this instant, every disk holds exactly what was read.
      stable = this.opts.consistentPoints ?? true;
      for (const [i, d] of this.disks.entries()) {
        const key = preKeys[i];
        if (stable && key !== null && key !== undefined && (await statKeyOf(d.fh)) !== key) stable = false;
      }
      // Mark a consistent point when still and anything went out since the last mark (also
      // data an earlier, moving pass sent); a moving pass only sends what it has left.
      if (stable && (extents.length > 0 || submittedAny || this.unmarked)) await flushBatch(true);
      else if (extents.length > 0) await flushBatch(false);
      // The rescan found and submitted everything: what is left is sending it.
      if (catchUp && generation === this.generation && this.phase === "rescan") this.phase = "drain";
    } catch (err) {
      // Chunks marked as sent whose batch never reached the sink must be found again by
      // the next pass: forget them, or they would look replicated and never be sent.
      for (const c of pendingChunks) if (c.d.sent.get(c.chunk) === c.hash) c.d.sent.delete(c.chunk);
      throw err;
    }
    if (stable) this.changingSince = null;
    else this.changingSince ??= passStart;
    const last = this.lastSubmitted;
    const markDurable = (): void => {
      this.durableAsOf = Math.max(this.durableAsOf ?? 0, passStart);
      if (this.phase === "drain" && generation === this.generation) this.phase = "continuous";
      if (this.phase === "initial") {
        this.phase = "continuous";
        this.state = { syncedTimeline: this.timelineId };
        void this.saveState();
      }
    };
    if (last) last.acked.then(markDurable, () => undefined);
    else markDurable();
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush().catch(() => undefined);
    }, 1000);
    this.flushTimer.unref();
  }

  private async saveState(): Promise<void> {
    await writeFileDurably(join(this.opts.stateDir, "scan-tracker.json"), JSON.stringify(this.state));
  }

  progress(): TrackerProgress {
    // Before the first pass (idle, compare) only a finished initial sync counts as replicated.
    const synced = this.state.syncedTimeline !== "" && this.state.syncedTimeline === this.timelineId;
    const replicated = (d: DiskState): number =>
      this.phase === "initial"
        ? Math.min(d.spec.sizeBytes, Math.max(0, d.scanned - d.backlog))
        : this.phase === "continuous" || synced
          ? d.spec.sizeBytes
          : 0;
    return {
      disks: this.disks.map((d) => ({
        totalBytes: d.spec.sizeBytes,
        replicatedBytes: replicated(d),
        backlogBytes: d.backlog,
        rescannedBytes: d.rescanned,
      })),
      durableAsOf: this.durableAsOf,
      changingSince: this.changingSince,
      phase: this.phase,
    };
  }

  absorb(batch: Batch, timelineId: string): void {
    for (const e of batch.extents) {
      const d = this.disks[e.disk];
      if (!d || d.map.timelineId !== timelineId || timelineId === "") continue;
      for (let at = 0; at < e.length; at += CHUNK_SIZE) {
        const chunk = (e.offset + at) / CHUNK_SIZE;
        const hash =
          e.kind === "zero"
            ? ZERO_CHUNK_HASH
            : hashChunk(e.data.subarray(at, Math.min(at + CHUNK_SIZE, e.length)));
        this.record(d, chunk, hash);
      }
    }
    this.acknowledged(batch.tag);
  }

  /** The standby holds `hash` for this chunk: remember it, and stop treating it as in flight. */
  private record(d: DiskState, chunk: number, hash: bigint): void {
    d.map.set(chunk, hash);
    if (d.sent.get(chunk) === hash) d.sent.delete(chunk);
  }

  /** Every batch up to `tag` is recorded in the maps: flush them soon, then checkpoint. */
  private acknowledged(tag: number): void {
    this.ackedTag = Math.max(this.ackedTag, tag);
    this.scheduleFlush();
  }

  async flush(): Promise<void> {
    // Every batch up to `upTo` is in the maps now; once they are on disk the spool may let go.
    const upTo = this.ackedTag;
    for (const d of this.disks) await d.map.flush();
    if (upTo > this.checkpointedTag && this.sink?.checkpoint) {
      await this.sink.checkpoint(upTo);
      this.checkpointedTag = upTo;
    }
  }

  async close(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    await this.flush();
    for (const d of this.disks) await d.fh.close();
  }
}

/** What changes when a regular file is written (ctime, mtime, size); null for a block device. */
async function statKeyOf(fh: FileHandle): Promise<string | null> {
  const st = await fh.stat({ bigint: true });
  return st.isFile() ? `${st.ctimeNs}/${st.mtimeNs}/${st.size}` : null;
}
