/**
 * Runs a baseline tool (dd, cat, cp, rsync, nbdcopy, qemu-nbd...) as it is, and measures
 * it from outside: wall time from spawn to exit, storage bytes written (exact: a wrapper
 * shell reads its own /proc io counters after reaping the tool, which Linux adds to the
 * shell's), and peak RSS (VmHWM sampled every 20 ms, so a lower bound).
 */
import { spawn } from "node:child_process";
import { open } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import type { Readable } from "node:stream";
import { parseIo, peakRss, writtenBetween } from "./proc-stats.js";
import type { BaselineRun } from "./suite.js";

export interface ToolOptions {
  /** File the tool's stdout goes to (e.g. /dev/null); default: discarded. */
  readonly stdout?: string;
  /** Working directory, so a report can show short relative paths. */
  readonly cwd?: string;
  readonly signal?: AbortSignal;
}

// $1.. is the tool and its arguments. fd 3 reports the tool's pid, then the shell's io counters.
const WRAPPER =
  'cat /proc/$$/io >&3; echo >&3; "$@" 3>&- & pid=$!; echo "pid $pid" >&3; wait "$pid"; rc=$?; ' +
  'echo >&3; cat /proc/$$/io >&3; exit "$rc"';
const SAMPLE_MS = 20;

export async function runTool(
  command: string,
  args: readonly string[],
  options: ToolOptions = {},
): Promise<BaselineRun> {
  const label = [command, ...args].join(" ") + (options.stdout === undefined ? "" : ` > ${options.stdout}`);
  const out = options.stdout === undefined ? undefined : await open(options.stdout, "w");
  try {
    const child = spawn("/bin/sh", ["-c", WRAPPER, "sh", command, ...args], {
      stdio: ["ignore", out?.fd ?? "ignore", "pipe", "pipe"],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    const t0 = performance.now();
    let report = "";
    let stderr = "";
    let peak = 0;
    let toolPid: number | undefined;
    const reports = child.stdio[3] as Readable;
    reports.setEncoding("utf8");
    reports.on("data", (chunk: string) => {
      report += chunk;
      toolPid ??= Number(/^pid (\d+)$/m.exec(report)?.[1]) || undefined;
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      if (stderr.length < 10_000) stderr += chunk;
    });
    const sampler = setInterval(() => {
      if (toolPid !== undefined) peak = Math.max(peak, peakRss(toolPid) ?? 0);
    }, SAMPLE_MS);
    // The tool runs in the shell's background, so stopping the shell alone would leave it running.
    const stop = (): void => {
      if (toolPid !== undefined) killQuietly(toolPid);
      child.kill();
    };
    options.signal?.addEventListener("abort", stop);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (status) => resolve(status));
    }).finally(() => {
      clearInterval(sampler);
      options.signal?.removeEventListener("abort", stop);
    });
    options.signal?.throwIfAborted();
    const seconds = (performance.now() - t0) / 1000;
    if (code !== 0) {
      throw new Error(`Baseline \`${label}\` failed with exit code ${code}: ${stderr.trim() || "no output"}`);
    }
    const [before, , after] = report.split(/\n\n/);
    if (before === undefined || after === undefined) throw new Error(`Baseline \`${label}\`: no io report`);
    return {
      command: label,
      seconds,
      writeBytes: writtenBetween(parseIo(before), parseIo(after)),
      peakRssBytes: peak,
    };
  } finally {
    await out?.close();
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid);
  } catch {
    // already gone
  }
}
