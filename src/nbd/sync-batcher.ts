/**
 * Group commit for fdatasync: many FUA writes and flushes in flight share syncs. A caller
 * needs a sync that *starts* after it called `sync()` (its write completed before), so one
 * that is already running is not enough: callers arriving while a sync runs all share the
 * next one, started as soon as the running one ends. At most two syncs exist at a time.
 */
export class SyncBatcher {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly syncNow: () => Promise<void>) {}

  /** Resolves once a sync that started after this call has completed. */
  sync(): Promise<void> {
    if (this.next) return this.next;
    if (!this.running) return this.start();
    const next = this.running
      .catch(() => undefined)
      .then(() => {
        this.next = null;
        return this.start();
      });
    this.next = next;
    return next;
  }

  /** Resolves when no sync is running or queued (errors are the callers'). */
  async idle(): Promise<void> {
    while (this.next ?? this.running) await (this.next ?? this.running)!.catch(() => undefined);
  }

  private start(): Promise<void> {
    const p: Promise<void> = this.syncNow().finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }
}
