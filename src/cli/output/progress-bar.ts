/**
 * A progress display for long operations. On a TTY it redraws one line (bar, percent,
 * ETA); elsewhere (logs, CI, pipes) it prints a plain line at most every few seconds,
 * and always the final one, so logs stay readable.
 */
import type { OutputStream } from "../command.js";
import { formatDuration } from "./format.js";

export interface ProgressBarOptions {
  readonly width?: number;
  /** Non-TTY: minimum time between lines (default 5000 ms). */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

export class ProgressBar {
  readonly #out: OutputStream;
  readonly #width: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #lastLineAt = Number.NEGATIVE_INFINITY;
  #lastText = "";
  #drawn = false;

  constructor(out: OutputStream, options: ProgressBarOptions = {}) {
    this.#out = out;
    this.#width = options.width ?? 30;
    this.#intervalMs = options.intervalMs ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  /** The line for a state, without control characters. */
  render(percent: number, etaSeconds: number | null, label: string): string {
    const p = Math.max(0, Math.min(100, percent));
    const filled = Math.round((p / 100) * this.#width);
    const bar = `[${"#".repeat(filled)}${"-".repeat(this.#width - filled)}]`;
    const eta = etaSeconds === null ? "" : ` ETA ${formatDuration(etaSeconds)}`;
    return `${bar} ${String(Math.floor(p)).padStart(3)}%${eta}${label === "" ? "" : `  ${label}`}`;
  }

  update(percent: number, etaSeconds: number | null = null, label = ""): void {
    const text = this.render(percent, etaSeconds, label);
    if (this.#out.isTTY === true) {
      this.#out.write(`\r\x1b[2K${text}`);
      this.#drawn = true;
      return;
    }
    const now = this.#now();
    if (text !== this.#lastText && (now - this.#lastLineAt >= this.#intervalMs || percent >= 100)) {
      this.#out.write(`${text}\n`);
      this.#lastLineAt = now;
      this.#lastText = text;
    }
  }

  /** Ends the display: on a TTY, moves past the redrawn line. */
  done(): void {
    if (this.#drawn) this.#out.write("\n");
    this.#drawn = false;
  }
}
