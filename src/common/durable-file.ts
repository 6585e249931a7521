/**
 * Durable small-file writes for state that must survive a crash (agent identity, hash
 * maps, replicator assignments): write a temporary file, fsync it, rename it over the old
 * one, fsync the directory. A reader sees the old file or the new one, never a mix.
 */
import { open, rename } from "node:fs/promises";
import { dirname } from "node:path";

/** fsyncs a directory so that names created, renamed or removed in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `path` with `data` atomically and durably; `mode` applies to a new file. */
export async function writeFileDurably(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, "w", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}
