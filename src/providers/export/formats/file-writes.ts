/** Positioned writes that either write every byte or throw. */
import type { FileHandle } from "node:fs/promises";

/** Writes `buffers` back to back at `position` (one pwritev; libuv loops over IOV_MAX). */
export async function writeFully(
  file: FileHandle,
  buffers: readonly Buffer[],
  position: number,
): Promise<number> {
  let want = 0;
  for (const b of buffers) want += b.length;
  if (want === 0) return 0;
  const { bytesWritten } = await file.writev(buffers as Buffer[], position);
  if (bytesWritten !== want) throw new Error(`Short write at ${position}: ${bytesWritten} of ${want} bytes`);
  return want;
}
