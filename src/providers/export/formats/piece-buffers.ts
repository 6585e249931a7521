/**
 * Recycles the buffers pieces are read into. A fresh 4 MiB buffer costs an mmap, page
 * faults on first touch and an munmap: exporting 1 GiB from a raw file took 2-4x the
 * system time with fresh buffers than with recycled ones. A buffer goes back to the free
 * list only when nothing holds it: `readPieces` holds a piece until the writer asks for
 * the next one, and `ImageOutput` holds every buffer it writes from until the write is
 * done (it recognises views of pooled buffers by their ArrayBuffer), so a buffer is never
 * refilled while anything still reads it.
 */

interface Entry {
  readonly buf: Buffer;
  holds: number;
}

const entries = new Map<ArrayBufferLike, Entry>();
const free: Buffer[] = [];
/** Enough for a couple of exports running at once; beyond it, released buffers go to the GC. */
const MAX_FREE = 16;

/** A buffer of at least `size` bytes, held once by the caller. */
export function takeBuffer(size: number): Buffer {
  const index = free.findIndex((b) => b.length >= size);
  const buf = index >= 0 ? (free.splice(index, 1)[0] as Buffer) : Buffer.allocUnsafeSlow(size);
  entries.set(buf.buffer, { buf, holds: 1 });
  return buf;
}

/** Adds a hold if `view` is (a view of) a pooled buffer; returns whether it is. */
export function holdBuffer(view: Buffer): boolean {
  const entry = entries.get(view.buffer);
  if (entry === undefined) return false;
  entry.holds++;
  return true;
}

export function releaseBuffer(view: Buffer): void {
  const entry = entries.get(view.buffer);
  if (entry === undefined) return;
  if (--entry.holds > 0) return;
  entries.delete(view.buffer);
  if (free.length < MAX_FREE) free.push(entry.buf);
}
