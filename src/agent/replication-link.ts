/**
 * The agent's end of the replication stream (docs/wire-protocol.md): one mutual-TLS
 * connection at a time to the replicator, HELLO/WELCOME, re-sending the spool after every
 * (re)connect, a window of unacknowledged bytes, and ACKs that release spooled batches in
 * order. It is the ReplicationSink the tracker writes to; while disconnected, batches
 * still go into the spool (bounded) and are sent after the next connect. A connection that
 * makes no progress (no ACK, no batch written to the socket) for `ackTimeoutMs` while
 * batches are in flight is dropped and made again: a stalled path never fails by itself,
 * since TCP keeps it open.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { ProtocolError } from "../common/errors.js";
import { batchWireBytes } from "../wire/codec.js";
import type { FrameSocket } from "../wire/frame-socket.js";
import {
  CHUNK_SIZE,
  FrameType,
  type Batch,
  type Frame,
  type Welcome,
  type WireExtent,
} from "../wire/frames.js";
import type { ReplicationSink, SubmittedBatch } from "./trackers/change-tracker.js";
import { RateLimiter } from "./rate-limiter.js";
import { dialReplicator, type DialOptions } from "./dial-replicator.js";
import { RateMeter } from "./rate-meter.js";
import { Spool } from "./spool.js";

export interface ReplicationLinkOptions extends DialOptions {
  readonly spoolDir: string;
  readonly spoolLimitBytes: number;
  /**
   * The tracker cannot find unacknowledged writes again (intercept): spool files are
   * fsync'd and re-sent after a restart. Default false (scan): after a restart they are
   * dropped, and the tracker's next pass sends those chunks as they are now.
   */
  readonly durableSpool?: boolean;
  /** Drop a connection that acknowledges nothing for this long with batches in flight; default 60 s. */
  readonly ackTimeoutMs?: number;
}

export const DEFAULT_ACK_TIMEOUT_MS = 60_000;

interface Deferred {
  resolve(): void;
  reject(err: Error): void;
}

export class ReplicationLink implements ReplicationSink {
  private conn: FrameSocket | null = null;
  private spool: Spool | null = null;
  private nextTag = 0;
  private readonly waiters = new Map<number, Deferred>();
  private queue: Batch[] = [];
  private inflightBytes = 0;
  private inflight: { tag: number; bytes: number }[] = [];
  private windowBytes = 64 * 1024 * 1024;
  private compareWaiters: { resolve(d: boolean[]): void; reject(e: Error): void }[] = [];
  private closedWaiters: ((err: Error) => void)[] = [];
  private lastError: Error | null = null;
  /** Bytes put on the wire, all connections together. */
  bytesSent = 0;
  /** Wire bytes of the batches acknowledged, all connections together. */
  ackedBytes = 0;
  /** The newest acknowledged tag. */
  ackedTag = 0;
  /** Recent acknowledged bytes per second: what really reaches the standby. */
  readonly ackRate = new RateMeter(10_000);
  /** Called on every ACK (after the spool let go of what it acknowledges). */
  onAck: ((tag: number) => void) | null = null;
  /** The newest tag spooled before the current connection: re-sending until it is acknowledged. */
  private resendUpTo = 0;
  /** The last sign of progress with batches in flight: an ACK, or a batch written to the socket. */
  private waitingSince = 0;
  private ackTimer: NodeJS.Timeout | null = null;
  /**
   * Called for an acknowledged batch that no live `submit` is waiting for: one restored
   * from the spool after a restart. The tracker records it as replicated.
   */
  onRestoredAck: ((batch: Batch, timelineId: string) => void) | null = null;
  log: ((message: string) => void) | null = null;
  /** The timeline of the last WELCOME (and of the spool). */
  timelineId = "";

  constructor(private readonly opts: ReplicationLinkOptions) {}

  get connected(): boolean {
    return this.conn !== null && !this.conn.closed;
  }

  /** Bytes spooled or in flight and not yet acknowledged. */
  get unackedBytes(): number {
    return this.spool?.usedBytes ?? 0;
  }

  /** Batches spooled before this connection are still being re-sent. */
  get resending(): boolean {
    return this.connected && this.ackedTag < this.resendUpTo;
  }

  /** Milliseconds the link has waited for an ACK with batches in flight (0 when none are in flight). */
  waitingForAckMs(now = Date.now()): number {
    return this.connected && this.inflight.length > 0 ? now - this.waitingSince : 0;
  }

  /** Connects, says HELLO, resumes the spool. Rejects on refusal (PeerError) or network error. */
  async connect(signal: AbortSignal): Promise<Welcome> {
    const { socket: conn, frames, welcome } = await dialReplicator(this.opts, signal);
    this.conn = conn;
    this.lastError = null;
    this.windowBytes = Math.max(CHUNK_SIZE, welcome.windowBytes);
    await this.resume(welcome);
    void this.readLoop(conn, frames);
    this.watchAcks(conn);
    this.pump();
    return welcome;
  }

  /** Drops `conn` when batches wait longer than the ACK timeout. */
  private watchAcks(conn: FrameSocket): void {
    if (this.ackTimer) clearInterval(this.ackTimer);
    const timeout = this.opts.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    this.ackTimer = setInterval(
      () => {
        if (this.conn !== conn) return;
        const waited = this.waitingForAckMs();
        if (waited > timeout)
          this.disconnect(
            `No acknowledgement from the replicator for ${Math.round(waited / 1000)} s with ${this.inflight.length} batches in flight`,
          );
      },
      Math.min(1000, Math.max(50, timeout / 4)),
    );
    this.ackTimer.unref();
  }

  /** Resolves with the error when the current connection ends. */
  closed(): Promise<Error> {
    if (!this.connected) return Promise.resolve(this.lastError ?? new Error("not connected"));
    return new Promise((resolve) => this.closedWaiters.push(resolve));
  }

  /** Drops the connection (the next connect starts over). */
  disconnect(reason: string): void {
    const conn = this.conn;
    if (!conn) return;
    conn.close();
    this.onClosed(new Error(reason));
  }

  private async resume(welcome: Welcome): Promise<void> {
    let restored = false;
    if (this.spool === null || this.timelineId !== welcome.timelineId) {
      // A new timeline (first connect, or return to normal): batches for another timeline no longer apply.
      for (const w of this.waiters.values()) w.reject(new Error(`Timeline changed to ${welcome.timelineId}`));
      this.waiters.clear();
      if (this.spool) {
        await this.spool.clear();
        await rm(join(this.opts.spoolDir, this.timelineId), { recursive: true, force: true });
      }
      this.spool = await Spool.open(
        join(this.opts.spoolDir, welcome.timelineId),
        this.opts.spoolLimitBytes,
        this.opts.durableSpool ?? false,
      );
      this.timelineId = welcome.timelineId;
      restored = true;
    }
    const acked = welcome.lastTag ?? 0;
    this.nextTag = Math.max(this.nextTag, acked + 1, this.spool.maxTag() + 1);
    this.ackedTag = Math.max(this.ackedTag, acked);
    this.release(acked);
    if (restored && !(this.opts.durableSpool ?? false)) {
      // Left by an earlier process: what it never had acknowledged, the tracker finds again.
      const dropped = await this.spool.dropUnacknowledged();
      if (dropped > 0)
        this.log?.(
          `Dropped ${dropped} spooled batches after tag ${acked}: the next scan sends what they held`,
        );
    }
    this.queue = this.spool.list();
    this.resendUpTo = this.queue.at(-1)?.tag ?? 0;
    if (this.queue.length > 0)
      this.log?.(`Resuming after tag ${acked}: re-sending ${this.queue.length} spooled batches`);
    this.inflight = [];
    this.inflightBytes = 0;
  }

  private release(tag: number): void {
    if (!this.spool) return;
    for (const b of this.spool.release(tag)) {
      const waiter = this.waiters.get(b.tag);
      if (waiter) waiter.resolve();
      else this.onRestoredAck?.(b, this.timelineId);
      this.waiters.delete(b.tag);
    }
  }

  /** The tracker's record of every batch up to `tag` is durable: their spool files may go. */
  async checkpoint(tag: number): Promise<void> {
    await this.spool?.prune(tag);
  }

  private async readLoop(conn: FrameSocket, frames: AsyncGenerator<Frame>): Promise<void> {
    let failure: Error = new Error("Replicator closed the connection");
    try {
      for await (const frame of frames) {
        if (frame.type === FrameType.ACK) {
          while (this.inflight.length > 0 && this.inflight[0]!.tag <= frame.body.tag) {
            const done = this.inflight.shift()!;
            this.inflightBytes -= done.bytes;
            this.ackedBytes += done.bytes;
          }
          this.ackRate.record(this.ackedBytes);
          this.ackedTag = Math.max(this.ackedTag, frame.body.tag);
          this.waitingSince = Date.now();
          this.release(frame.body.tag);
          this.onAck?.(frame.body.tag);
          this.pump();
        } else if (frame.type === FrameType.HASH_DIFF) {
          const w = this.compareWaiters.shift();
          if (!w) throw new ProtocolError("HASH_DIFF without a pending HASHES");
          w.resolve([...frame.body.differs]);
        } else {
          throw new ProtocolError(`Unexpected frame type ${frame.type} from replicator`);
        }
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      if (err instanceof ProtocolError) conn.fail("PROTOCOL", err.message);
    }
    conn.close();
    if (this.conn === conn) this.onClosed(failure);
  }

  private onClosed(err: Error): void {
    this.conn = null;
    if (this.ackTimer) clearInterval(this.ackTimer);
    this.ackTimer = null;
    this.lastError = err;
    for (const w of this.compareWaiters) w.reject(err);
    this.compareWaiters = [];
    const waiters = this.closedWaiters;
    this.closedWaiters = [];
    for (const w of waiters) w(err);
  }

  private pumping = false;
  /** The project's bandwidth limit (the console says it in every status answer). */
  readonly limiter = new RateLimiter();

  /** Sends queued batches while the window allows, one write after another (socket backpressure). */
  private pump(): void {
    if (this.pumping) return;
    const conn = this.conn;
    if (!conn || conn.closed) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.conn === conn && !conn.closed && this.queue.length > 0) {
          if (this.inflightBytes >= this.windowBytes && this.inflight.length > 0) break;
          const batch = this.queue.shift()!;
          const bytes = batchWireBytes(batch);
          if (this.inflight.length === 0) {
            this.waitingSince = Date.now();
            // Idle until now: the rate counts from here, not from the last ACK before the pause.
            this.ackRate.restart(this.ackedBytes);
          }
          this.inflight.push({ tag: batch.tag, bytes });
          this.inflightBytes += bytes;
          // The frame goes out in slices, each when the bandwidth limit allows and the socket
          // has taken the one before: the limit holds at a fine grain, and bytesSent follows
          // what leaves rather than jumping a whole batch at a time.
          const pace = async (n: number): Promise<void> => {
            await this.limiter.take(n);
            this.bytesSent += n;
            // Waiting on our own bandwidth limit is not waiting on the replicator.
            this.waitingSince = Date.now();
          };
          await conn.send({ type: FrameType.BATCH, body: batch }, pace);
          this.waitingSince = Date.now();
        }
      } catch (err) {
        this.disconnect(err instanceof Error ? err.message : String(err));
      } finally {
        this.pumping = false;
      }
      // An ACK or a submit may have come while this loop was finishing.
      if (this.conn === conn && this.queue.length > 0 && this.inflightBytes < this.windowBytes) this.pump();
    })();
  }

  async submit(
    extents: readonly WireExtent[],
    consistent: boolean,
    signal?: AbortSignal,
  ): Promise<SubmittedBatch> {
    if (!this.spool || this.nextTag === 0) throw new Error("Replication link never connected");
    const batch: Batch = { tag: this.nextTag++, consistent, extents };
    const spool = this.spool;
    await spool.add(batch, signal);
    // A reconnect to another timeline while this batch waited for spool space: it was meant
    // for the old timeline (whose spool is gone), so it must not be sent to the new one.
    if (this.spool !== spool)
      throw new Error(`Batch ${batch.tag} was not sent: the timeline changed to ${this.timelineId}`);
    const acked = new Promise<void>((resolve, reject) => this.waiters.set(batch.tag, { resolve, reject }));
    acked.catch(() => undefined);
    this.queue.push(batch);
    this.pump();
    return { tag: batch.tag, acked };
  }

  async compare(disk: number, firstChunk: number, hashes: BigUint64Array): Promise<boolean[]> {
    const conn = this.conn;
    if (!conn) throw new Error("Not connected to the replicator");
    const result = new Promise<boolean[]>((resolve, reject) => this.compareWaiters.push({ resolve, reject }));
    const bytes = 15 + hashes.length * 8;
    this.bytesSent += bytes;
    await conn.send({ type: FrameType.HASHES, body: { disk, firstChunk, hashes } });
    return result;
  }
}
