/**
 * Encodes and strictly decodes frames. Decoding validates every field and rejects trailing
 * bytes, so that a frame either parses exactly or raises ProtocolError and nothing from it
 * is applied. Encoding returns a list of buffers so batch data is never copied.
 */
import { ProtocolError } from "../common/errors.js";
import {
  BATCH_CONSISTENT,
  ERROR_CODES,
  FrameType,
  MAX_EXTENTS_PER_BATCH,
  MAX_FRAME_BYTES,
  WIRE_BLOCK,
  type Batch,
  type ErrorCode,
  type Frame,
  type Hello,
  type Welcome,
  type WireExtent,
} from "./frames.js";

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function header(type: number, payloadLength: number): Buffer {
  const length = 1 + payloadLength;
  if (length > MAX_FRAME_BYTES) throw new ProtocolError(`Frame too large to send: ${length} bytes`);
  const h = Buffer.allocUnsafe(5);
  h.writeUInt32BE(length, 0);
  h.writeUInt8(type, 4);
  return h;
}

function json(type: number, body: unknown): Buffer[] {
  const payload = Buffer.from(JSON.stringify(body), "utf8");
  return [header(type, payload.length), payload];
}

function u64(buf: Buffer, value: number, at: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new ProtocolError(`Not a u64 below 2^53: ${value}`);
  buf.writeBigUInt64BE(BigInt(value), at);
}

export function encodeFrame(frame: Frame): Buffer[] {
  switch (frame.type) {
    case FrameType.HELLO:
    case FrameType.WELCOME:
    case FrameType.ERROR:
    case FrameType.FINISH:
    case FrameType.FINISHED:
      return json(frame.type, frame.body);
    case FrameType.BATCH:
      return encodeBatch(frame.body);
    case FrameType.ACK: {
      const p = Buffer.allocUnsafe(16);
      u64(p, frame.body.tag, 0);
      u64(p, frame.body.seq, 8);
      return [header(frame.type, 16), p];
    }
    case FrameType.HASHES: {
      const { disk, firstChunk, hashes } = frame.body;
      const p = Buffer.allocUnsafe(10 + hashes.length * 8);
      p.writeUInt16BE(disk, 0);
      p.writeUInt32BE(firstChunk, 2);
      p.writeUInt32BE(hashes.length, 6);
      for (let i = 0; i < hashes.length; i++) p.writeBigUInt64BE(hashes[i] ?? 0n, 10 + i * 8);
      return [header(frame.type, p.length), p];
    }
    case FrameType.HASH_DIFF: {
      const { disk, firstChunk, differs } = frame.body;
      const p = Buffer.alloc(10 + Math.ceil(differs.length / 8));
      p.writeUInt16BE(disk, 0);
      p.writeUInt32BE(firstChunk, 2);
      p.writeUInt32BE(differs.length, 6);
      differs.forEach((d, i) => {
        if (d) p[10 + (i >> 3)]! |= 1 << (i & 7);
      });
      return [header(frame.type, p.length), p];
    }
  }
}

function encodeBatch(batch: Batch): Buffer[] {
  if (batch.extents.length > MAX_EXTENTS_PER_BATCH)
    throw new ProtocolError(`Batch has too many extents: ${batch.extents.length}`);
  const head = Buffer.allocUnsafe(13);
  u64(head, batch.tag, 0);
  head.writeUInt8(batch.consistent ? BATCH_CONSISTENT : 0, 8);
  head.writeUInt32BE(batch.extents.length, 9);
  const parts: Buffer[] = [head];
  let size = head.length;
  for (const e of batch.extents) {
    const eh = Buffer.allocUnsafe(15);
    eh.writeUInt16BE(e.disk, 0);
    eh.writeUInt8(e.kind === "data" ? 0 : 1, 2);
    u64(eh, e.offset, 3);
    eh.writeUInt32BE(e.length, 11);
    parts.push(eh);
    size += 15;
    if (e.kind === "data") {
      if (e.data.length !== e.length)
        throw new ProtocolError(`Extent data is ${e.data.length} bytes, length says ${e.length}`);
      parts.push(e.data);
      size += e.length;
    }
  }
  return [header(FrameType.BATCH, size), ...parts];
}

/** Size in bytes a batch takes on the wire (for flow control and bandwidth accounting). */
export function batchWireBytes(batch: Batch): number {
  let size = 5 + 13;
  for (const e of batch.extents) size += 15 + (e.kind === "data" ? e.length : 0);
  return size;
}

class Cursor {
  private at = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}
  need(n: number): void {
    if (this.at + n > this.buf.length)
      throw new ProtocolError(
        `Truncated ${this.what} frame: needs ${this.at + n} bytes, has ${this.buf.length}`,
      );
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.at++);
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.at);
    this.at += 8;
    if (v > BigInt(MAX_SAFE)) throw new ProtocolError(`${this.what}: u64 value above 2^53: ${v}`);
    return Number(v);
  }
  bigU64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.at);
    this.at += 8;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  end(): void {
    if (this.at !== this.buf.length)
      throw new ProtocolError(`${this.what} frame has ${this.buf.length - this.at} trailing bytes`);
  }
}

function parseJson(payload: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString("utf8"));
  } catch (cause) {
    throw new ProtocolError(`${what} frame is not valid JSON`, { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ProtocolError(`${what} frame is not a JSON object`);
  return value as Record<string, unknown>;
}

function field<T>(
  obj: Record<string, unknown>,
  name: string,
  what: string,
  check: (v: unknown) => v is T,
): T {
  const v = obj[name];
  if (!check(v)) throw new ProtocolError(`${what} frame: field ${name} is missing or invalid`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === "string" && v.length > 0 && v.length <= 256;
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isTag = (v: unknown): v is number | null => v === null || isCount(v);

function decodeHello(payload: Buffer): Hello {
  const o = parseJson(payload, "HELLO");
  const role = field(
    o,
    "role",
    "HELLO",
    (v): v is "source" | "failback" => v === "source" || v === "failback",
  );
  const disksRaw = field(o, "disks", "HELLO", (v): v is unknown[] => Array.isArray(v) && v.length <= 64);
  const disks = disksRaw.map((d) => {
    if (typeof d !== "object" || d === null) throw new ProtocolError("HELLO frame: a disk is not an object");
    const r = d as Record<string, unknown>;
    return {
      id: field(r, "id", "HELLO", isString),
      sizeBytes: field(r, "sizeBytes", "HELLO", (v): v is number => isCount(v) && v % WIRE_BLOCK === 0),
    };
  });
  return {
    version: field(o, "version", "HELLO", isCount),
    role,
    machineId: field(o, "machineId", "HELLO", isString),
    disks,
    chunkSize: field(o, "chunkSize", "HELLO", isCount),
  };
}

function decodeWelcome(payload: Buffer): Welcome {
  const o = parseJson(payload, "WELCOME");
  return {
    version: field(o, "version", "WELCOME", isCount),
    timelineId: field(o, "timelineId", "WELCOME", isString),
    lastTag: field(o, "lastTag", "WELCOME", isTag),
    lastSeq: field(o, "lastSeq", "WELCOME", isCount),
    fresh: field(o, "fresh", "WELCOME", isBool),
    windowBytes: field(o, "windowBytes", "WELCOME", isCount),
  };
}

function decodeBatch(payload: Buffer): Batch {
  const c = new Cursor(payload, "BATCH");
  const tag = c.u64();
  const flags = c.u8();
  if ((flags & ~BATCH_CONSISTENT) !== 0) throw new ProtocolError(`BATCH frame: unknown flags ${flags}`);
  const count = c.u32();
  if (count > MAX_EXTENTS_PER_BATCH) throw new ProtocolError(`BATCH frame: too many extents: ${count}`);
  const extents: WireExtent[] = [];
  for (let i = 0; i < count; i++) {
    const disk = c.u16();
    const kind = c.u8();
    const offset = c.u64();
    const length = c.u32();
    if (length === 0 || length % WIRE_BLOCK !== 0 || offset % WIRE_BLOCK !== 0)
      throw new ProtocolError(
        `BATCH frame: extent ${i} is not 4096-aligned: offset ${offset}, length ${length}`,
      );
    if (kind === 0) extents.push({ disk, offset, length, kind: "data", data: c.bytes(length) });
    else if (kind === 1) extents.push({ disk, offset, length, kind: "zero" });
    else throw new ProtocolError(`BATCH frame: extent ${i} has unknown kind ${kind}`);
  }
  c.end();
  return { tag, consistent: flags === BATCH_CONSISTENT, extents };
}

/** Decodes one frame's payload; throws ProtocolError for anything that does not parse exactly. */
export function decodeFrame(type: number, payload: Buffer): Frame {
  switch (type) {
    case FrameType.HELLO:
      return { type, body: decodeHello(payload) };
    case FrameType.WELCOME:
      return { type, body: decodeWelcome(payload) };
    case FrameType.BATCH:
      return { type, body: decodeBatch(payload) };
    case FrameType.ACK: {
      const c = new Cursor(payload, "ACK");
      const body = { tag: c.u64(), seq: c.u64() };
      c.end();
      return { type, body };
    }
    case FrameType.HASHES: {
      const c = new Cursor(payload, "HASHES");
      const disk = c.u16();
      const firstChunk = c.u32();
      const count = c.u32();
      c.need(count * 8);
      const hashes = new BigUint64Array(count);
      for (let i = 0; i < count; i++) hashes[i] = c.bigU64();
      c.end();
      return { type, body: { disk, firstChunk, hashes } };
    }
    case FrameType.HASH_DIFF: {
      const c = new Cursor(payload, "HASH_DIFF");
      const disk = c.u16();
      const firstChunk = c.u32();
      const count = c.u32();
      const bits = c.bytes(Math.ceil(count / 8));
      c.end();
      const differs: boolean[] = [];
      for (let i = 0; i < count; i++) differs.push(((bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0);
      return { type, body: { disk, firstChunk, differs } };
    }
    case FrameType.ERROR: {
      const o = parseJson(payload, "ERROR");
      const code = field(o, "code", "ERROR", (v): v is ErrorCode => ERROR_CODES.includes(v as ErrorCode));
      const message = field(o, "message", "ERROR", (v): v is string => typeof v === "string");
      return { type, body: { code, message: message.slice(0, 2000) } };
    }
    case FrameType.FINISH:
    case FrameType.FINISHED: {
      const o = parseJson(payload, type === FrameType.FINISH ? "FINISH" : "FINISHED");
      return { type, body: { seq: field(o, "seq", "FINISH", isCount) } };
    }
    default:
      throw new ProtocolError(`Unknown frame type ${type}`);
  }
}
