/**
 * Cuts PITs on a timeline at consistent points, at most one per `minIntervalMs`: a
 * consistent seq offered too soon after the last PIT waits, and a newer one replaces it.
 * Idle timelines get no PITs. Offer only seqs that are already durable.
 */
import type { Pit, Timeline } from "../store/staging-store.js";

export class PitCutter {
  private lastCut = 0;
  private pending: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly timeline: Timeline,
    private readonly onCut: (pit: Pit) => void,
    private readonly minIntervalMs = 1000,
  ) {
    this.lastCut = timeline.pits().at(-1)?.time ?? 0;
  }

  offer(seq: number): void {
    const wait = this.lastCut + this.minIntervalMs - Date.now();
    if (wait <= 0 && this.timer === null) {
      this.cut(seq);
      return;
    }
    this.pending = seq;
    this.timer ??= setTimeout(
      () => {
        this.timer = null;
        const s = this.pending;
        this.pending = null;
        if (s !== null) this.cut(s);
      },
      Math.max(0, wait),
    );
  }

  private cut(seq: number): void {
    this.lastCut = Date.now();
    this.chain = this.chain
      .then(async () => {
        const last = this.timeline.pits().at(-1);
        if (last && last.seq >= seq) return;
        this.onCut(await this.timeline.cutPit(seq));
      })
      .catch((err: unknown) => {
        console.error(`Cutting a PIT at seq ${seq} of ${this.timeline.info.id} failed:`, err);
      });
  }

  /** Cuts any pending PIT now and waits for it. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending !== null) this.cut(this.pending);
    this.pending = null;
    await this.chain;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
