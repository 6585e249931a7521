/**
 * The intercept tracker's clock of writes: every write the hook sees gets the next number
 * (`accepted`), and `durable` is the newest number such that this write and every earlier
 * one are durable at the standby. Synchronous mode parks each write on `wait(seq)`; the NBD
 * reply goes out when `durable` reaches it.
 */
const RESOLVED: Promise<void> = Promise.resolve();

interface Waiter {
  readonly seq: number;
  readonly since: number;
  resolve(): void;
  reject(err: Error): void;
}

export class DurableSeq {
  private acceptedSeq = 0;
  private durableSeq = 0;
  /** In seq order: `wait` is called with increasing numbers. */
  private waiters: Waiter[] = [];
  private head = 0;

  get accepted(): number {
    return this.acceptedSeq;
  }

  get durable(): number {
    return this.durableSeq;
  }

  /** Numbers the next write. */
  next(): number {
    return ++this.acceptedSeq;
  }

  /** Resolves once write `seq` (and every earlier one) is durable at the standby. */
  wait(seq: number): Promise<void> {
    if (seq <= this.durableSeq) return RESOLVED;
    return new Promise<void>((resolve, reject) =>
      this.waiters.push({ seq, since: Date.now(), resolve, reject }),
    );
  }

  /** Every write up to `seq` is durable now. */
  advance(seq: number): void {
    if (seq <= this.durableSeq) return;
    this.durableSeq = Math.min(seq, this.acceptedSeq);
    while (this.head < this.waiters.length && this.waiters[this.head]!.seq <= this.durableSeq)
      this.waiters[this.head++]!.resolve();
    this.compact();
  }

  /** Number of writes parked in `wait`. */
  get waiting(): number {
    return this.waiters.length - this.head;
  }

  /** When the oldest parked write started waiting (ms since epoch), or null. */
  oldestWaitSince(): number | null {
    return this.waiters[this.head]?.since ?? null;
  }

  /** Lets every parked write go without durability (synchronous mode gave up waiting). */
  releaseAll(): number {
    const n = this.waiting;
    for (let i = this.head; i < this.waiters.length; i++) this.waiters[i]!.resolve();
    this.waiters = [];
    this.head = 0;
    return n;
  }

  /** Fails every parked write (the agent is stopping). */
  failAll(err: Error): void {
    for (let i = this.head; i < this.waiters.length; i++) this.waiters[i]!.reject(err);
    this.waiters = [];
    this.head = 0;
  }

  private compact(): void {
    if (this.head === this.waiters.length) {
      this.waiters = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.head);
      this.head = 0;
    }
  }
}
