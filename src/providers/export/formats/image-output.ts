/**
 * Where a writer puts its bytes: positioned writes into the image file, of which up to
 * `depth` are in flight at once, so the writer prepares the next piece while the kernel
 * copies the previous one. A write either writes every byte or fails; the first failure
 * is thrown by the next `write` or by `drain`. Buffers handed to `write` must not change
 * until `drain` resolves; views of recycled piece buffers are held until their write is
 * done, so the reader does not refill them meanwhile.
 */
import type { FileHandle } from "node:fs/promises";
import { holdBuffer, releaseBuffer } from "./piece-buffers.js";

export class ImageOutput {
  readonly #file: FileHandle;
  readonly #depth: number;
  #inFlight: Promise<void>[] = [];
  #failure: { error: unknown } | undefined;

  constructor(file: FileHandle, depth = 2) {
    this.#file = file;
    this.#depth = depth;
  }

  /** Resolves once the write is under way (and at most `depth` are). */
  async write(buffers: readonly Buffer[], position: number): Promise<void> {
    this.#throwIfFailed();
    let want = 0;
    for (const b of buffers) want += b.length;
    if (want === 0) return;
    while (this.#inFlight.length >= this.#depth) await this.#inFlight.shift();
    this.#throwIfFailed();
    const held = buffers.filter((b) => holdBuffer(b));
    // One pwritev; libuv loops over IOV_MAX and short writes.
    const done = this.#file
      .writev(buffers as Buffer[], position)
      .then(
        ({ bytesWritten }) => {
          if (bytesWritten !== want)
            this.#fail(new Error(`Short write at ${position}: ${bytesWritten} of ${want} bytes`));
        },
        (err: unknown) => this.#fail(err),
      )
      .finally(() => held.forEach(releaseBuffer));
    this.#inFlight.push(done);
  }

  async truncate(size: number): Promise<void> {
    await this.drain();
    await this.#file.truncate(size);
  }

  /** Waits for every write and throws the first failure. */
  async drain(): Promise<void> {
    await this.settle();
    this.#throwIfFailed();
  }

  /** Waits for every write, ignoring failures: before closing the file after an error. */
  async settle(): Promise<void> {
    while (this.#inFlight.length > 0) await this.#inFlight.shift();
  }

  #fail(error: unknown): void {
    this.#failure ??= { error };
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }
}
