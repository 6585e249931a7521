/**
 * The transmission phase of one server connection. Requests are parsed from the socket's
 * chunks without copying (a WRITE payload that arrived in one chunk is a view of it), run
 * concurrently, and answered as each finishes (out of order). Replies finishing in the
 * same event-loop turn go out in one writev (cork until setImmediate).
 *
 * Bounds: at most `maxInflightRequests` requests and `maxInflightBytes` payload bytes per
 * connection, counting a READ's reply until the socket has taken it; past either, the
 * parser stops and the socket is paused until requests finish (backpressure). A WRITE
 * reaches the backend only once its whole payload arrived; a connection that ends mid-
 * payload applies nothing of it. Framing errors (bad magic, a WRITE longer than 32 MiB)
 * close the connection; everything else gets an error reply and the connection goes on.
 */
import type { Socket } from "node:net";
import { NbdErrno } from "./export-backend.js";
import type { Negotiated } from "./server-handshake.js";
import type { RangeLock } from "./range-locks.js";
import {
  CMD_BLOCK_STATUS,
  CMD_CACHE,
  CMD_DISC,
  CMD_FLAG_DF,
  CMD_FLAG_FAST_ZERO,
  CMD_FLAG_FUA,
  CMD_FLAG_NO_HOLE,
  CMD_FLAG_REQ_ONE,
  CMD_FLUSH,
  CMD_READ,
  CMD_TRIM,
  CMD_WRITE,
  CMD_WRITE_ZEROES,
  MAX_PAYLOAD_BYTES,
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOSPC,
  NBD_EPERM,
  REPLY_FLAG_DONE,
  REPLY_TYPE_NONE,
  REPLY_TYPE_OFFSET_DATA,
  REPLY_TYPE_OFFSET_HOLE,
  REQUEST_HEADER_BYTES,
  REQUEST_MAGIC,
  SIMPLE_REPLY_BYTES,
  STRUCTURED_HEADER_BYTES,
  TF_SEND_FAST_ZERO,
  encodeBlockStatusChunk,
  encodeErrorChunk,
  encodeSimpleReply,
  encodeStructuredHeader,
  errnoName,
  readU64,
  u64IsSafe,
  type StatusExtent,
} from "./protocol.js";

export interface SessionLimits {
  readonly maxInflightRequests: number;
  readonly maxInflightBytes: number;
}

/** Refused or failed requests logged per connection; later ones are counted only. */
const MAX_LOGGED_ERRORS = 20;

/** Extents per block status chunk at most; the client asks again for the rest. */
const MAX_EXTENTS = 2048;

const MUTATING = (1 << CMD_WRITE) | (1 << CMD_TRIM) | (1 << CMD_WRITE_ZEROES);
/** Command flags each command accepts (FUA is valid on every command once advertised). */
const ALLOWED_FLAGS: Readonly<Record<number, number>> = {
  [CMD_READ]: CMD_FLAG_FUA | CMD_FLAG_DF,
  [CMD_WRITE]: CMD_FLAG_FUA,
  [CMD_DISC]: 0xffff,
  [CMD_FLUSH]: CMD_FLAG_FUA,
  [CMD_TRIM]: CMD_FLAG_FUA,
  [CMD_CACHE]: CMD_FLAG_FUA,
  [CMD_WRITE_ZEROES]: CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO,
  [CMD_BLOCK_STATUS]: CMD_FLAG_FUA | CMD_FLAG_REQ_ONE,
};

/** One request; `payload` is set for a WRITE once it fully arrived. */
interface Request {
  readonly type: number;
  readonly flags: number;
  readonly hi: number;
  readonly lo: number;
  readonly offset: number;
  readonly length: number;
  /** 0, or the error to reply with instead of running the request. */
  readonly errno: number;
  readonly why: string;
  /** Bytes counted against maxInflightBytes for this request and not yet released. */
  cost: number;
}

const enum State {
  Header,
  Payload,
  Discard,
}

export class ServerSession {
  private readonly head = Buffer.allocUnsafe(REQUEST_HEADER_BYTES);
  private headFill = 0;
  private state = State.Header;
  private current: Request | null = null;
  private payload: Buffer | null = null;
  private payloadFill = 0;
  private discardLeft = 0;
  /** Unparsed input held back while over the in-flight limits. */
  private held: Buffer | null = null;

  private inflight = 0;
  private inflightBytes = 0;
  private corked = false;
  private stopped = false;
  private closed = false;
  private ending = false;
  private notes = 0;
  private resolveDone!: () => void;
  /** Resolves once the connection is closed and every request it started has finished. */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  private readonly size: number;
  private readonly maxBlock: number;
  private readonly minBlock: number;
  private readonly readOnly: boolean;
  private readonly contextIds: number[];

  constructor(
    private readonly socket: Socket,
    private readonly negotiated: Negotiated,
    private readonly limits: SessionLimits,
    private readonly log: (message: string) => void,
  ) {
    const exp = negotiated.export;
    this.size = exp.backend.size;
    this.maxBlock = exp.blockSizes.maximum;
    this.minBlock = exp.blockSizes.minimum;
    this.readOnly = exp.backend.readOnly;
    this.contextIds = [...negotiated.contexts.keys()];
  }

  /** Takes over the socket; `initial` is what the handshake read past its last option. */
  start(initial: Buffer): void {
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("error", (err) => this.log(`connection error: ${err.message}`));
    this.socket.on("close", () => {
      this.closed = true;
      this.stopReading("connection closed");
      this.maybeDone();
    });
    this.socket.on("drain", () => this.maybeResume());
    if (initial.length > 0) this.onData(initial);
    // The handshake's reader may have paused a client that sent ahead.
    if (!this.held && !this.stopped) this.socket.resume();
  }

  /**
   * Graceful stop (server shutdown): read no more requests, finish those in flight, send
   * their replies, then close.
   */
  shutdown(): void {
    this.stopReading("server shutting down");
    this.maybeDone();
  }

  /** Stops parsing; a WRITE whose payload has not fully arrived is dropped, never applied. */
  private stopReading(why: string): void {
    this.stopped = true;
    this.held = null;
    const cut = this.current;
    if (!cut) return;
    this.log(
      `${why} mid-payload: WRITE at ${cut.offset}+${cut.length} discarded (${this.payloadFill} bytes had arrived)`,
    );
    this.current = null;
    this.payload = null;
    this.state = State.Header;
    this.inflight--;
    this.release(cut.cost);
  }

  private onData(chunk: Buffer): void {
    if (this.stopped) return;
    if (this.held) {
      this.held = Buffer.concat([this.held, chunk]);
      return;
    }
    this.parseSafely(chunk);
  }

  private overLimits(): boolean {
    return (
      this.inflight >= this.limits.maxInflightRequests || this.inflightBytes >= this.limits.maxInflightBytes
    );
  }

  private parse(chunk: Buffer): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n && !this.stopped) {
      if (this.state === State.Header) {
        if (this.headFill === 0 && this.overLimits()) {
          this.held = chunk.subarray(pos);
          this.socket.pause();
          return;
        }
        let header: Buffer;
        let at: number;
        if (this.headFill === 0 && n - pos >= REQUEST_HEADER_BYTES) {
          header = chunk;
          at = pos;
          pos += REQUEST_HEADER_BYTES;
        } else {
          const take = Math.min(REQUEST_HEADER_BYTES - this.headFill, n - pos);
          chunk.copy(this.head, this.headFill, pos, pos + take);
          this.headFill += take;
          pos += take;
          if (this.headFill < REQUEST_HEADER_BYTES) return;
          this.headFill = 0;
          header = this.head;
          at = 0;
        }
        this.onHeader(header, at);
      } else if (this.state === State.Payload) {
        const req = this.current!;
        const need = req.length - this.payloadFill;
        if (this.payloadFill === 0 && n - pos >= need) {
          // The whole payload is in this chunk: a view, no copy.
          this.payload = chunk.subarray(pos, pos + need);
          pos += need;
        } else {
          this.payload ??= Buffer.allocUnsafe(req.length);
          const take = Math.min(need, n - pos);
          chunk.copy(this.payload, this.payloadFill, pos, pos + take);
          this.payloadFill += take;
          pos += take;
          if (this.payloadFill < req.length) return;
        }
        const payload = this.payload;
        this.current = null;
        this.payload = null;
        this.payloadFill = 0;
        this.state = State.Header;
        this.run(req, payload);
      } else {
        const take = Math.min(this.discardLeft, n - pos);
        this.discardLeft -= take;
        pos += take;
        if (this.discardLeft === 0) {
          const req = this.current!;
          this.current = null;
          this.state = State.Header;
          this.run(req, null);
        }
      }
    }
  }

  private onHeader(buf: Buffer, at: number): void {
    if (buf.readUInt32BE(at) !== REQUEST_MAGIC) {
      this.protocolError(`bad request magic 0x${buf.readUInt32BE(at).toString(16)}`);
      return;
    }
    const flags = buf.readUInt16BE(at + 4);
    const type = buf.readUInt16BE(at + 6);
    const hi = buf.readUInt32BE(at + 8);
    const lo = buf.readUInt32BE(at + 12);
    const offsetSafe = u64IsSafe(buf, at + 16);
    const offset = offsetSafe ? readU64(buf, at + 16) : Number.MAX_SAFE_INTEGER;
    const length = buf.readUInt32BE(at + 24);

    if (type === CMD_DISC) {
      this.stopped = true;
      this.held = null;
      this.log("client disconnected (NBD_CMD_DISC)");
      this.maybeDone();
      return;
    }
    if (type === CMD_WRITE && length > Math.max(MAX_PAYLOAD_BYTES, this.maxBlock)) {
      this.protocolError(
        `WRITE of ${length} bytes exceeds ${MAX_PAYLOAD_BYTES}; cannot skip its payload safely`,
      );
      return;
    }
    const [errno, why] = this.check(type, flags, offset, length);
    const cost = type === CMD_WRITE || (type === CMD_READ && errno === 0) ? length : 0;
    const req: Request = { type, flags, hi, lo, offset, length, errno, why, cost };
    this.inflight++;
    this.inflightBytes += cost;
    if (type === CMD_WRITE && length > 0) {
      this.current = req;
      if (errno === 0) {
        this.state = State.Payload;
      } else {
        this.state = State.Discard;
        this.discardLeft = length;
      }
      return;
    }
    this.run(req, null);
  }

  /** Validates a request before anything runs: [0, ""] or the error to reply with. */
  private check(type: number, flags: number, offset: number, length: number): [number, string] {
    const allowed = ALLOWED_FLAGS[type];
    if (allowed === undefined) return [NBD_EINVAL, `unknown command ${type}`];
    if ((flags & ~allowed) !== 0)
      return [NBD_EINVAL, `flags 0x${flags.toString(16)} are not valid for command ${type}`];
    if ((flags & CMD_FLAG_DF) !== 0 && !this.negotiated.structured)
      return [NBD_EINVAL, "DF needs structured replies"];
    if ((flags & CMD_FLAG_FAST_ZERO) !== 0 && (this.negotiated.transmissionFlags & TF_SEND_FAST_ZERO) === 0)
      return [NBD_EINVAL, "FAST_ZERO was not advertised"];
    if (type === CMD_FLUSH) return [0, ""];
    const mutating = ((1 << type) & MUTATING) !== 0;
    if (mutating && this.readOnly) return [NBD_EPERM, "the export is read-only"];
    if ((type === CMD_READ || type === CMD_WRITE || type === CMD_CACHE) && length > this.maxBlock)
      return [NBD_EINVAL, `length ${length} exceeds the maximum block size ${this.maxBlock}`];
    if (offset + length > this.size || offset > this.size)
      return [
        type === CMD_WRITE || type === CMD_WRITE_ZEROES ? NBD_ENOSPC : NBD_EINVAL,
        `range ${offset}+${length} is beyond the export's end (${this.size})`,
      ];
    if (this.minBlock > 1 && (offset % this.minBlock !== 0 || length % this.minBlock !== 0))
      return [NBD_EINVAL, `range ${offset}+${length} is not aligned to ${this.minBlock}`];
    if (type === CMD_BLOCK_STATUS) {
      if (this.contextIds.length === 0) return [NBD_EINVAL, "no metadata context was selected"];
      if (length === 0) return [NBD_EINVAL, "block status of 0 bytes"];
    }
    return [0, ""];
  }

  private run(req: Request, payload: Buffer | null): void {
    if (req.errno !== 0) {
      this.note(
        `request ${req.type} at ${req.offset}+${req.length} refused (${errnoName(req.errno)}): ${req.why}`,
      );
      this.replyError(req, req.errno, req.why);
      this.finish(req);
      return;
    }
    this.execute(req, payload)
      .then(
        () => this.finish(req),
        (err: unknown) => {
          const errno = errnoOf(err);
          const message = err instanceof Error ? err.message : String(err);
          this.note(
            `request ${req.type} at ${req.offset}+${req.length} failed (${errnoName(errno)}): ${message}`,
          );
          this.replyError(req, errno, message);
          this.finish(req);
        },
      )
      .catch((err: unknown) => this.internalError(err));
  }

  private parseSafely(chunk: Buffer): void {
    try {
      this.parse(chunk);
    } catch (err) {
      this.internalError(err);
    }
  }

  /** A bug of ours, not the client's: log it and drop the connection rather than the process. */
  private internalError(err: unknown): void {
    this.log(
      `internal error, closing the connection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    this.stopped = true;
    this.held = null;
    this.socket.destroy();
  }

  private async execute(req: Request, payload: Buffer | null): Promise<void> {
    const backend = this.negotiated.export.backend;
    switch (req.type) {
      case CMD_READ:
        return this.read(req);
      case CMD_WRITE:
        if (req.length > 0)
          await this.locked(req, () => backend.write(req.offset, payload!, (req.flags & CMD_FLAG_FUA) !== 0));
        break;
      case CMD_FLUSH:
        await backend.flush();
        break;
      case CMD_TRIM:
        if (req.length > 0)
          await this.locked(req, () =>
            backend.trim(req.offset, req.length, (req.flags & CMD_FLAG_FUA) !== 0),
          );
        break;
      case CMD_WRITE_ZEROES:
        if (req.length > 0)
          await this.locked(req, () =>
            backend.writeZeroes(req.offset, req.length, {
              fua: (req.flags & CMD_FLAG_FUA) !== 0,
              noHole: (req.flags & CMD_FLAG_NO_HOLE) !== 0,
              fast: (req.flags & CMD_FLAG_FAST_ZERO) !== 0,
            }),
          );
        break;
      case CMD_CACHE:
        if (backend.cache && req.length > 0) await backend.cache(req.offset, req.length);
        break;
      case CMD_BLOCK_STATUS:
        return this.blockStatus(req);
    }
    this.replyOk(req);
  }

  private async locked(req: Request, op: () => Promise<void>): Promise<void> {
    const locks = this.negotiated.export.locks;
    const taken = locks.acquire(req.offset, req.length);
    const lock: RangeLock = taken instanceof Promise ? await taken : taken;
    try {
      await op();
    } finally {
      locks.release(lock);
    }
  }

  private async read(req: Request): Promise<void> {
    const backend = this.negotiated.export.backend;
    if (!this.negotiated.structured) {
      const buf = Buffer.allocUnsafe(SIMPLE_REPLY_BYTES + req.length);
      if (req.length > 0) await backend.read(req.offset, buf.subarray(SIMPLE_REPLY_BYTES));
      encodeSimpleReply(buf, 0, 0, req.hi, req.lo);
      this.send(buf, req);
      return;
    }
    if (req.length === 0) {
      this.send(structuredNone(req), null);
      return;
    }
    const prefix = STRUCTURED_HEADER_BYTES + 8;
    const buf = Buffer.allocUnsafe(prefix + req.length);
    const data = buf.subarray(prefix);
    const zeros = await backend.read(req.offset, data);
    if (!zeros || zeros.length === 0 || (req.flags & CMD_FLAG_DF) !== 0) {
      encodeStructuredHeader(buf, 0, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, req.hi, req.lo, 8 + req.length);
      buf.writeUInt32BE(Math.floor(req.offset / 0x1_0000_0000), STRUCTURED_HEADER_BYTES);
      buf.writeUInt32BE(req.offset >>> 0, STRUCTURED_HEADER_BYTES + 4);
      this.send(buf, req);
      return;
    }
    // Data and hole chunks in offset order; the last one carries DONE.
    const pieces: { offset: number; length: number; hole: boolean }[] = [];
    let at = req.offset;
    const end = req.offset + req.length;
    for (const z of zeros) {
      // Trust nothing out of order or out of the request from the backend.
      if (z.length <= 0 || z.offset < at || z.offset + z.length > end) continue;
      if (z.offset > at) pieces.push({ offset: at, length: z.offset - at, hole: false });
      pieces.push({ offset: z.offset, length: z.length, hole: true });
      at = z.offset + z.length;
    }
    if (at < end) pieces.push({ offset: at, length: end - at, hole: false });
    pieces.forEach((p, i) => {
      const last = i === pieces.length - 1;
      const flags = last ? REPLY_FLAG_DONE : 0;
      if (p.hole) {
        const h = Buffer.allocUnsafe(STRUCTURED_HEADER_BYTES + 12);
        encodeStructuredHeader(h, 0, flags, REPLY_TYPE_OFFSET_HOLE, req.hi, req.lo, 12);
        writeOffset(h, STRUCTURED_HEADER_BYTES, p.offset);
        h.writeUInt32BE(p.length, STRUCTURED_HEADER_BYTES + 8);
        this.send(h, last ? req : null);
      } else {
        const h = Buffer.allocUnsafe(prefix);
        encodeStructuredHeader(h, 0, flags, REPLY_TYPE_OFFSET_DATA, req.hi, req.lo, 8 + p.length);
        writeOffset(h, STRUCTURED_HEADER_BYTES, p.offset);
        this.send(h, null);
        this.send(data.subarray(p.offset - req.offset, p.offset - req.offset + p.length), last ? req : null);
      }
    });
  }

  private async blockStatus(req: Request): Promise<void> {
    const backend = this.negotiated.export.backend;
    const reqOne = (req.flags & CMD_FLAG_REQ_ONE) !== 0;
    const chunks: Buffer[] = [];
    for (const id of this.contextIds) {
      const name = this.negotiated.contexts.get(id)!;
      const raw = await backend.blockStatus(req.offset, req.length, name);
      chunks.push(encodeBlockStatusChunk(id, clipExtents(raw, req.length, reqOne), false, req.hi, req.lo));
    }
    // DONE on the last chunk (flags are at byte 4 of the header).
    const last = chunks[chunks.length - 1]!;
    last.writeUInt16BE(REPLY_FLAG_DONE, 4);
    for (const c of chunks) this.send(c, null);
  }

  private replyOk(req: Request): void {
    const b = Buffer.allocUnsafe(SIMPLE_REPLY_BYTES);
    encodeSimpleReply(b, 0, 0, req.hi, req.lo);
    this.send(b, null);
  }

  private replyError(req: Request, errno: number, message: string): void {
    if (this.negotiated.structured) this.send(encodeErrorChunk(errno, message, req.hi, req.lo), null);
    else {
      const b = Buffer.allocUnsafe(SIMPLE_REPLY_BYTES);
      encodeSimpleReply(b, 0, errno, req.hi, req.lo);
      this.send(b, null);
    }
  }

  /**
   * Queues reply bytes. With `costOf`, that request's in-flight bytes are released once the
   * socket has taken them (so slow readers hold back new requests).
   */
  private send(buf: Buffer, costOf: Request | null): void {
    if (this.closed || this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
    if (costOf && costOf.cost > 0) {
      // The bytes stay counted until the socket has taken them.
      const cost = costOf.cost;
      costOf.cost = 0;
      this.socket.write(buf, () => this.release(cost));
    } else this.socket.write(buf);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };

  /** A request finished running (its reply is queued; a READ's bytes may still be on their way out). */
  private finish(req: Request): void {
    this.inflight--;
    const cost = req.cost;
    req.cost = 0;
    this.release(cost);
    this.maybeResume();
    this.maybeDone();
  }

  private release(cost: number): void {
    if (cost === 0) return;
    this.inflightBytes -= cost;
    this.maybeResume();
  }

  private maybeResume(): void {
    if (!this.held || this.stopped || this.overLimits()) return;
    if (this.socket.writableNeedDrain) return;
    const input = this.held;
    this.held = null;
    this.parseSafely(input);
    if (!this.held && !this.stopped) this.socket.resume();
  }

  private maybeDone(): void {
    if (!this.stopped || this.inflight > 0) return;
    if (!this.closed) {
      // After DISC: every reply is queued; end the connection once they are flushed, and
      // drop it if the client does not close its side soon.
      if (this.ending) return;
      this.ending = true;
      this.uncork();
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
      return;
    }
    this.resolveDone();
  }

  /** Logs a refused or failed request; a client that sends many gets a bounded number of lines. */
  private note(message: string): void {
    this.notes++;
    if (this.notes <= MAX_LOGGED_ERRORS) this.log(message);
    else if (this.notes === MAX_LOGGED_ERRORS + 1)
      this.log(
        `more than ${MAX_LOGGED_ERRORS} requests refused or failed; not logging further ones on this connection`,
      );
  }

  private protocolError(message: string): void {
    this.log(`protocol error, closing the connection: ${message}`);
    this.stopped = true;
    this.held = null;
    this.socket.destroy();
  }
}

function writeOffset(buf: Buffer, at: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(offset / 0x1_0000_0000), at);
  buf.writeUInt32BE(offset >>> 0, at + 4);
}

function structuredNone(req: Request): Buffer {
  const b = Buffer.allocUnsafe(STRUCTURED_HEADER_BYTES);
  encodeStructuredHeader(b, 0, REPLY_FLAG_DONE, REPLY_TYPE_NONE, req.hi, req.lo, 0);
  return b;
}

/** Keeps extents consecutive, non-empty, within `length` and MAX_EXTENTS (one with REQ_ONE). */
function clipExtents(raw: readonly StatusExtent[], length: number, reqOne: boolean): StatusExtent[] {
  const out: StatusExtent[] = [];
  let covered = 0;
  const max = reqOne ? 1 : MAX_EXTENTS;
  for (const e of raw) {
    if (covered >= length || out.length >= max) break;
    if (e.length <= 0) continue;
    const len = Math.min(e.length, length - covered);
    out.push({ length: len, flags: e.flags >>> 0 });
    covered += len;
  }
  // The spec asks for at least one descriptor; "status 0" is always a safe answer.
  if (out.length === 0) out.push({ length, flags: 0 });
  return out;
}

/** The NBD error number for a failure: NbdErrno's own, or one mapped from Node's error code. */
export function errnoOf(err: unknown): number {
  if (err instanceof NbdErrno) return err.errno;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOSPC":
    case "EDQUOT":
    case "EFBIG":
      return NBD_ENOSPC;
    case "EROFS":
    case "EPERM":
    case "EACCES":
      return NBD_EPERM;
    case "EINVAL":
      return NBD_EINVAL;
    default:
      return NBD_EIO;
  }
}
