/**
 * Puts the page cache in the same state before each side of a read comparison. "cold":
 * `sync`, then `echo 3 > /proc/sys/vm/drop_caches` (root only; it drops the whole
 * machine's clean cache, other users' too), so both sides read from the disk. "warm": read
 * every file involved once first, so both sides read from memory.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { open, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

export type CacheMode = "cold" | "warm";

const DROP_CACHES = "/proc/sys/vm/drop_caches";

export function canDropCaches(): boolean {
  try {
    accessSync(DROP_CACHES, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Flushes every dirty page of the machine to disk. */
export function syncAll(): void {
  const result = spawnSync("sync", { stdio: "ignore" });
  if (result.status !== 0)
    throw new Error(`sync failed: ${result.error?.message ?? `exit ${result.status}`}`);
}

export async function prepareRead(
  mode: CacheMode,
  paths: readonly string[],
  signal?: AbortSignal,
): Promise<void> {
  if (mode === "cold") {
    syncAll();
    try {
      await writeFile(DROP_CACHES, "3\n");
    } catch (err) {
      throw new Error(`Cannot drop the page cache (${DROP_CACHES}): run as root or pass --cache warm`, {
        cause: err,
      });
    }
    return;
  }
  const buffer = Buffer.alloc(4 * 1024 * 1024);
  for (const path of paths) await readAll(path, buffer, signal);
}

async function readAll(path: string, buffer: Buffer, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  if ((await stat(path)).isDirectory()) {
    for (const name of await readdir(path)) await readAll(join(path, name), buffer, signal);
    return;
  }
  const handle = await open(path, "r");
  try {
    while ((await handle.read(buffer, 0, buffer.length, null)).bytesRead > 0) signal?.throwIfAborted();
  } finally {
    await handle.close();
  }
}
