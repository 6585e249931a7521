/**
 * Cuts a byte stream into frames. Bytes are buffered until a whole frame is there; the
 * length is checked before anything is buffered for it, so a hostile peer cannot make us
 * hold more than one maximal frame.
 */
import { ProtocolError } from "../common/errors.js";
import { decodeFrame } from "./codec.js";
import { MAX_FRAME_BYTES, type Frame } from "./frames.js";

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Adds bytes and returns every complete frame; throws ProtocolError on a bad frame. */
  push(data: Buffer): Frame[] {
    this.chunks.push(data);
    this.buffered += data.length;
    const frames: Frame[] = [];
    while (this.buffered >= 5) {
      const head = this.peek(5);
      const length = head.readUInt32BE(0);
      if (length === 0 || length > MAX_FRAME_BYTES)
        throw new ProtocolError(`Frame length ${length} is out of range (1..${MAX_FRAME_BYTES})`);
      if (this.buffered < 4 + length) break;
      const whole = this.take(4 + length);
      frames.push(decodeFrame(whole.readUInt8(4), whole.subarray(5)));
    }
    return frames;
  }

  /** Bytes of an incomplete frame still buffered (a truncated stream leaves some). */
  pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}
