/**
 * One progress line on stderr for a long bench phase: on a terminal it is redrawn at most
 * four times a second (done, total, percent, rate); elsewhere it stays silent, so logs and
 * the smoke test get only the phase headings the suite prints.
 */
import { formatBytes } from "../cli/output/format.js";

export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

const REDRAW_MS = 250;

export class ProgressLine {
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit: "bytes" | "items" = "bytes",
    private readonly out: ProgressStream = process.stderr,
  ) {}

  update(done: number): void {
    if (this.out.isTTY !== true) return;
    const now = Date.now();
    if (now - this.lastDraw < REDRAW_MS && done < this.total) return;
    this.lastDraw = now;
    this.out.write(`\r\x1b[2K${this.render(done, now)}`);
    this.drawn = true;
  }

  render(done: number, now = Date.now()): string {
    const seconds = Math.max((now - this.started) / 1000, 1e-3);
    const percent = this.total > 0 ? Math.floor((100 * done) / this.total) : 100;
    const amount =
      this.unit === "bytes"
        ? `${formatBytes(done)} / ${formatBytes(this.total)}, ${(done / seconds / 1e6).toFixed(0)} MB/s`
        : `${done} / ${this.total}, ${(done / seconds).toFixed(0)}/s`;
    return `  ${this.label}: ${percent}% (${amount})`;
  }

  /** Clears the line so the next output starts clean. */
  done(): void {
    if (this.drawn) this.out.write("\r\x1b[2K");
    this.drawn = false;
  }
}
