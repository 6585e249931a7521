/**
 * The NBD protocol's numbers and message layouts (fixed newstyle handshake, simple and
 * structured replies), as the spec in NetworkBlockDevice/nbd `doc/proto.md` defines them.
 * Both our server and our client encode and decode through this file; `docs/nbd.md` says
 * which parts we speak. All integers are big-endian. 64-bit offsets and sizes travel as
 * JavaScript numbers (exports are far below 2^53 bytes); handles (cookies) are opaque and
 * kept as two 32-bit halves so the hot path never makes a BigInt.
 */

// ---- Magics ----
export const NBD_MAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT", also the option request magic
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// ---- Handshake flags (server, 16 bits) and client flags (32 bits) ----
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;

// ---- Transmission flags (16 bits) ----
export const TF_HAS_FLAGS = 1 << 0;
export const TF_READ_ONLY = 1 << 1;
export const TF_SEND_FLUSH = 1 << 2;
export const TF_SEND_FUA = 1 << 3;
export const TF_ROTATIONAL = 1 << 4;
export const TF_SEND_TRIM = 1 << 5;
export const TF_SEND_WRITE_ZEROES = 1 << 6;
export const TF_SEND_DF = 1 << 7;
export const TF_CAN_MULTI_CONN = 1 << 8;
export const TF_SEND_RESIZE = 1 << 9;
export const TF_SEND_CACHE = 1 << 10;
export const TF_SEND_FAST_ZERO = 1 << 11;

// ---- Options ----
export const OPT_EXPORT_NAME = 1;
export const OPT_ABORT = 2;
export const OPT_LIST = 3;
export const OPT_STARTTLS = 5;
export const OPT_INFO = 6;
export const OPT_GO = 7;
export const OPT_STRUCTURED_REPLY = 8;
export const OPT_LIST_META_CONTEXT = 9;
export const OPT_SET_META_CONTEXT = 10;
export const OPT_EXTENDED_HEADERS = 11;

// ---- Option reply types ----
export const REP_ACK = 1;
export const REP_SERVER = 2;
export const REP_INFO = 3;
export const REP_META_CONTEXT = 4;
const REP_ERR = 0x80000000;
export const REP_ERR_UNSUP = REP_ERR + 1;
export const REP_ERR_POLICY = REP_ERR + 2;
export const REP_ERR_INVALID = REP_ERR + 3;
export const REP_ERR_PLATFORM = REP_ERR + 4;
export const REP_ERR_TLS_REQD = REP_ERR + 5;
export const REP_ERR_UNKNOWN = REP_ERR + 6;
export const REP_ERR_SHUTDOWN = REP_ERR + 7;
export const REP_ERR_BLOCK_SIZE_REQD = REP_ERR + 8;
export const REP_ERR_TOO_BIG = REP_ERR + 9;

export function isOptionError(replyType: number): boolean {
  return replyType >= REP_ERR;
}

// ---- NBD_REP_INFO types ----
export const INFO_EXPORT = 0;
export const INFO_NAME = 1;
export const INFO_DESCRIPTION = 2;
export const INFO_BLOCK_SIZE = 3;

// ---- Commands and command flags ----
export const CMD_READ = 0;
export const CMD_WRITE = 1;
export const CMD_DISC = 2;
export const CMD_FLUSH = 3;
export const CMD_TRIM = 4;
export const CMD_CACHE = 5;
export const CMD_WRITE_ZEROES = 6;
export const CMD_BLOCK_STATUS = 7;

export const CMD_FLAG_FUA = 1 << 0;
export const CMD_FLAG_NO_HOLE = 1 << 1;
export const CMD_FLAG_DF = 1 << 2;
export const CMD_FLAG_REQ_ONE = 1 << 3;
export const CMD_FLAG_FAST_ZERO = 1 << 4;

// ---- Structured replies ----
export const REPLY_FLAG_DONE = 1 << 0;
export const REPLY_TYPE_NONE = 0;
export const REPLY_TYPE_OFFSET_DATA = 1;
export const REPLY_TYPE_OFFSET_HOLE = 2;
export const REPLY_TYPE_BLOCK_STATUS = 5;
export const REPLY_TYPE_ERROR = (1 << 15) + 1;
export const REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

export function isErrorChunk(type: number): boolean {
  return (type & (1 << 15)) !== 0;
}

// ---- Error numbers (the only ones the protocol allows on the wire) ----
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  [NBD_EPERM]: "EPERM",
  [NBD_EIO]: "EIO",
  [NBD_ENOMEM]: "ENOMEM",
  [NBD_EINVAL]: "EINVAL",
  [NBD_ENOSPC]: "ENOSPC",
  [NBD_EOVERFLOW]: "EOVERFLOW",
  [NBD_ENOTSUP]: "ENOTSUP",
  [NBD_ESHUTDOWN]: "ESHUTDOWN",
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

// ---- Metadata contexts ----
export const CONTEXT_BASE_ALLOCATION = "base:allocation";
export const STATE_HOLE = 1 << 0;
export const STATE_ZERO = 1 << 1;
/** `qemu:dirty-bitmap:NAME` and our `lifeboat:dirty`: bit 0 set = written since the bitmap's start. */
export const STATE_DIRTY = 1 << 0;

// ---- Sizes ----
export const REQUEST_HEADER_BYTES = 28;
export const SIMPLE_REPLY_BYTES = 16;
export const STRUCTURED_HEADER_BYTES = 20;
export const OPTION_HEADER_BYTES = 16;
export const OPTION_REPLY_HEADER_BYTES = 20;
/** The largest READ/WRITE payload a peer may send without being deemed hostile (2^25). */
export const MAX_PAYLOAD_BYTES = 32 * 1024 * 1024;
/** Strings (export names, queries, messages) are at most 4096 bytes. */
export const MAX_STRING_BYTES = 4096;

const TWO_32 = 0x1_0000_0000;

export function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * TWO_32 + buf.readUInt32BE(at + 4);
}

export function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32), at);
  buf.writeUInt32BE((value % TWO_32) >>> 0, at + 4);
}

/** Whether the u64 at `at` fits a JavaScript number exactly (below 2^53). */
export function u64IsSafe(buf: Buffer, at: number): boolean {
  return buf.readUInt32BE(at) < 0x200000;
}

// ---- Handshake messages ----

/** Server greeting: NBDMAGIC, IHAVEOPT, 16-bit handshake flags. */
export function encodeGreeting(handshakeFlags: number): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBD_MAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(handshakeFlags, 16);
  return b;
}

export function encodeOptionRequest(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(OPTION_HEADER_BYTES + data.length);
  b.writeBigUInt64BE(IHAVEOPT, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(data.length, 12);
  data.copy(b, OPTION_HEADER_BYTES);
  return b;
}

export function encodeOptionReply(option: number, replyType: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(OPTION_REPLY_HEADER_BYTES + data.length);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(replyType >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, OPTION_REPLY_HEADER_BYTES);
  return b;
}

/** Reply to NBD_OPT_EXPORT_NAME: size, transmission flags, and 124 zeros unless NO_ZEROES. */
export function encodeExportNameReply(size: number, transmissionFlags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  writeU64(b, size, 0);
  b.writeUInt16BE(transmissionFlags, 8);
  return b;
}

export function encodeInfoExport(size: number, transmissionFlags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(INFO_EXPORT, 0);
  writeU64(b, size, 2);
  b.writeUInt16BE(transmissionFlags, 10);
  return b;
}

export function encodeInfoString(type: typeof INFO_NAME | typeof INFO_DESCRIPTION, text: string): Buffer {
  const s = Buffer.from(text, "utf8");
  const b = Buffer.alloc(2 + s.length);
  b.writeUInt16BE(type, 0);
  s.copy(b, 2);
  return b;
}

export interface BlockSizes {
  readonly minimum: number;
  readonly preferred: number;
  readonly maximum: number;
}

export function encodeInfoBlockSize(sizes: BlockSizes): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(INFO_BLOCK_SIZE, 0);
  b.writeUInt32BE(sizes.minimum, 2);
  b.writeUInt32BE(sizes.preferred, 6);
  b.writeUInt32BE(sizes.maximum, 10);
  return b;
}

/** Data of NBD_REP_SERVER: u32 name length, name, optional description. */
export function encodeServerReply(name: string, description = ""): Buffer {
  const n = Buffer.from(name, "utf8");
  const d = Buffer.from(description, "utf8");
  const b = Buffer.alloc(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.length);
  return b;
}

export function encodeMetaContextReply(id: number, name: string): Buffer {
  const n = Buffer.from(name, "utf8");
  const b = Buffer.alloc(4 + n.length);
  b.writeUInt32BE(id, 0);
  n.copy(b, 4);
  return b;
}

/** Data of NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, u16 info types. */
export function encodeInfoRequest(name: string, infos: readonly number[]): Buffer {
  const n = Buffer.from(name, "utf8");
  const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(infos.length, 4 + n.length);
  infos.forEach((info, i) => b.writeUInt16BE(info, 6 + n.length + 2 * i));
  return b;
}

/** Data of NBD_OPT_LIST/SET_META_CONTEXT: u32 name length, name, u32 count, (u32 length, query)*. */
export function encodeMetaContextRequest(exportName: string, queries: readonly string[]): Buffer {
  const parts = [Buffer.from(exportName, "utf8")];
  for (const q of queries) parts.push(Buffer.from(q, "utf8"));
  const b = Buffer.alloc(8 + parts.reduce((sum, p) => sum + p.length, 0) + 4 * queries.length);
  let at = 0;
  parts.forEach((p, i) => {
    b.writeUInt32BE(p.length, at);
    at += 4;
    if (i === 0) {
      p.copy(b, at);
      at += p.length;
      b.writeUInt32BE(queries.length, at);
      at += 4;
    } else {
      p.copy(b, at);
      at += p.length;
    }
  });
  return b;
}

/**
 * Reads option data field by field; every read checks the bounds the option header gave,
 * so an inner length that lies throws instead of reading past the option.
 */
export class OptionDataReader {
  private at = 0;

  constructor(private readonly data: Buffer) {}

  get remaining(): number {
    return this.data.length - this.at;
  }

  u16(): number {
    this.need(2);
    const v = this.data.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.data.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }

  /** A u32-length-prefixed UTF-8 string of at most MAX_STRING_BYTES. */
  string(): string {
    const length = this.u32();
    if (length > MAX_STRING_BYTES)
      throw new RangeError(`String of ${length} bytes exceeds ${MAX_STRING_BYTES}`);
    this.need(length);
    const s = this.data.toString("utf8", this.at, this.at + length);
    this.at += length;
    return s;
  }

  private need(n: number): void {
    if (this.at + n > this.data.length)
      throw new RangeError(`Option data ends at ${this.data.length} bytes, a field needs ${this.at + n}`);
  }
}

// ---- Transmission messages ----

/** A request header as the server sees it; `length` bytes of payload follow a WRITE. */
export interface RequestHeader {
  readonly flags: number;
  readonly type: number;
  readonly handleHi: number;
  readonly handleLo: number;
  readonly offset: number;
  readonly length: number;
  /** False when the offset does not fit in 2^53 (it is then past any export's end). */
  readonly offsetSafe: boolean;
}

/** Decodes a request header at `at`; returns null when the magic is wrong. */
export function decodeRequestHeader(buf: Buffer, at: number): RequestHeader | null {
  if (buf.readUInt32BE(at) !== REQUEST_MAGIC) return null;
  return {
    flags: buf.readUInt16BE(at + 4),
    type: buf.readUInt16BE(at + 6),
    handleHi: buf.readUInt32BE(at + 8),
    handleLo: buf.readUInt32BE(at + 12),
    offset: readU64(buf, at + 16),
    length: buf.readUInt32BE(at + 24),
    offsetSafe: u64IsSafe(buf, at + 16),
  };
}

export function encodeRequestHeader(
  into: Buffer,
  at: number,
  type: number,
  flags: number,
  handleHi: number,
  handleLo: number,
  offset: number,
  length: number,
): void {
  into.writeUInt32BE(REQUEST_MAGIC, at);
  into.writeUInt16BE(flags, at + 4);
  into.writeUInt16BE(type, at + 6);
  into.writeUInt32BE(handleHi, at + 8);
  into.writeUInt32BE(handleLo, at + 12);
  writeU64(into, offset, at + 16);
  into.writeUInt32BE(length, at + 24);
}

export function encodeSimpleReply(
  into: Buffer,
  at: number,
  error: number,
  handleHi: number,
  handleLo: number,
): void {
  into.writeUInt32BE(SIMPLE_REPLY_MAGIC, at);
  into.writeUInt32BE(error, at + 4);
  into.writeUInt32BE(handleHi, at + 8);
  into.writeUInt32BE(handleLo, at + 12);
}

export function encodeStructuredHeader(
  into: Buffer,
  at: number,
  flags: number,
  type: number,
  handleHi: number,
  handleLo: number,
  length: number,
): void {
  into.writeUInt32BE(STRUCTURED_REPLY_MAGIC, at);
  into.writeUInt16BE(flags, at + 4);
  into.writeUInt16BE(type, at + 6);
  into.writeUInt32BE(handleHi, at + 8);
  into.writeUInt32BE(handleLo, at + 12);
  into.writeUInt32BE(length, at + 16);
}

/** A whole NBD_REPLY_TYPE_ERROR chunk (flag DONE) with a human-readable message. */
export function encodeErrorChunk(error: number, message: string, handleHi: number, handleLo: number): Buffer {
  const msg = Buffer.from(message.slice(0, 1024), "utf8");
  const b = Buffer.allocUnsafe(STRUCTURED_HEADER_BYTES + 6 + msg.length);
  encodeStructuredHeader(b, 0, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, handleHi, handleLo, 6 + msg.length);
  b.writeUInt32BE(error, 20);
  b.writeUInt16BE(msg.length, 24);
  msg.copy(b, 26);
  return b;
}

/** One block status descriptor: `length` bytes with `flags` (context-defined). */
export interface StatusExtent {
  readonly length: number;
  readonly flags: number;
}

export function encodeBlockStatusChunk(
  contextId: number,
  extents: readonly StatusExtent[],
  done: boolean,
  handleHi: number,
  handleLo: number,
): Buffer {
  const payload = 4 + 8 * extents.length;
  const b = Buffer.allocUnsafe(STRUCTURED_HEADER_BYTES + payload);
  encodeStructuredHeader(
    b,
    0,
    done ? REPLY_FLAG_DONE : 0,
    REPLY_TYPE_BLOCK_STATUS,
    handleHi,
    handleLo,
    payload,
  );
  b.writeUInt32BE(contextId, 20);
  let at = 24;
  for (const e of extents) {
    b.writeUInt32BE(e.length, at);
    b.writeUInt32BE(e.flags, at + 4);
    at += 8;
  }
  return b;
}
