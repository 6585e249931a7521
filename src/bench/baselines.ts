/**
 * The baseline commands benches compare against, spelled once so every suite runs them
 * the same way. Paths are relative to `cwd`, so reports show them short. Each returns
 * what tool-runner measured.
 */
import { runTool } from "./tool-runner.js";
import type { BaselineRun } from "./suite.js";

/** `dd if=IMAGE of=COPY bs=4M conv=fsync`: a durable sequential copy, zeros written as data. */
export function ddCopy(cwd: string, image: string, copy: string, signal?: AbortSignal): Promise<BaselineRun> {
  return runTool("dd", [`if=${image}`, `of=${copy}`, "bs=4M", "conv=fsync", "status=none"], {
    cwd,
    ...(signal === undefined ? {} : { signal }),
  });
}

/** `cat IMAGE > /dev/null`: a sequential read of every byte, holes included. */
export function catRead(cwd: string, image: string, signal?: AbortSignal): Promise<BaselineRun> {
  return runTool("cat", [image], { cwd, stdout: "/dev/null", ...(signal === undefined ? {} : { signal }) });
}
