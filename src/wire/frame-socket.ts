/**
 * A socket that speaks frames: an async iterator of decoded frames in, `send` out with
 * backpressure, and `fail` to send ERROR and close. Reading stops while the consumer is
 * busy, so a slow store slows the peer rather than filling our memory.
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

export class FrameSocket {
  private readonly reader = new FrameReader();
  private closedFlag = false;
  private failing = false;

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

  /** Sends a frame; resolves once the socket can take more (backpressure). */
  async send(frame: Frame): Promise<void> {
    if (this.closed) throw new Error("Connection is closed");
    const parts = encodeFrame(frame);
    let ok = true;
    this.socket.cork();
    for (const p of parts) ok = this.socket.write(p);
    this.socket.uncork();
    if (!ok) await this.drain();
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
