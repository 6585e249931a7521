/**
 * A hand-driven NBD client for hostile-client tests: it sends exactly the bytes a test
 * asks for (lying lengths, bad magics, payloads cut short) and reads replies one by one.
 */
import { connect, type Socket } from "node:net";
import { ByteReader } from "../byte-reader.js";
import {
  FLAG_C_FIXED_NEWSTYLE,
  FLAG_C_NO_ZEROES,
  INFO_BLOCK_SIZE,
  OPT_GO,
  OPT_STRUCTURED_REPLY,
  REP_ACK,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
  encodeInfoRequest,
  encodeOptionRequest,
  encodeRequestHeader,
  isOptionError,
} from "../protocol.js";

export type RawReply =
  | { readonly kind: "simple"; readonly errno: number; readonly handle: number }
  | {
      readonly kind: "chunk";
      readonly flags: number;
      readonly type: number;
      readonly handle: number;
      readonly payload: Buffer;
    };

export class RawNbdPeer {
  readonly closed: Promise<void>;

  private constructor(
    readonly socket: Socket,
    readonly reader: ByteReader,
  ) {
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
  }

  static async connect(socketPath: string): Promise<RawNbdPeer> {
    const socket = connect({ path: socketPath });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    socket.on("error", () => undefined);
    return new RawNbdPeer(socket, new ByteReader(socket));
  }

  /** Reads the greeting and answers with `clientFlags`. */
  async greet(clientFlags = FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES): Promise<number> {
    const hello = await this.reader.read(18);
    const reply = Buffer.alloc(4);
    reply.writeUInt32BE(clientFlags >>> 0);
    this.socket.write(reply);
    return hello.readUInt16BE(16);
  }

  sendOption(option: number, data?: Buffer): void {
    this.socket.write(encodeOptionRequest(option, data));
  }

  async readOptionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const head = await this.reader.read(20);
    const length = head.readUInt32BE(16);
    return {
      option: head.readUInt32BE(8),
      type: head.readUInt32BE(12),
      data: await this.reader.read(length),
    };
  }

  /** Greeting, structured replies (optional), NBD_OPT_GO; returns the transmission flags. */
  async go(exportName: string, structured = true): Promise<number> {
    await this.greet();
    if (structured) {
      this.sendOption(OPT_STRUCTURED_REPLY);
      const r = await this.readOptionReply();
      if (r.type !== REP_ACK) throw new Error(`Structured replies refused: ${r.type}`);
    }
    this.sendOption(OPT_GO, encodeInfoRequest(exportName, [INFO_BLOCK_SIZE]));
    let flags = 0;
    for (;;) {
      const r = await this.readOptionReply();
      if (r.type === REP_ACK) return flags;
      if (isOptionError(r.type))
        throw new Error(`NBD_OPT_GO refused: 0x${r.type.toString(16)} ${r.data.toString()}`);
      if (r.data.readUInt16BE(0) === 0) flags = r.data.readUInt16BE(10);
    }
  }

  request(
    type: number,
    flags: number,
    handle: number,
    offset: number,
    length: number,
    payload?: Buffer,
  ): void {
    const head = Buffer.alloc(28);
    encodeRequestHeader(head, 0, type, flags, 0, handle, offset, length);
    this.socket.write(payload ? Buffer.concat([head, payload]) : head);
  }

  /** Reads one simple reply or structured chunk (a simple READ reply's data is read by the caller). */
  async readReply(): Promise<RawReply> {
    const magic = (await this.reader.read(4)).readUInt32BE(0);
    if (magic === SIMPLE_REPLY_MAGIC) {
      const rest = await this.reader.read(12);
      return { kind: "simple", errno: rest.readUInt32BE(0), handle: rest.readUInt32BE(8) };
    }
    if (magic !== STRUCTURED_REPLY_MAGIC) throw new Error(`Unexpected reply magic 0x${magic.toString(16)}`);
    const rest = await this.reader.read(16);
    const length = rest.readUInt32BE(12);
    return {
      kind: "chunk",
      flags: rest.readUInt16BE(0),
      type: rest.readUInt16BE(2),
      handle: rest.readUInt32BE(8),
      payload: await this.reader.read(length),
    };
  }

  /** Resolves true if the server closes the connection within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const result = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The error number of a reply: a simple reply's, or an error chunk's (0 for success). */
export function replyErrno(r: RawReply): number {
  if (r.kind === "simple") return r.errno;
  return (r.type & 0x8000) !== 0 ? r.payload.readUInt32BE(0) : 0;
}
