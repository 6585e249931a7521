/**
 * A raw image file as a DiskSource: what the export benchmark and the tests read from.
 * The caller closes it.
 */
import { open } from "node:fs/promises";
import type { DiskSource } from "./disk-source.js";

export interface RawFileSource extends DiskSource {
  close(): Promise<void>;
}

export async function openRawFileSource(path: string): Promise<RawFileSource> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const readInto = async (buf: Buffer, offset: number, signal?: AbortSignal): Promise<void> => {
      signal?.throwIfAborted();
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, offset + done);
        if (bytesRead === 0)
          throw new RangeError(`Short read of ${path} at ${offset + done}: the file shrank`);
        done += bytesRead;
      }
    };
    return {
      sizeBytes: size,
      async read(offset, length, signal) {
        const buf = Buffer.allocUnsafe(length);
        await readInto(buf, offset, signal);
        return buf;
      },
      readInto,
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}
