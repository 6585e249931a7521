/**
 * A socket that speaks frames: an async iterator of decoded frames in, `send` out with
 * backpressure, and `fail` to send ERROR and close. Reading stops while the consumer is
 * busy, so a slow store slows the peer rather than filling our memory. Sends go out one
 * frame after another; a paced send (a bandwidth limit) writes its frame in slices, and no
 * other frame gets in between them.
 */
import type { Duplex } from "node:stream";
import { ProtocolError, errorMessage } from "../common/errors.js";
import { encodeFrame } from "./codec.js";
import { FrameReader } from "./frame-reader.js";
import { FrameType, type ErrorCode, type Frame } from "./frames.js";

export class PeerError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "PeerError";
  }
}

/** A paced send writes at most this much before asking the pacer again. */
export const PACE_SLICE_BYTES = 64 * 1024;

/** Waits until `bytes` more may go on the wire. */
export type Pacer = (bytes: number) => Promise<void>;

export class FrameSocket {
  private readonly reader = new FrameReader();
  private closedFlag = false;
  private failing = false;
  private sending: Promise<void> = Promise.resolve();

  constructor(readonly socket: Duplex) {
    socket.on("close", () => {
      this.closedFlag = true;
    });
    // Errors surface through the iterator or the next send; an unhandled 'error' would crash.
    socket.on("error", () => {
      this.closedFlag = true;
    });
  }

  get closed(): boolean {
    return this.closedFlag || this.socket.destroyed;
  }

  /** Frames as they arrive. Throws ProtocolError on a bad frame and PeerError on ERROR. */
  async *frames(): AsyncGenerator<Frame> {
    // destroyOnReturn: false, so that a bad frame leaves the socket open for our ERROR frame.
    for await (const data of this.socket.iterator({ destroyOnReturn: false })) {
      for (const frame of this.reader.push(data as Buffer)) {
        if (frame.type === FrameType.ERROR) throw new PeerError(frame.body.code, frame.body.message);
        yield frame;
      }
    }
    if (this.reader.pending() > 0)
      throw new ProtocolError(`Connection closed inside a frame (${this.reader.pending()} bytes buffered)`);
  }

  /**
   * Sends a frame after the ones before it; resolves once the socket can take more
   * (backpressure). With `pace`, the frame goes out in slices of at most PACE_SLICE_BYTES,
   * each once `pace` allows it.
   */
  send(frame: Frame, pace?: Pacer): Promise<void> {
    const done = this.sending.then(() => this.write(frame, pace));
    this.sending = done.catch(() => undefined);
    return done;
  }

  private async write(frame: Frame, pace: Pacer | undefined): Promise<void> {
    if (this.closed) throw new Error("Connection is closed");
    const parts = encodeFrame(frame);
    if (pace === undefined) {
      let ok = true;
      this.socket.cork();
      for (const p of parts) ok = this.socket.write(p);
      this.socket.uncork();
      if (!ok) await this.drain();
      return;
    }
    for (const slice of slices(parts, PACE_SLICE_BYTES)) {
      await pace(slice.reduce((n, b) => n + b.length, 0));
      if (this.closed) throw new Error("Connection is closed");
      let ok = true;
      this.socket.cork();
      for (const b of slice) ok = this.socket.write(b);
      this.socket.uncork();
      if (!ok) await this.drain();
    }
  }

  private drain(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.socket.off("drain", done);
        this.socket.off("close", closed);
        resolve();
      };
      const closed = (): void => {
        this.socket.off("drain", done);
        reject(new Error("Connection closed while sending"));
      };
      this.socket.once("drain", done);
      this.socket.once("close", closed);
    });
  }

  /** Sends ERROR (best effort) and closes. */
  fail(code: ErrorCode, message: string): void {
    if (!this.closed && !this.failing) {
      this.failing = true;
      try {
        for (const p of encodeFrame({ type: FrameType.ERROR, body: { code, message } })) this.socket.write(p);
      } catch (err) {
        void errorMessage(err);
      }
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
  }

  /** Closes now, unless `fail` is still flushing its ERROR frame (it closes by itself). */
  close(): void {
    if (!this.failing) this.socket.destroy();
  }
}

/** The buffers of `parts`, cut and grouped into runs of at most `max` bytes. */
function* slices(parts: readonly Buffer[], max: number): Generator<Buffer[]> {
  let run: Buffer[] = [];
  let size = 0;
  for (const part of parts) {
    for (let at = 0; at < part.length;) {
      const piece = part.subarray(at, at + (max - size));
      run.push(piece);
      size += piece.length;
      at += piece.length;
      if (size === max) {
        yield run;
        run = [];
        size = 0;
      }
    }
  }
  if (size > 0) yield run;
}
