/**
 * Exact-length reads from a socket for the handshake phase, where messages are few and a
 * promise per read is fine. `detach()` hands the bytes already received (the start of the
 * transmission phase) to the event-driven parser that takes over. While nobody reads,
 * buffering past `maxBuffered` pauses the socket, so a client that floods the handshake
 * cannot make us hold more.
 */
import type { Socket } from "node:net";
import { ProtocolError } from "../common/errors.js";

export class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private failed: Error | null = null;

  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered > this.maxBuffered) this.socket.pause();
    this.serve();
  };
  private readonly onEnd = (): void =>
    this.fail(new ProtocolError("Peer closed the connection during the handshake"));
  private readonly onError = (err: Error): void => this.fail(err);

  constructor(
    private readonly socket: Socket,
    private readonly maxBuffered = 256 * 1024,
  ) {
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("close", this.onEnd);
    socket.on("error", this.onError);
  }

  /** Resolves with exactly `n` bytes, or rejects when the connection ends first. */
  read(n: number): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error("ByteReader.read called while a read is pending"));
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.serve();
    });
  }

  /** Stops listening and returns whatever was received but not read. */
  detach(): Buffer {
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("close", this.onEnd);
    this.socket.off("error", this.onError);
    const rest = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    return rest;
  }

  private serve(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.buffered >= w.n) {
      this.waiter = null;
      w.resolve(this.take(w.n));
      if (this.buffered <= this.maxBuffered && this.socket.isPaused()) this.socket.resume();
    } else if (this.failed) {
      this.waiter = null;
      w.reject(this.failed);
    } else if (this.socket.isPaused()) this.socket.resume();
  }

  private fail(err: Error): void {
    this.failed ??= err;
    this.serve();
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}
