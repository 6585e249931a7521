/**
 * The recent rate of a growing counter (bytes acknowledged, bytes read), for ETAs. Record
 * the counter's value now and then; `rate` is its growth per second over the samples of the
 * last `windowMs`, and falls to 0 when the counter stops growing for that long.
 */
export class RateMeter {
  private samples: { t: number; v: number }[] = [];

  constructor(private readonly windowMs = 5000) {}

  /** Records the counter's value at `now`; a value below the last one starts the meter over. */
  record(value: number, now = Date.now()): void {
    const last = this.samples.at(-1);
    if (last && value < last.v) this.samples = [];
    this.samples.push({ t: now, v: value });
    this.samples = this.samples.filter((s) => s.t >= now - this.windowMs);
  }

  /** Forgets the samples and starts from `value` (the counter was idle: measure from now). */
  restart(value: number, now = Date.now()): void {
    this.samples = [{ t: now, v: value }];
  }

  /** Growth per second from the oldest sample of the window to now; 0 before two samples. */
  rate(now = Date.now()): number {
    const inWindow = this.samples.filter((s) => s.t >= now - this.windowMs);
    const first = inWindow[0];
    const last = inWindow.at(-1);
    if (!first || !last || last === first) return 0;
    const seconds = (Math.max(now, last.t) - first.t) / 1000;
    return seconds > 0 ? (last.v - first.v) / seconds : 0;
  }
}
