/**
 * The agent's end of the replication stream (docs/wire-protocol.md): one mutual-TLS
 * connection at a time to the replicator, HELLO/WELCOME, re-sending the spool after every
 * (re)connect, a window of unacknowledged bytes, and ACKs that release spooled batches in
 * order. It is the ReplicationSink the tracker writes to; while disconnected, batches
 * still go into the spool (bounded) and are sent after the next connect.
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
import { Spool } from "./spool.js";

export interface ReplicationLinkOptions extends DialOptions {
  readonly spoolDir: string;
  readonly spoolLimitBytes: number;
  /** fsync each spooled batch before `submit` resolves (the tracker's `durableSpool`). */
  readonly spoolDurable?: boolean;
}

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

  /** Connects, says HELLO, resumes the spool. Rejects on refusal (PeerError) or network error. */
  async connect(signal: AbortSignal): Promise<Welcome> {
    const { socket: conn, frames, welcome } = await dialReplicator(this.opts, signal);
    this.conn = conn;
    this.lastError = null;
    this.windowBytes = Math.max(CHUNK_SIZE, welcome.windowBytes);
    await this.resume(welcome);
    void this.readLoop(conn, frames);
    this.pump();
    return welcome;
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
        this.opts.spoolDurable ?? false,
      );
      this.timelineId = welcome.timelineId;
    }
    const acked = welcome.lastTag ?? 0;
    this.nextTag = Math.max(this.nextTag, acked + 1, this.spool.maxTag() + 1);
    this.release(acked);
    this.queue = this.spool.list();
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
            this.inflightBytes -= this.inflight.shift()!.bytes;
          }
          this.release(frame.body.tag);
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
          this.inflight.push({ tag: batch.tag, bytes });
          this.inflightBytes += bytes;
          await this.limiter.take(bytes);
          this.bytesSent += bytes;
          await conn.send({ type: FrameType.BATCH, body: batch });
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
