/**
 * Helpers for the image format tests: running the real qemu-img, its name for each of
 * our formats, and temporary directories that are always removed.
 */
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImageFormat } from "../../image-format.js";

/** Set when qemu-img is missing: the tests that need it skip with this reason (CI installs qemu-utils). */
export const NO_QEMU_IMG: string | false =
  spawnSync("qemu-img", ["--version"], { stdio: "ignore" }).status === 0
    ? false
    : "qemu-img is not installed";

export interface QemuImgRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function qemuImg(...args: string[]): Promise<QemuImgRun> {
  return new Promise((resolve, reject) => {
    execFile("qemu-img", args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : err.code;
      if (typeof code === "number") resolve({ code, stdout, stderr });
      else reject(err instanceof Error ? err : new Error(`qemu-img ${args.join(" ")} failed`));
    });
  });
}

/** qemu's driver name for each format: both VHD kinds are "vpc". */
export function qemuFormat(format: ImageFormat): string {
  return format === "vhd" || format === "vhd-dynamic" ? "vpc" : format;
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-formats-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
