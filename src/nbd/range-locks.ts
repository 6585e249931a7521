/**
 * Serializes overlapping changes to one export (across all its connections) in arrival
 * order, so that the disk and a write hook see overlapping writes in the same order.
 * Non-overlapping changes run side by side. The list is short (bounded by the in-flight
 * limit of each connection), so a linear scan is cheaper than a tree, and the common case
 * (nothing overlaps) makes no promise.
 */
export interface RangeLock {
  readonly start: number;
  readonly end: number;
  waiters: (() => void)[] | null;
}

export class RangeLocks {
  private held: RangeLock[] = [];

  /**
   * Takes `[offset, offset+length)`: returns the lock at once when nothing overlaps, else
   * a promise that resolves once every earlier overlapping lock is released. The lock is
   * registered at once, so later arrivals queue behind it.
   */
  acquire(offset: number, length: number): RangeLock | Promise<RangeLock> {
    const lock: RangeLock = { start: offset, end: offset + Math.max(length, 1), waiters: null };
    let blockers = 0;
    for (const h of this.held) if (h.start < lock.end && lock.start < h.end) blockers++;
    if (blockers === 0) {
      this.held.push(lock);
      return lock;
    }
    const waiting = new Promise<RangeLock>((resolve) => {
      let pending = blockers;
      const one = (): void => {
        if (--pending === 0) resolve(lock);
      };
      for (const h of this.held) if (h.start < lock.end && lock.start < h.end) (h.waiters ??= []).push(one);
    });
    this.held.push(lock);
    return waiting;
  }

  release(lock: RangeLock): void {
    const i = this.held.indexOf(lock);
    if (i >= 0) this.held.splice(i, 1);
    if (lock.waiters) for (const w of lock.waiters) w();
    lock.waiters = null;
  }

  get size(): number {
    return this.held.length;
  }
}
