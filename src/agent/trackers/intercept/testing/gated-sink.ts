/**
 * A ReplicationSink for tests that behaves as the agent's replication link does, over a
 * real staging timeline: `submit` resolves once the batch is "spooled" (waiting while
 * `spoolBytes` of batches are unacknowledged), and batches reach the timeline in order.
 * Closing the gate stands for a replicator that is away: batches stay spooled, no ack comes.
 */
import type { WireExtent } from "../../../../wire/frames.js";
import type { ReplicationSink, SubmittedBatch } from "../../change-tracker.js";

interface Held {
  readonly tag: number;
  readonly extents: readonly WireExtent[];
  readonly consistent: boolean;
  readonly bytes: number;
  resolve(): void;
  reject(err: Error): void;
}

export class GatedSink implements ReplicationSink {
  private tag = 0;
  private used = 0;
  private held: Held[] = [];
  private spaceWaiters: (() => void)[] = [];
  private forwarding = false;
  private open = true;
  /** Data bytes submitted, all batches together. */
  dataBytes = 0;
  /** Batches submitted, empty ones included. */
  batches = 0;
  readonly timelineId: string;

  constructor(
    private readonly inner: ReplicationSink,
    timelineId: string,
    private readonly spoolBytes = Number.MAX_SAFE_INTEGER,
  ) {
    this.timelineId = timelineId;
  }

  /** Opens or closes the gate (closed: nothing reaches the timeline, nothing is acknowledged). */
  setOpen(open: boolean): void {
    this.open = open;
    if (open) this.forward();
  }

  async submit(
    extents: readonly WireExtent[],
    consistent: boolean,
    signal?: AbortSignal,
  ): Promise<SubmittedBatch> {
    let bytes = 64;
    for (const e of extents) if (e.kind === "data") bytes += e.length;
    while (this.used > 0 && this.used + bytes > this.spoolBytes) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.spaceWaiters.push(resolve);
        signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    }
    signal?.throwIfAborted();
    // The caller's buffers may be reused once submit resolves (the link has spooled a copy).
    const copy = extents.map((e) => (e.kind === "data" ? { ...e, data: Buffer.from(e.data) } : e));
    this.used += bytes;
    this.dataBytes += bytes - 64;
    this.batches++;
    const tag = ++this.tag;
    const acked = new Promise<void>((resolve, reject) =>
      this.held.push({ tag, extents: copy, consistent, bytes, resolve, reject }),
    );
    acked.catch(() => undefined);
    this.forward();
    return { tag, acked };
  }

  compare(
    disk: number,
    firstChunk: number,
    hashes: BigUint64Array,
    signal?: AbortSignal,
  ): Promise<boolean[]> {
    return this.inner.compare(disk, firstChunk, hashes, signal);
  }

  private forward(): void {
    if (this.forwarding || !this.open) return;
    this.forwarding = true;
    void (async () => {
      while (this.open && this.held.length > 0) {
        const h = this.held.shift()!;
        const done = (): void => {
          this.used -= h.bytes;
          const waiters = this.spaceWaiters;
          this.spaceWaiters = [];
          for (const w of waiters) w();
        };
        try {
          // In order into the timeline; acknowledged as the timeline makes each durable.
          const inner = await this.inner.submit(h.extents, h.consistent);
          inner.acked.then(
            () => {
              done();
              h.resolve();
            },
            (err: unknown) => {
              done();
              h.reject(err instanceof Error ? err : new Error(String(err)));
            },
          );
        } catch (err) {
          done();
          h.reject(err instanceof Error ? err : new Error(String(err)));
        }
      }
      this.forwarding = false;
      if (this.open && this.held.length > 0) this.forward();
    })();
  }
}
