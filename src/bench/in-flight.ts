/**
 * A window of concurrent operations, the way an agent keeps several batches unacknowledged:
 * `add` waits while the window is full, `drain` waits for all. The first failure is kept and
 * rethrown by the next `add` or `drain`, so a failed append stops the feed instead of being lost.
 */
export class InFlight {
  private readonly running = new Set<Promise<void>>();
  private failure: { readonly error: unknown } | undefined;

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`In-flight limit ${limit} is not >= 1`);
  }

  /** Starts tracking `task`; resolves once there is room for another. */
  async add(task: Promise<unknown>): Promise<void> {
    this.throwIfFailed();
    const tracked: Promise<void> = task.then(
      () => {
        this.running.delete(tracked);
      },
      (error: unknown) => {
        this.running.delete(tracked);
        this.failure ??= { error };
      },
    );
    this.running.add(tracked);
    while (this.running.size >= this.limit) await Promise.race(this.running);
    this.throwIfFailed();
  }

  /** Resolves when every task has settled; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }
}
