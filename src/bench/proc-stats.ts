/**
 * What Linux says a process cost: peak resident set (VmHWM in /proc/PID/status) and bytes
 * it caused to be written to storage (write_bytes less cancelled_write_bytes in
 * /proc/PID/io; Linux charges a write when the page is dirtied, so writes a background
 * flusher performs later still count for the process that made them, and a reaped
 * child's counts are added to its parent's).
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

export interface IoCounters {
  readonly readBytes: number;
  readonly writeBytes: number;
  readonly cancelledWriteBytes: number;
}

export type Pid = number | "self";

export function parseIo(text: string): IoCounters {
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s*(\\d+)`, "m").exec(text);
    if (match === null) throw new Error(`No ${name} in /proc io counters: ${text.slice(0, 200)}`);
    return Number(match[1]);
  };
  return {
    readBytes: field("read_bytes"),
    writeBytes: field("write_bytes"),
    cancelledWriteBytes: field("cancelled_write_bytes"),
  };
}

export function readIo(pid: Pid = "self"): IoCounters {
  return parseIo(readFileSync(`/proc/${pid}/io`, "utf8"));
}

/** Bytes written to storage between two readings (cancelled writes never reached the disk). */
export function writtenBetween(before: IoCounters, after: IoCounters): number {
  return after.writeBytes - before.writeBytes - (after.cancelledWriteBytes - before.cancelledWriteBytes);
}

/** Peak resident set in bytes from a /proc/PID/status text; undefined when it has none. */
export function parsePeakRss(status: string): number | undefined {
  const match = /^VmHWM:\s*(\d+)\s*kB/m.exec(status);
  return match === null ? undefined : Number(match[1]) * 1024;
}

export function peakRss(pid: Pid = "self"): number | undefined {
  try {
    return parsePeakRss(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return undefined; // the process is gone
  }
}

export interface Measured {
  readonly seconds: number;
  /** Storage bytes this process wrote in the interval. */
  readonly writeBytes: number;
}

/** Wall time and storage bytes written by this process from `start()` to each `read()`. */
export class Meter {
  private constructor(
    private readonly t0: number,
    private readonly io0: IoCounters,
  ) {}

  static start(): Meter {
    return new Meter(performance.now(), readIo());
  }

  read(): Measured {
    return { seconds: (performance.now() - this.t0) / 1000, writeBytes: writtenBetween(this.io0, readIo()) };
  }
}
