/**
 * An NBD client: connects over a Unix socket or TCP, negotiates structured replies and
 * metadata contexts (e.g. QEMU's `qemu:dirty-bitmap:NAME`, our `lifeboat:dirty`), and runs
 * requests concurrently, matching replies to requests by handle. Read data is copied from
 * the socket straight into the caller's result buffer. A reply that breaks the protocol
 * fails every pending request and closes the connection.
 */
import { connect as netConnect, type Socket } from "node:net";
import { ProtocolError, UserError, errorMessage } from "../common/errors.js";
import { ByteReader } from "./byte-reader.js";
import {
  clientHandshake,
  listExports,
  type ClientNegotiated,
  type ListedExport,
} from "./client-handshake.js";
import { NbdErrno } from "./export-backend.js";
import {
  CMD_BLOCK_STATUS,
  CMD_DISC,
  CMD_FLAG_FAST_ZERO,
  CMD_FLAG_FUA,
  CMD_FLAG_NO_HOLE,
  CMD_FLAG_REQ_ONE,
  CMD_FLUSH,
  CMD_READ,
  CMD_TRIM,
  CMD_WRITE,
  CMD_WRITE_ZEROES,
  NBD_EINVAL,
  REPLY_FLAG_DONE,
  REPLY_TYPE_BLOCK_STATUS,
  REPLY_TYPE_NONE,
  REPLY_TYPE_OFFSET_DATA,
  REPLY_TYPE_OFFSET_HOLE,
  REQUEST_HEADER_BYTES,
  SIMPLE_REPLY_BYTES,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_HEADER_BYTES,
  STRUCTURED_REPLY_MAGIC,
  TF_READ_ONLY,
  encodeRequestHeader,
  errnoName,
  isErrorChunk,
  readU64,
  type BlockSizes,
} from "./protocol.js";

export type ClientTarget =
  { readonly socketPath: string } | { readonly host?: string; readonly port: number };

export interface NbdClientOptions {
  readonly exportName?: string;
  /** Default true. */
  readonly structuredReplies?: boolean;
  /** Contexts to select, e.g. `base:allocation`, `qemu:dirty-bitmap:b0`. */
  readonly metaContexts?: readonly string[];
  readonly signal?: AbortSignal;
}

/** A block status extent with its absolute offset. */
export interface ClientExtent {
  readonly offset: number;
  readonly length: number;
  readonly flags: number;
}

/** Non-data chunks (errors, block status) longer than this break the protocol. */
const MAX_SMALL_CHUNK = 1024 * 1024;

interface Pending {
  readonly type: number;
  readonly offset: number;
  readonly length: number;
  /** READ: the result, filled by data chunks (holes zeroed). */
  readonly data: Buffer | null;
  covered: number;
  status: Map<number, ClientExtent[]> | null;
  error: NbdErrno | null;
  readonly resolve: (value: Buffer | Map<number, ClientExtent[]> | null) => void;
  readonly reject: (err: Error) => void;
}

const enum In {
  Magic,
  SimpleData,
  ChunkData,
  ChunkBody,
}

export class NbdClient {
  private readonly pending = new Map<number, Pending>();
  private nextHandle = 1;
  private failure: Error | null = null;
  private closing = false;
  private readonly closed: Promise<void>;

  // Reply parser state.
  private chunks: Buffer[] = [];
  private buffered = 0;
  private state = In.Magic;
  private target: Pending | null = null;
  private targetHandle = 0;
  private dataAt = 0;
  private dataLeft = 0;
  private chunkFlags = 0;
  private chunkType = 0;
  private chunkLength = 0;
  private dataChunkLength = 0;
  private idleWaiters: (() => void)[] = [];

  private constructor(
    private readonly socket: Socket,
    private readonly negotiated: ClientNegotiated,
    readonly exportName: string,
  ) {
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error(`NBD connection to export "${exportName}" closed`)));
  }

  /** Connects, negotiates and enters the transmission phase. */
  static async connect(target: ClientTarget, options: NbdClientOptions = {}): Promise<NbdClient> {
    const exportName = options.exportName ?? "";
    const socket = await open(target, options.signal);
    const reader = new ByteReader(socket);
    const onAbort = (): void => void socket.destroy(new Error("NBD connect aborted"));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const negotiated = await clientHandshake(socket, reader, {
        exportName,
        structuredReplies: options.structuredReplies ?? true,
        metaContexts: options.metaContexts ?? [],
      });
      const rest = reader.detach();
      const client = new NbdClient(socket, negotiated, exportName);
      if (rest.length > 0) client.onData(rest);
      return client;
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The exports a server lists (NBD_OPT_LIST). */
  static async list(target: ClientTarget, signal?: AbortSignal): Promise<ListedExport[]> {
    const socket = await open(target, signal);
    try {
      return await listExports(socket, new ByteReader(socket));
    } finally {
      socket.destroy();
    }
  }

  get size(): number {
    return this.negotiated.size;
  }
  get transmissionFlags(): number {
    return this.negotiated.transmissionFlags;
  }
  get readOnly(): boolean {
    return (this.negotiated.transmissionFlags & TF_READ_ONLY) !== 0;
  }
  get structured(): boolean {
    return this.negotiated.structured;
  }
  get blockSizes(): BlockSizes | null {
    return this.negotiated.blockSizes;
  }
  /** Selected metadata context names → ids. */
  get contexts(): ReadonlyMap<string, number> {
    return this.negotiated.contexts;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    return (await this.request(CMD_READ, 0, offset, length, null)) as Buffer;
  }

  async write(offset: number, data: Buffer, options: { fua?: boolean } = {}): Promise<void> {
    await this.request(CMD_WRITE, options.fua ? CMD_FLAG_FUA : 0, offset, data.length, data);
  }

  async flush(): Promise<void> {
    await this.request(CMD_FLUSH, 0, 0, 0, null);
  }

  async trim(offset: number, length: number, options: { fua?: boolean } = {}): Promise<void> {
    await this.request(CMD_TRIM, options.fua ? CMD_FLAG_FUA : 0, offset, length, null);
  }

  async writeZeroes(
    offset: number,
    length: number,
    options: { fua?: boolean; noHole?: boolean; fastZero?: boolean } = {},
  ): Promise<void> {
    const flags =
      (options.fua ? CMD_FLAG_FUA : 0) |
      (options.noHole ? CMD_FLAG_NO_HOLE : 0) |
      (options.fastZero ? CMD_FLAG_FAST_ZERO : 0);
    await this.request(CMD_WRITE_ZEROES, flags, offset, length, null);
  }

  /**
   * Extents of `context` from `offset` (the server may cover less than `length`, or with
   * `reqOne` exactly one extent; ask again from where they end).
   */
  async blockStatus(
    offset: number,
    length: number,
    context: string,
    options: { reqOne?: boolean } = {},
  ): Promise<ClientExtent[]> {
    const id = this.negotiated.contexts.get(context);
    if (id === undefined)
      throw new UserError(`Metadata context ${context} was not negotiated on export "${this.exportName}"`);
    const byId = (await this.request(
      CMD_BLOCK_STATUS,
      options.reqOne ? CMD_FLAG_REQ_ONE : 0,
      offset,
      length,
      null,
    )) as Map<number, ClientExtent[]>;
    const extents = byId.get(id);
    if (!extents) throw new ProtocolError(`Server sent no block status for context ${context}`);
    return extents;
  }

  /** Waits for requests in flight, sends NBD_CMD_DISC and closes. */
  async disconnect(): Promise<void> {
    if (this.closing) return this.closed;
    this.closing = true;
    if (this.pending.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (!this.failure) {
      const head = Buffer.allocUnsafe(REQUEST_HEADER_BYTES);
      encodeRequestHeader(head, 0, CMD_DISC, 0, 0, 0, 0, 0);
      this.socket.end(head);
    }
    const timer = setTimeout(() => this.socket.destroy(), 5000);
    await this.closed;
    clearTimeout(timer);
  }

  /** Drops the connection now; pending requests fail. */
  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private request(
    type: number,
    flags: number,
    offset: number,
    length: number,
    payload: Buffer | null,
  ): Promise<Buffer | Map<number, ClientExtent[]> | null> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new Error("NBD client is disconnecting"));
    let handle = this.nextHandle;
    while (this.pending.has(handle)) handle = (handle + 1) >>> 0 || 1;
    this.nextHandle = (handle + 1) >>> 0 || 1;
    return new Promise((resolve, reject) => {
      this.pending.set(handle, {
        type,
        offset,
        length,
        data: type === CMD_READ ? Buffer.allocUnsafe(length) : null,
        covered: 0,
        status: type === CMD_BLOCK_STATUS ? new Map() : null,
        error: null,
        resolve,
        reject,
      });
      const head = Buffer.allocUnsafe(REQUEST_HEADER_BYTES);
      encodeRequestHeader(head, 0, type, flags, 0, handle, offset, length);
      if (payload) {
        this.socket.cork();
        this.socket.write(head);
        this.socket.write(payload);
        process.nextTick(() => this.socket.uncork());
      } else this.socket.write(head);
    });
  }

  // ---- Reply parsing ----

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      this.parse();
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      this.socket.destroy();
    }
  }

  private parse(): void {
    for (;;) {
      switch (this.state) {
        case In.Magic: {
          if (this.buffered < 4) return;
          const magic = this.peek(4).readUInt32BE(0);
          if (magic === SIMPLE_REPLY_MAGIC) {
            if (this.buffered < SIMPLE_REPLY_BYTES) return;
            const h = this.take(SIMPLE_REPLY_BYTES);
            this.onSimple(h.readUInt32BE(4), h.readUInt32BE(12));
          } else if (magic === STRUCTURED_REPLY_MAGIC) {
            if (this.buffered < STRUCTURED_HEADER_BYTES) return;
            const h = this.take(STRUCTURED_HEADER_BYTES);
            this.onChunkHeader(h.readUInt16BE(4), h.readUInt16BE(6), h.readUInt32BE(12), h.readUInt32BE(16));
          } else throw new ProtocolError(`Bad reply magic 0x${magic.toString(16)}`);
          break;
        }
        case In.SimpleData:
        case In.ChunkData: {
          if (this.buffered === 0) return;
          const n = this.copyInto(this.target!.data!, this.dataAt, this.dataLeft);
          this.dataAt += n;
          this.dataLeft -= n;
          if (this.dataLeft > 0) return;
          const p = this.target!;
          const handle = this.targetHandle;
          if (this.state === In.SimpleData) this.complete(handle, p);
          else if ((this.chunkFlags & REPLY_FLAG_DONE) !== 0) this.complete(handle, p);
          this.state = In.Magic;
          break;
        }
        case In.ChunkBody: {
          if (this.buffered < this.chunkLength) return;
          this.state = In.Magic;
          this.onChunkBody(this.take(this.chunkLength));
          break;
        }
      }
    }
  }

  private onSimple(errno: number, handle: number): void {
    const p = this.pending.get(handle);
    if (!p) throw new ProtocolError(`Reply for unknown handle ${handle}`);
    if (errno !== 0) {
      p.error = new NbdErrno(errno, `NBD request failed: ${errnoName(errno)}`);
      this.complete(handle, p);
      return;
    }
    if (p.type === CMD_READ && p.length > 0) {
      if (this.negotiated.structured)
        throw new ProtocolError("Simple reply with data to a READ after structured replies");
      this.target = p;
      this.targetHandle = handle;
      this.dataAt = 0;
      this.dataLeft = p.length;
      this.state = In.SimpleData;
      return;
    }
    this.complete(handle, p);
  }

  private onChunkHeader(flags: number, type: number, handle: number, length: number): void {
    const p = this.pending.get(handle);
    if (!p) throw new ProtocolError(`Structured reply for unknown handle ${handle}`);
    this.chunkFlags = flags;
    this.chunkType = type;
    this.chunkLength = length;
    this.target = p;
    this.targetHandle = handle;
    if (type === REPLY_TYPE_OFFSET_DATA) {
      if (p.type !== CMD_READ || length < 9) throw new ProtocolError("Bad OFFSET_DATA chunk");
      // The 8-byte offset first, then the data straight into the result.
      this.dataChunkLength = length;
      this.chunkLength = 8;
      this.state = In.ChunkBody;
      return;
    }
    if (type === REPLY_TYPE_NONE) {
      if (length !== 0 || (flags & REPLY_FLAG_DONE) === 0) throw new ProtocolError("Bad NONE chunk");
      this.complete(handle, p);
      return;
    }
    if (length > MAX_SMALL_CHUNK)
      throw new ProtocolError(`Reply chunk type ${type} of ${length} bytes is too long`);
    this.state = In.ChunkBody;
  }

  private onChunkBody(body: Buffer): void {
    const p = this.target!;
    const handle = this.targetHandle;
    const done = (this.chunkFlags & REPLY_FLAG_DONE) !== 0;
    switch (this.chunkType) {
      case REPLY_TYPE_OFFSET_DATA: {
        const offset = readU64(body, 0);
        const dataLength = this.dataChunkLength - 8;
        if (offset < p.offset || offset + dataLength > p.offset + p.length)
          throw new ProtocolError(
            `OFFSET_DATA ${offset}+${dataLength} is outside the read ${p.offset}+${p.length}`,
          );
        p.covered += dataLength;
        this.dataAt = offset - p.offset;
        this.dataLeft = dataLength;
        this.state = In.ChunkData;
        return;
      }
      case REPLY_TYPE_OFFSET_HOLE: {
        if (p.type !== CMD_READ || body.length !== 12) throw new ProtocolError("Bad OFFSET_HOLE chunk");
        const offset = readU64(body, 0);
        const size = body.readUInt32BE(8);
        if (size === 0 || offset < p.offset || offset + size > p.offset + p.length)
          throw new ProtocolError(
            `OFFSET_HOLE ${offset}+${size} is outside the read ${p.offset}+${p.length}`,
          );
        p.data!.fill(0, offset - p.offset, offset - p.offset + size);
        p.covered += size;
        break;
      }
      case REPLY_TYPE_BLOCK_STATUS: {
        if (p.type !== CMD_BLOCK_STATUS || body.length < 12 || (body.length - 4) % 8 !== 0)
          throw new ProtocolError("Bad BLOCK_STATUS chunk");
        const id = body.readUInt32BE(0);
        const extents: ClientExtent[] = [];
        let at = p.offset;
        for (let i = 4; i < body.length; i += 8) {
          const length = body.readUInt32BE(i);
          if (length === 0) throw new ProtocolError("Block status extent of length 0");
          extents.push({ offset: at, length, flags: body.readUInt32BE(i + 4) });
          at += length;
        }
        p.status!.set(id, extents);
        break;
      }
      default: {
        if (!isErrorChunk(this.chunkType))
          throw new ProtocolError(`Unknown reply chunk type ${this.chunkType}`);
        const errno = body.length >= 4 ? body.readUInt32BE(0) : NBD_EINVAL;
        const msgLength = body.length >= 6 ? body.readUInt16BE(4) : 0;
        if (6 + msgLength > body.length)
          throw new ProtocolError("Error chunk message is longer than the chunk");
        const message = body.toString("utf8", 6, 6 + msgLength);
        p.error ??= new NbdErrno(
          errno,
          `NBD request failed: ${errnoName(errno)}${message ? `: ${message}` : ""}`,
        );
      }
    }
    if (done) this.complete(handle, p);
  }

  private complete(handle: number, p: Pending): void {
    this.pending.delete(handle);
    this.target = null;
    if (this.pending.size === 0) this.wakeIdle();
    if (p.error) return p.reject(p.error);
    if (p.type === CMD_READ) {
      if (this.negotiated.structured && p.covered !== p.length)
        return p.reject(new ProtocolError(`Server covered ${p.covered} of ${p.length} bytes of a read`));
      return p.resolve(p.data);
    }
    if (p.type === CMD_BLOCK_STATUS) return p.resolve(p.status);
    p.resolve(null);
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = this.closing ? new Error("NBD client disconnected") : err;
    for (const [handle, p] of this.pending) {
      this.pending.delete(handle);
      p.reject(new Error(`NBD request failed: ${errorMessage(this.failure)}`, { cause: this.failure }));
    }
    this.wakeIdle();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length < n) this.chunks = [Buffer.concat(this.chunks)];
    const all = this.chunks[0]!;
    const out = all.subarray(0, n);
    if (all.length === n) this.chunks.shift();
    else this.chunks[0] = all.subarray(n);
    this.buffered -= n;
    return out;
  }

  /** Moves up to `max` buffered bytes into `dest` at `at`; returns how many. */
  private copyInto(dest: Buffer, at: number, max: number): number {
    let copied = 0;
    while (copied < max && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const n = Math.min(first.length, max - copied);
      first.copy(dest, at + copied, 0, n);
      copied += n;
      if (n === first.length) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    }
    this.buffered -= copied;
    return copied;
  }
}

function open(target: ClientTarget, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error("NBD connect aborted"));
    const socket =
      "socketPath" in target
        ? netConnect({ path: target.socketPath })
        : netConnect({ host: target.host ?? "127.0.0.1", port: target.port, noDelay: true });
    const onError = (err: Error): void => {
      const where =
        "socketPath" in target ? target.socketPath : `${target.host ?? "127.0.0.1"}:${target.port}`;
      reject(
        new UserError(`Cannot connect to the NBD server at ${where}: ${err.message}`, 400, { cause: err }),
      );
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(socket);
    });
    signal?.addEventListener("abort", () => socket.destroy(new Error("NBD connect aborted")), { once: true });
  });
}
