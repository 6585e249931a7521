/**
 * Punching holes and zeroing ranges of a regular file. Node has no fallocate(2), so this
 * runs util-linux's `fallocate` on our own open descriptor (`/proc/<pid>/fd/<fd>`, the same
 * inode even if the path was renamed). A process start costs milliseconds, so callers use
 * it only for ranges large enough to be worth it, and fall back to writing zeros when the
 * tool or the filesystem lacks the mode.
 */
import { execFile } from "node:child_process";

export type FallocateMode = "punch-hole" | "zero-range";

export class FallocateUnavailable extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FallocateUnavailable";
  }
}

/** Runs fallocate on descriptor `fd` of this process; rejects FallocateUnavailable when the tool or mode is missing. */
export function fallocateRange(
  fd: number,
  mode: FallocateMode,
  offset: number,
  length: number,
): Promise<void> {
  const args = [mode === "punch-hole" ? "--punch-hole" : "--zero-range", "--keep-size"];
  args.push("--offset", String(offset), "--length", String(length), `/proc/${process.pid}/fd/${fd}`);
  return new Promise((resolve, reject) => {
    execFile("fallocate", args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const code = (err as NodeJS.ErrnoException).code;
      const text = `${stderr}`.trim();
      if (code === "ENOENT" || /not supported/i.test(text))
        reject(
          new FallocateUnavailable(`fallocate --${mode} is not available here: ${text || err.message}`, {
            cause: err,
          }),
        );
      else
        reject(
          new Error(`fallocate --${mode} at ${offset}+${length} failed: ${text || err.message}`, {
            cause: err,
          }),
        );
    });
  });
}
