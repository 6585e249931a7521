/**
 * The intercept tracker: the agent serves each protected disk over NBD (`NbdServer`,
 * `TrackedBackend(FileBackend(disk))`), the machine's I/O goes through it, and every write
 * is applied to the disk and queued for replication before the client gets its reply.
 *
 * - **Order.** The hook numbers every write (`DurableSeq`) and appends it to one ordered
 *   queue for all disks; a pump hands the queue to the replication link in batches of up to
 *   `batchBytes`, in that order. A batch therefore holds a prefix of the acknowledged writes:
 *   each one is a consistent point, and the standby may cut a PIT at any of them.
 * - **Initial copy and compare** (a *full round*) reuse the scan tracker: its compare (HASHES
 *   / HASH_DIFF) and one pass that sends what differs. Writes that arrive meanwhile are held
 *   in the queue and sent after the pass: once the standby has replayed every write the hook
 *   saw before the pass ended, it holds the disk as it was then, and every later batch is
 *   consistent again.
 * - **Backlog.** When the link's spool is full and the queue reaches `queueLimitBytes`, the
 *   queue turns into dirty maps and new writes only mark them (asynchronous mode: the writer
 *   never waits on the network). As soon as the link takes data again, a *dirty round* sends
 *   just those regions as they are on the disk, holding new writes as a full round does.
 * - **Synchronous mode** parks each write until the batch holding it is durable at the
 *   standby (RPO zero, as DRBD protocol C). With the replicator unreachable writes block;
 *   `syncTimeoutMs` lets them go after that long and replicates asynchronously until caught up.
 *
 * Consistency is decided here, not by the scan pass (`consistentPoints: false`). Write numbers
 * also drive lag: the standby holds the disks as they were just before the oldest write that
 * is not durable there yet.
 */
import { mkdir, open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { UserError, errorMessage } from "../../../common/errors.js";
import { logger, type Logger } from "../../../common/log.js";
import { DEFAULT_DIRTY_GRANULARITY, DirtyMap } from "../../../nbd/dirty-map.js";
import type { ExportChange } from "../../../nbd/export-backend.js";
import { FileBackend } from "../../../nbd/file-backend.js";
import { NbdServer } from "../../../nbd/nbd-server.js";
import { TrackedBackend } from "../../../nbd/tracked-backend.js";
import type { Batch } from "../../../wire/frames.js";
import type {
  ChangeTracker,
  ReplicationSink,
  SubmittedBatch,
  TrackerBaseline,
  TrackerDiskProgress,
  TrackerProgress,
} from "../change-tracker.js";
import { ScanTracker } from "../scan/scan-tracker.js";
import { dirtyRegions, regionBytes, sendRegions, type ByteRegion } from "./dirty-regions.js";
import { DurableSeq } from "./durable-seq.js";
import { diskStamp, loadInterceptState, saveInterceptState, type InterceptState } from "./intercept-state.js";
import { LagSamples } from "./lag-samples.js";
import { exportUri, type NbdListen } from "./nbd-endpoint.js";
import { SlabCopier, WriteQueue, toExtents, type QueuedWrite } from "./write-queue.js";

export interface InterceptDisk {
  /** Export name (the disk id, e.g. disk0). */
  readonly id: string;
  readonly path: string;
  readonly sizeBytes: number;
}

export interface InterceptTrackerOptions {
  readonly disks: readonly InterceptDisk[];
  /** Tracker state (shared with the scan tracker's hash maps). */
  readonly stateDir: string;
  readonly listen: NbdListen;
  /** Acknowledge a write only once the standby holds it durably. */
  readonly sync?: boolean;
  /** Synchronous mode: after a write waited this long, stop waiting (asynchronous until caught up). Default: wait. */
  readonly syncTimeoutMs?: number;
  /** Queued write data held in memory before the tracker falls back to dirty maps (default 64 MiB). */
  readonly queueLimitBytes?: number;
  /** Data bytes per batch (default 1 MiB). */
  readonly batchBytes?: number;
  /** Asynchronous mode: a batch smaller than batchBytes waits until its oldest write is this old (default 5 ms). */
  readonly batchDelayMs?: number;
  readonly log?: Logger;
}

/** NBD block sizes of the exports: 4 KiB-aligned requests only, the store's block size. */
export const INTERCEPT_BLOCK_SIZES = { minimum: 4096, preferred: 4096, maximum: 8 * 1024 * 1024 };

const DEFAULT_QUEUE_LIMIT = 64 * 1024 * 1024;
const DEFAULT_BATCH_BYTES = 1024 * 1024;
const DEFAULT_BATCH_DELAY_MS = 5;
/** A synchronous write that waits this long is worth a log line. */
const SYNC_WAIT_NOTICE_MS = 5000;
const RESOLVED: Promise<void> = Promise.resolve();

interface Disk {
  readonly index: number;
  readonly spec: InterceptDisk;
  readonly backend: FileBackend;
  /** Read handle for dirty rounds. */
  readonly fh: FileHandle;
  /** Regions written but not queued: a dirty round sends them. */
  readonly dirty: DirtyMap;
  uri: string;
  queued: number;
  inflight: number;
  rescanned: number;
}

/** A batch handed to the link, not yet acknowledged. */
interface PendingBatch {
  readonly tag: number;
  /** Once durable, every write up to this number is durable at the standby. */
  readonly coversSeq: number;
  /** The oldest write this batch makes durable (ms since epoch). */
  readonly oldestAt: number;
  readonly writes: readonly QueuedWrite[];
}

interface Round {
  readonly kind: "full" | "dirty";
  readonly startSeq: number;
  readonly startAt: number;
  /** A full round that compared hashes with the standby (a RESCAN, not an initial sync). */
  compared: boolean;
}

export class InterceptTracker implements ChangeTracker {
  readonly name = "intercept";
  readonly durableSpool = true;
  /** Per-write lag from hook to durable ack (what the RPO figures are read from). */
  readonly lag = new LagSamples();
  private readonly seqs = new DurableSeq();
  private readonly queue = new WriteQueue();
  private readonly slabs = new SlabCopier();
  /** "drop": writes only mark the dirty maps until the next round. */
  private mode: "queue" | "drop" = "queue";
  /** The pump waits: no sink yet, or a round is reading the disks. */
  private held = true;
  private sink: ReplicationSink | null = null;
  /** The standby timeline this tracker's stream belongs to. */
  private timelineId: string;
  private fullRoundFor: TrackerBaseline | null = null;
  private round: Round | null = null;
  private pumping: Promise<void> | null = null;
  private pumpScheduled = false;
  /** Ends the pump's wait for a fuller batch. */
  private lingering: (() => void) | null = null;
  /** The oldest write of the batch the pump is handing to the sink right now. */
  private submittingSince: number | null = null;
  /** A batch may be marked consistent once it covers this write number. */
  private consistentFrom = Number.POSITIVE_INFINITY;
  private pending: PendingBatch[] = [];
  /** When the oldest write that went only to the dirty maps was made. */
  private droppedSince: number | null = null;
  private wakers: (() => void)[] = [];
  private connected = false;
  private degraded = false;
  private syncNoticeLogged = false;
  private closing = false;
  private readonly closeController = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private flushTimer: NodeJS.Timeout | null = null;
  private ackedTag = 0;
  private checkpointedTag = 0;
  /** The scan tracker's maps are stale (unclean stop): forget them at the next full round. */
  private forgetScan: boolean;
  private readonly log: Logger;
  private readonly queueLimit: number;
  private readonly batchBytes: number;
  private readonly lingerMs: number;
  private server: NbdServer | null = null;
  private running: Promise<void> | null = null;

  private constructor(
    private readonly disks: Disk[],
    private readonly scan: ScanTracker,
    private readonly opts: InterceptTrackerOptions,
    private state: InterceptState,
    unclean: boolean,
  ) {
    this.log = opts.log ?? logger("agent");
    this.queueLimit = opts.queueLimitBytes ?? DEFAULT_QUEUE_LIMIT;
    // A batch never waits to be bigger than half what the queue may hold: the queue would
    // overflow while the pump lingers.
    this.batchBytes = Math.min(opts.batchBytes ?? DEFAULT_BATCH_BYTES, Math.max(4096, this.queueLimit / 2));
    this.lingerMs = opts.batchDelayMs ?? DEFAULT_BATCH_DELAY_MS;
    this.timelineId = state.syncedTimeline;
    this.forgetScan = unclean;
    for (const [i, regions] of state.dirty.entries()) {
      const d = disks[i];
      for (const r of regions) d?.dirty.mark(r.offset, r.length);
    }
    if (disks.some((d) => d.dirty.dirtyBlocks > 0)) {
      this.mode = "drop";
      this.droppedSince = Date.now();
    }
    this.timer = setInterval(() => this.watchSync(), 250);
    this.timer.unref();
  }

  /** Opens the disks, the scan tracker and the state, and starts serving the disks over NBD. */
  static async open(opts: InterceptTrackerOptions): Promise<InterceptTracker> {
    const log = opts.log ?? logger("agent");
    const saved = await loadInterceptState(opts.stateDir);
    let unclean = saved !== null && !saved.clean;
    if (unclean) log("The agent did not stop cleanly: every disk will be compared with the standby (RESCAN)");
    for (const [i, d] of opts.disks.entries()) {
      const stamp = saved?.clean ? saved.diskStamps?.[i] : undefined;
      if (!unclean && stamp && stamp !== (await diskStamp(d.path))) {
        log(
          `${d.path} was written while the agent did not serve it: every disk will be compared with the standby (RESCAN)`,
        );
        unclean = true;
      }
    }
    const state: InterceptState = saved && !unclean ? saved : { clean: false, syncedTimeline: "", dirty: [] };
    const scan = await ScanTracker.open({
      disks: opts.disks,
      stateDir: opts.stateDir,
      consistentPoints: false,
      ...(opts.batchBytes === undefined ? {} : { batchBytes: opts.batchBytes }),
    });
    const disks: Disk[] = [];
    try {
      for (const [index, spec] of opts.disks.entries()) {
        const backend = await FileBackend.open(spec.path, { description: spec.path });
        if (backend.size !== spec.sizeBytes) {
          await backend.close();
          throw new UserError(
            `Disk ${spec.path} is ${backend.size} bytes now; it was registered with ${spec.sizeBytes}: a disk cannot change size while protected`,
          );
        }
        const fh = await open(spec.path, "r");
        disks.push({
          index,
          spec,
          backend,
          fh,
          dirty: new DirtyMap(spec.sizeBytes, DEFAULT_DIRTY_GRANULARITY),
          uri: "",
          queued: 0,
          inflight: 0,
          rescanned: 0,
        });
      }
    } catch (err) {
      for (const d of disks) {
        await d.backend.close();
        await d.fh.close();
      }
      await scan.close();
      throw err;
    }
    const tracker = new InterceptTracker(disks, scan, opts, state, unclean);
    await saveInterceptState(opts.stateDir, running(state));
    try {
      await tracker.serve();
    } catch (err) {
      await tracker.close();
      throw err;
    }
    return tracker;
  }

  private async serve(): Promise<void> {
    const server = new NbdServer({ log: (m) => this.log(`nbd ${m}`) });
    for (const d of this.disks) {
      const backend = new TrackedBackend(d.backend, {
        hook: { changed: (change) => this.changed(d, change) },
      });
      server.addExport(d.spec.id, backend, { blockSizes: INTERCEPT_BLOCK_SIZES });
    }
    const listen = this.opts.listen;
    if ("socketPath" in listen) await mkdir(dirname(listen.socketPath), { recursive: true, mode: 0o700 });
    const bound = await server.listen(
      "socketPath" in listen ? listen : { host: listen.host, port: listen.port },
    );
    this.server = server;
    const port = typeof bound === "string" ? undefined : bound.port;
    for (const d of this.disks) d.uri = exportUri(listen, d.spec.id, port);
  }

  /** Each disk's NBD URI, in disk order. */
  exports(): { readonly id: string; readonly path: string; readonly uri: string }[] {
    return this.disks.map((d) => ({ id: d.spec.id, path: d.spec.path, uri: d.uri }));
  }

  /**
   * Synchronous mode applies once the disks are in sync: during an initial copy or a compare
   * the standby is not a usable copy yet, and holding every write for its duration would
   * stall the machine.
   */
  private get waitsForStandby(): boolean {
    return (this.opts.sync ?? false) && !this.degraded && this.synced();
  }

  /** The standby timeline holds a full copy that the queue keeps up to date. */
  private synced(): boolean {
    return (
      this.state.syncedTimeline !== "" &&
      this.state.syncedTimeline === this.timelineId &&
      this.fullRoundFor === null &&
      this.round?.kind !== "full"
    );
  }

  /** The write hook: runs after the change reached the disk, before the client's reply. */
  private changed(disk: Disk, change: ExportChange): Promise<void> {
    if (this.closing) return Promise.reject(new Error("The agent is stopping: write not replicated"));
    const seq = this.seqs.next();
    const at = Date.now();
    const length = change.kind === "data" ? change.data.length : change.length;
    if (this.mode === "drop") {
      disk.dirty.mark(change.offset, length);
      this.droppedSince ??= at;
    } else {
      // The hook's data is only valid until it returns: copy it.
      const write: QueuedWrite =
        change.kind === "data"
          ? { disk: disk.index, seq, at, offset: change.offset, length, data: this.slabs.copy(change.data) }
          : { disk: disk.index, seq, at, offset: change.offset, length };
      this.queue.push(write);
      disk.queued += write.data?.length ?? 0;
      // Synchronous writers wait for the standby, so their number is bounded by the NBD
      // in-flight limits; only asynchronous writes can outrun the queue.
      if (this.queue.bytes > this.queueLimit && !this.waitsForStandby)
        this.overflow(`more than ${this.queueLimit} bytes of writes wait for the replication spool`);
      else {
        if (this.queue.bytes >= this.batchBytes) this.lingering?.();
        this.kick();
      }
    }
    return this.waitsForStandby ? this.seqs.wait(seq) : RESOLVED;
  }

  /** Stops queueing: what was queued and every write until the next round go to the dirty maps. */
  private overflow(reason: string): void {
    if (this.mode === "queue" && !this.closing)
      this.log(
        `Replication backlog: ${reason}; keeping a dirty map, the dirty regions will be re-sent (RESCAN)`,
      );
    this.dropQueue();
    this.mode = "drop";
    this.consistentFrom = Number.POSITIVE_INFINITY;
    this.lingering?.();
    this.wake();
  }

  private dropQueue(): void {
    for (const w of this.queue.drain()) {
      const d = this.disks[w.disk]!;
      d.queued -= w.data?.length ?? 0;
      d.dirty.mark(w.offset, w.length);
      this.droppedSince = Math.min(this.droppedSince ?? w.at, w.at);
    }
  }

  // ---- the pump: queue -> link, in order ----

  /** The pump may hand the queue to the sink now. */
  private canPump(): boolean {
    const sink = this.sink;
    return (
      sink !== null &&
      !this.held &&
      !this.closing &&
      this.queue.length > 0 &&
      // After a reconnect to another timeline, prepare() decides what happens to the queue.
      (sink.timelineId === undefined || sink.timelineId === this.timelineId)
    );
  }

  private kick(): void {
    if (this.pumpScheduled || this.pumping || !this.canPump()) return;
    this.pumpScheduled = true;
    // Let the writes that arrive in this turn of the event loop join the first batch.
    setImmediate(() => {
      this.pumpScheduled = false;
      const sink = this.sink;
      if (this.pumping || !sink || !this.canPump()) return;
      this.pumping = this.pump(sink).finally(() => {
        this.pumping = null;
        this.wake();
        this.kick();
      });
    });
  }

  private async pump(sink: ReplicationSink): Promise<void> {
    while (this.sink === sink && this.canPump()) {
      // Asynchronous mode lets a small batch wait for company: each batch costs a spool
      // fsync, a frame and a store append, whatever its size.
      const linger = this.waitsForStandby ? 0 : this.lingerMs;
      const age = Date.now() - (this.queue.peek()?.at ?? 0);
      if (this.queue.bytes < this.batchBytes && age < linger) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.lingering = null;
            resolve();
          }, linger - age);
          // A full batch, an overflow or close ends the wait early.
          this.lingering = () => {
            clearTimeout(timer);
            this.lingering = null;
            resolve();
          };
        });
        continue;
      }
      const writes = this.queue.take(this.batchBytes);
      const last = writes.at(-1)!;
      for (const w of writes) {
        const d = this.disks[w.disk]!;
        d.queued -= w.data?.length ?? 0;
        d.inflight += w.data?.length ?? 0;
      }
      let submitted: SubmittedBatch;
      this.submittingSince = writes[0]!.at;
      try {
        submitted = await sink.submit(
          toExtents(writes),
          last.seq >= this.consistentFrom,
          this.closeController.signal,
        );
      } catch (err) {
        // Not spooled: these writes and everything queued after them are found again by a dirty round.
        for (const w of writes) {
          const d = this.disks[w.disk]!;
          d.inflight -= w.data?.length ?? 0;
          d.dirty.mark(w.offset, w.length);
          this.droppedSince = Math.min(this.droppedSince ?? w.at, w.at);
        }
        this.overflow(`the spool did not take a batch: ${errorMessage(err)}`);
        return;
      } finally {
        this.submittingSince = null;
      }
      this.track(submitted, { coversSeq: last.seq, oldestAt: writes[0]!.at, writes });
    }
  }

  private track(submitted: SubmittedBatch, batch: Omit<PendingBatch, "tag">): void {
    const p: PendingBatch = { tag: submitted.tag, ...batch };
    this.pending.push(p);
    submitted.acked.then(
      () => this.acked(p),
      () => this.lost(p),
    );
  }

  private acked(p: PendingBatch): void {
    const now = Date.now();
    this.forgetPending(p);
    for (const w of p.writes) this.lag.add(now - w.at);
    this.seqs.advance(p.coversSeq);
    this.ackedTag = Math.max(this.ackedTag, p.tag);
    this.scheduleFlush();
    if (this.degraded && this.caughtUp()) {
      this.degraded = false;
      this.log("Synchronous replication resumed: the standby caught up");
    }
    if (this.syncNoticeLogged && this.seqs.waiting === 0) {
      this.syncNoticeLogged = false;
      this.log("Synchronous mode: the replicator acknowledged the writes that were waiting");
    }
  }

  /**
   * The link dropped the batch (it does so when the timeline changes, and the full round that
   * follows reads everything); should it happen otherwise, a dirty round sends its writes again.
   */
  private lost(p: PendingBatch): void {
    this.forgetPending(p);
    if (this.closing || p.writes.length === 0) return;
    for (const w of p.writes) {
      this.disks[w.disk]!.dirty.mark(w.offset, w.length);
      this.droppedSince = Math.min(this.droppedSince ?? w.at, w.at);
    }
    this.dropQueue();
    this.mode = "drop";
    this.consistentFrom = Number.POSITIVE_INFINITY;
    this.wake();
  }

  private forgetPending(p: PendingBatch): void {
    const i = this.pending.indexOf(p);
    if (i >= 0) this.pending.splice(i, 1);
    for (const w of p.writes) this.disks[w.disk]!.inflight -= w.data?.length ?? 0;
  }

  /** Nothing the standby lacks: no round, nothing queued, handed over or dropped that is not acknowledged. */
  caughtUp(): boolean {
    return (
      this.mode === "queue" &&
      this.round === null &&
      this.submittingSince === null &&
      this.pending.length === 0 &&
      this.queue.length === 0
    );
  }

  private async pumpIdle(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const w of wakers) w();
  }

  private nextWake(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.wakers.push(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  // ---- the ChangeTracker lifecycle ----

  async prepare(baseline: TrackerBaseline, sink: ReplicationSink, signal: AbortSignal): Promise<void> {
    // The previous connection's run() may still be winding down a round.
    await this.running?.catch(() => undefined);
    signal.throwIfAborted();
    this.sink = sink;
    this.connected = true;
    if (this.state.syncedTimeline === baseline.timelineId && this.timelineId === baseline.timelineId) {
      // Continue: the link re-sends its spool; the queue follows it.
      this.fullRoundFor = null;
      this.held = false;
      this.kick();
      return;
    }
    // A timeline this tracker has not synced (first start, return to normal, unclean stop):
    // run() copies or compares every disk first.
    this.held = true;
    this.timelineId = baseline.timelineId;
    this.fullRoundFor = baseline;
  }

  run(sink: ReplicationSink, signal: AbortSignal): Promise<void> {
    this.sink = sink;
    // close() stops the loop too, and waits for it.
    const stop = AbortSignal.any([signal, this.closeController.signal]);
    const running = this.loop(sink, stop).finally(() => {
      this.connected = false;
    });
    this.running = running;
    return running;
  }

  private async loop(sink: ReplicationSink, signal: AbortSignal): Promise<void> {
    try {
      if (this.fullRoundFor) await this.fullRound(this.fullRoundFor, sink, signal);
      while (!signal.aborted) {
        if (this.mode === "drop" && !this.pumping) await this.dirtyRound(sink, signal);
        else await this.nextWake(signal);
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
  }

  /** Submits everything the disks hold now that the standby may lack, and waits until the queue is handed over. */
  async passNow(sink: ReplicationSink, signal: AbortSignal): Promise<void> {
    this.sink = sink;
    if (this.fullRoundFor) await this.fullRound(this.fullRoundFor, sink, signal);
    else if (this.mode === "drop") await this.dirtyRound(sink, signal);
    while (this.queue.length > 0 || this.pumping) {
      signal.throwIfAborted();
      this.kick();
      await (this.pumping ?? new Promise<void>((resolve) => setImmediate(resolve)));
    }
  }

  /** Starts a round: holds the queue behind what the round reads and sends. */
  private async startRound(
    kind: Round["kind"],
  ): Promise<{ round: Round; regions: readonly (readonly ByteRegion[])[] }> {
    this.held = true;
    await this.pumpIdle();
    // From here to the mode switch nothing awaits, so no hook runs in between: every write is
    // either before the round (in what it reads) or queued behind it.
    const startAt = Math.min(this.droppedSince ?? Date.now(), this.queue.peek()?.at ?? Date.now());
    let regions: ByteRegion[][] = [];
    if (kind === "full") {
      // The full pass reads every block: what was queued or marked so far needs nothing more.
      for (const w of this.queue.drain()) this.disks[w.disk]!.queued -= w.data?.length ?? 0;
    } else {
      regions = this.disks.map((d) => dirtyRegions(d.dirty));
    }
    for (const d of this.disks) d.dirty.clear();
    const round: Round = {
      kind,
      startSeq: this.seqs.accepted,
      startAt,
      compared: false,
    };
    this.round = round;
    this.mode = "queue";
    this.droppedSince = null;
    this.consistentFrom = Number.POSITIVE_INFINITY;
    return { round, regions };
  }

  /**
   * Everything the round read is submitted. The writes seen until now are queued (or went to
   * the dirty maps); once the standby has replayed them it holds the disks as they are now.
   */
  private async finishRound(round: Round, sink: ReplicationSink, signal: AbortSignal): Promise<void> {
    const watermark = this.seqs.accepted;
    const still = this.mode === "queue" && watermark === round.startSeq;
    const marker = await sink.submit([], still, signal);
    this.track(marker, { coversSeq: round.startSeq, oldestAt: round.startAt, writes: [] });
    if (this.mode === "queue") this.consistentFrom = watermark;
    this.round = null;
    this.held = false;
    this.kick();
  }

  /** A round that failed: everything since it started is read again by the next one. */
  private roundFailed(regions: readonly (readonly ByteRegion[])[]): void {
    for (const [i, rs] of regions.entries())
      for (const r of rs) this.disks[i]!.dirty.mark(r.offset, r.length);
    const round = this.round;
    this.round = null;
    this.dropQueue();
    if (round) this.droppedSince = Math.min(this.droppedSince ?? round.startAt, round.startAt);
    this.mode = "drop";
    this.consistentFrom = Number.POSITIVE_INFINITY;
    this.held = false;
  }

  /** Initial copy, or compare with the standby and send what differs: the scan tracker's work. */
  private async fullRound(
    baseline: TrackerBaseline,
    sink: ReplicationSink,
    signal: AbortSignal,
  ): Promise<void> {
    const { round } = await this.startRound("full");
    try {
      // Batches spooled earlier must reach the store before it hashes anything for the compare.
      const barrier = await sink.submit([], false, signal);
      await abortable(barrier.acked, signal);
      if (this.forgetScan) {
        this.scan.forget();
        this.forgetScan = false;
      }
      // The scan tracker compares hashes only when its maps do not describe the timeline: a
      // RESCAN rather than an initial copy, which is what the phase then says.
      const watched: ReplicationSink = {
        submit: (extents, consistent, s) => sink.submit(extents, consistent, s),
        compare: (disk, first, hashes, s) => {
          round.compared = true;
          return sink.compare(disk, first, hashes, s);
        },
        ...(sink.checkpoint ? { checkpoint: (tag: number) => sink.checkpoint!(tag) } : {}),
      };
      await this.scan.prepare(baseline, watched, signal);
      await this.scan.passNow(sink, signal);
      await this.finishRound(round, sink, signal);
    } catch (err) {
      this.roundFailed([]);
      throw err;
    }
    this.fullRoundFor = null;
    // From here the queue is the whole story: the scan maps will not follow it, so they must
    // not be trusted again (by us after a crash, or by a later --tracker scan).
    this.scan.forget();
    this.state = { ...this.state, syncedTimeline: baseline.timelineId };
    await this.scan.flush();
    await saveInterceptState(this.opts.stateDir, running(this.state));
    this.log(
      round.compared
        ? `Compared the disks with timeline ${baseline.timelineId} and sent the differences; replicating every write`
        : `Initial copy to timeline ${baseline.timelineId} submitted; replicating every write`,
    );
  }

  /** RESCAN of the dirty regions only. */
  private async dirtyRound(sink: ReplicationSink, signal: AbortSignal): Promise<void> {
    const { round, regions } = await this.startRound("dirty");
    const total = regions.reduce((n, rs) => n + regionBytes(rs), 0);
    this.log(`RESCAN of ${total} bytes in dirty regions`);
    try {
      for (const [i, rs] of regions.entries()) {
        const d = this.disks[i]!;
        await sendRegions({
          fh: d.fh,
          disk: i,
          regions: rs,
          sink,
          signal,
          batchBytes: this.batchBytes,
          onRead: (n) => (d.rescanned += n),
        });
      }
      await this.finishRound(round, sink, signal);
    } catch (err) {
      this.roundFailed(regions);
      throw err;
    }
  }

  // ---- synchronous mode ----

  private watchSync(): void {
    if (!this.waitsForStandby) return;
    const since = this.seqs.oldestWaitSince();
    if (since === null) return;
    const waited = Date.now() - since;
    const timeout = this.opts.syncTimeoutMs;
    if (timeout !== undefined && waited >= timeout) {
      this.degraded = true;
      const n = this.seqs.releaseAll();
      this.log(
        `Synchronous mode: ${n} writes waited ${Math.round(waited / 1000)} s for the replicator (--sync-timeout): ` +
          "acknowledging them now and replicating asynchronously until the standby catches up",
      );
      return;
    }
    if (waited >= SYNC_WAIT_NOTICE_MS && !this.syncNoticeLogged) {
      this.syncNoticeLogged = true;
      this.log(
        `Synchronous mode: ${this.seqs.waiting} writes have waited ${Math.round(waited / 1000)} s for the replicator` +
          `${this.connected ? "" : " (not connected)"}; they complete when it acknowledges them ` +
          "(pass --sync-timeout to fall back to asynchronous replication instead)",
      );
    }
  }

  // ---- reporting ----

  progress(): TrackerProgress {
    const scan = this.scan.progress();
    const round = this.round;
    const synced = this.synced();
    const fullRound = this.fullRoundFor !== null || round?.kind === "full";
    let phase: TrackerProgress["phase"];
    if (this.sink === null) phase = "idle";
    else if (fullRound) phase = scan.phase === "compare" || round?.compared ? "compare" : "initial";
    else if (round?.kind === "dirty") phase = "compare";
    else if (this.mode === "drop") phase = "backlog";
    else phase = "continuous";
    const disks: TrackerDiskProgress[] = this.disks.map((d, i) => {
      const s = scan.disks[i];
      const dirty = Math.min(d.spec.sizeBytes, d.dirty.dirtyBlocks * d.dirty.granularity);
      return {
        totalBytes: d.spec.sizeBytes,
        replicatedBytes: synced ? d.spec.sizeBytes : fullRound ? (s?.replicatedBytes ?? 0) : 0,
        backlogBytes: d.queued + d.inflight + dirty + (s?.backlogBytes ?? 0),
        rescannedBytes: (s?.rescannedBytes ?? 0) + d.rescanned,
        nbdUri: d.uri,
      };
    });
    const note = this.note();
    return {
      disks,
      durableAsOf: synced ? this.durableAsOf() : null,
      changingSince: null,
      phase,
      ...(note === undefined ? {} : { note }),
    };
  }

  /** The standby holds the disks as they were just before the oldest write not durable there. */
  private durableAsOf(): number {
    const now = Date.now();
    if (this.caughtUp()) return now;
    return Math.min(
      now,
      this.submittingSince ?? now,
      this.pending.reduce((m, p) => Math.min(m, p.oldestAt), now),
      this.queue.peek()?.at ?? now,
      this.droppedSince ?? now,
      this.round?.startAt ?? now,
    );
  }

  private note(): string | undefined {
    if (this.degraded)
      return "Synchronous replication degraded to asynchronous after --sync-timeout; it resumes once the standby caught up";
    const since = this.waitsForStandby ? this.seqs.oldestWaitSince() : null;
    if (since !== null && Date.now() - since >= SYNC_WAIT_NOTICE_MS)
      return `Synchronous mode: ${this.seqs.waiting} writes wait for the replicator since ${new Date(since).toISOString()}`;
    return undefined;
  }

  absorb(batch: Batch, timelineId: string): void {
    // Before the initial copy finished only the scan pass submitted data: its maps record it.
    if (this.state.syncedTimeline !== timelineId) this.scan.absorb(batch, timelineId);
    this.ackedTag = Math.max(this.ackedTag, batch.tag);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.closing) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush().catch((err: unknown) => this.log(`Saving the tracker state failed: ${errorMessage(err)}`));
    }, 1000);
    this.flushTimer.unref();
  }

  async flush(): Promise<void> {
    const upTo = this.ackedTag;
    await this.scan.flush();
    if (upTo > this.checkpointedTag && this.sink?.checkpoint) {
      await this.sink.checkpoint(upTo);
      this.checkpointedTag = upTo;
    }
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.timer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    // Parked synchronous writes were not made durable at the standby: their clients get EIO.
    this.seqs.failAll(new Error("The agent is stopping: write not replicated"));
    this.lingering?.();
    await this.server?.close();
    this.closeController.abort();
    this.wake();
    await this.running?.catch(() => undefined);
    await this.pumpIdle();
    // What never reached the spool is kept as dirty regions for the next start.
    this.dropQueue();
    await this.flush().catch(() => undefined);
    await this.scan.close();
    const dirty = this.disks.map((d) => dirtyRegions(d.dirty));
    for (const d of this.disks) {
      await d.backend.close();
      await d.fh.close();
    }
    const diskStamps = await Promise.all(this.disks.map((d) => diskStamp(d.spec.path)));
    await saveInterceptState(this.opts.stateDir, { ...this.state, clean: true, dirty, diskStamps });
  }
}

/** The state while the agent runs: a crash from here on must not be taken for a clean stop. */
function running(state: InterceptState): InterceptState {
  return { clean: false, syncedTimeline: state.syncedTimeline, dirty: [] };
}

/** Resolves with `p`, or rejects when `signal` aborts first. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error("Aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
