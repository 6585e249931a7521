/**
 * The client's side of the fixed newstyle handshake: structured replies, metadata contexts,
 * then NBD_OPT_GO (with a fallback to NBD_OPT_EXPORT_NAME for servers without it). Also
 * NBD_OPT_LIST for listing a server's exports.
 */
import type { Socket } from "node:net";
import { ProtocolError, UserError } from "../common/errors.js";
import type { ByteReader } from "./byte-reader.js";
import {
  FLAG_C_FIXED_NEWSTYLE,
  FLAG_C_NO_ZEROES,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  IHAVEOPT,
  INFO_BLOCK_SIZE,
  INFO_EXPORT,
  NBD_MAGIC,
  OPTION_REPLY_HEADER_BYTES,
  OPTION_REPLY_MAGIC,
  OPT_ABORT,
  OPT_EXPORT_NAME,
  OPT_GO,
  OPT_LIST,
  OPT_SET_META_CONTEXT,
  OPT_STRUCTURED_REPLY,
  REP_ACK,
  REP_ERR_UNKNOWN,
  REP_ERR_UNSUP,
  REP_INFO,
  REP_META_CONTEXT,
  REP_SERVER,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOptionRequest,
  isOptionError,
  readU64,
  type BlockSizes,
} from "./protocol.js";

const MAX_OPTION_REPLY_BYTES = 64 * 1024;

export interface ClientNegotiated {
  readonly size: number;
  readonly transmissionFlags: number;
  readonly structured: boolean;
  /** Context name → id for the contexts the server selected. */
  readonly contexts: ReadonlyMap<string, number>;
  /** Null when the server sent none (defaults apply: min 1, preferred 4096). */
  readonly blockSizes: BlockSizes | null;
}

export interface HandshakeOptions {
  readonly exportName: string;
  readonly structuredReplies: boolean;
  readonly metaContexts: readonly string[];
}

interface OptionReply {
  readonly type: number;
  readonly data: Buffer;
}

async function readOptionReply(reader: ByteReader, option: number): Promise<OptionReply> {
  const head = await reader.read(OPTION_REPLY_HEADER_BYTES);
  if (head.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC)
    throw new ProtocolError("Server sent a bad option reply magic");
  if (head.readUInt32BE(8) !== option)
    throw new ProtocolError(`Server answered option ${head.readUInt32BE(8)} while we asked ${option}`);
  const length = head.readUInt32BE(16);
  if (length > MAX_OPTION_REPLY_BYTES) throw new ProtocolError(`Option reply of ${length} bytes is too long`);
  return { type: head.readUInt32BE(12), data: await reader.read(length) };
}

function optionFailure(what: string, reply: OptionReply): Error {
  const text = reply.data.toString("utf8");
  return new ProtocolError(
    `${what} failed with reply 0x${reply.type.toString(16)}${text ? `: ${text}` : ""}`,
  );
}

/** Greeting and client flags; returns whether the server skips the 124 zero bytes. */
async function greet(socket: Socket, reader: ByteReader): Promise<boolean> {
  const hello = await reader.read(18);
  if (hello.readBigUInt64BE(0) !== NBD_MAGIC)
    throw new ProtocolError("Peer is not an NBD server (no NBDMAGIC)");
  if (hello.readBigUInt64BE(8) !== IHAVEOPT)
    throw new ProtocolError("NBD server speaks the oldstyle handshake, which this client does not support");
  const flags = hello.readUInt16BE(16);
  if ((flags & FLAG_FIXED_NEWSTYLE) === 0)
    throw new ProtocolError("NBD server does not support fixed newstyle");
  const noZeroes = (flags & FLAG_NO_ZEROES) !== 0;
  const reply = Buffer.alloc(4);
  reply.writeUInt32BE(FLAG_C_FIXED_NEWSTYLE | (noZeroes ? FLAG_C_NO_ZEROES : 0));
  socket.write(reply);
  return noZeroes;
}

export async function clientHandshake(
  socket: Socket,
  reader: ByteReader,
  options: HandshakeOptions,
): Promise<ClientNegotiated> {
  const noZeroes = await greet(socket, reader);
  const name = options.exportName;

  let structured = false;
  if (options.structuredReplies || options.metaContexts.length > 0) {
    socket.write(encodeOptionRequest(OPT_STRUCTURED_REPLY));
    const r = await readOptionReply(reader, OPT_STRUCTURED_REPLY);
    if (r.type === REP_ACK) structured = true;
    else if (!isOptionError(r.type)) throw optionFailure("NBD_OPT_STRUCTURED_REPLY", r);
  }

  const contexts = new Map<string, number>();
  if (options.metaContexts.length > 0) {
    if (!structured)
      throw new UserError("The NBD server refused structured replies, so metadata contexts are unavailable");
    socket.write(
      encodeOptionRequest(OPT_SET_META_CONTEXT, encodeMetaContextRequest(name, options.metaContexts)),
    );
    for (;;) {
      const r = await readOptionReply(reader, OPT_SET_META_CONTEXT);
      if (r.type === REP_ACK) break;
      if (r.type !== REP_META_CONTEXT || r.data.length < 4)
        throw optionFailure("NBD_OPT_SET_META_CONTEXT", r);
      contexts.set(r.data.toString("utf8", 4), r.data.readUInt32BE(0));
    }
    const missing = options.metaContexts.filter((c) => !contexts.has(c));
    if (missing.length > 0)
      throw new UserError(
        `NBD export "${name}" does not offer metadata context ${missing.join(", ")}` +
          ` (it offered: ${[...contexts.keys()].join(", ") || "none"})`,
        404,
      );
  }

  socket.write(encodeOptionRequest(OPT_GO, encodeInfoRequest(name, [INFO_BLOCK_SIZE])));
  let size: number | null = null;
  let transmissionFlags = 0;
  let blockSizes: BlockSizes | null = null;
  for (;;) {
    const r = await readOptionReply(reader, OPT_GO);
    if (r.type === REP_INFO && r.data.length >= 2) {
      const info = r.data.readUInt16BE(0);
      if (info === INFO_EXPORT && r.data.length === 12) {
        size = readU64(r.data, 2);
        transmissionFlags = r.data.readUInt16BE(10);
      } else if (info === INFO_BLOCK_SIZE && r.data.length === 14) {
        blockSizes = {
          minimum: r.data.readUInt32BE(2),
          preferred: r.data.readUInt32BE(6),
          maximum: r.data.readUInt32BE(10),
        };
      }
      continue;
    }
    if (r.type === REP_ACK) {
      if (size === null) throw new ProtocolError("NBD server accepted NBD_OPT_GO without NBD_INFO_EXPORT");
      return { size, transmissionFlags, structured, contexts, blockSizes };
    }
    if (r.type === REP_ERR_UNKNOWN) throw new UserError(`NBD server has no export named "${name}"`, 404);
    if (r.type === REP_ERR_UNSUP) break;
    throw optionFailure(`NBD_OPT_GO for export "${name}"`, r);
  }

  // Servers without NBD_OPT_GO: the old way, which cannot report errors (the server hangs up).
  socket.write(encodeOptionRequest(OPT_EXPORT_NAME, Buffer.from(name, "utf8")));
  const reply = await reader.read(noZeroes ? 10 : 134);
  return {
    size: readU64(reply, 0),
    transmissionFlags: reply.readUInt16BE(8),
    structured,
    contexts,
    blockSizes: null,
  };
}

export interface ListedExport {
  readonly name: string;
  readonly description: string;
}

/** NBD_OPT_LIST, then NBD_OPT_ABORT. */
export async function listExports(socket: Socket, reader: ByteReader): Promise<ListedExport[]> {
  await greet(socket, reader);
  socket.write(encodeOptionRequest(OPT_LIST));
  const out: ListedExport[] = [];
  for (;;) {
    const r = await readOptionReply(reader, OPT_LIST);
    if (r.type === REP_ACK) break;
    if (r.type !== REP_SERVER || r.data.length < 4) throw optionFailure("NBD_OPT_LIST", r);
    const n = r.data.readUInt32BE(0);
    if (n > r.data.length - 4) throw new ProtocolError("NBD_REP_SERVER name length exceeds the reply");
    out.push({ name: r.data.toString("utf8", 4, 4 + n), description: r.data.toString("utf8", 4 + n) });
  }
  socket.write(encodeOptionRequest(OPT_ABORT));
  await readOptionReply(reader, OPT_ABORT).catch(() => undefined);
  return out;
}
