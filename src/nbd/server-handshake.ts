/**
 * The server's side of the fixed newstyle handshake: greeting, client flags, then option
 * haggling until NBD_OPT_EXPORT_NAME or a successful NBD_OPT_GO picks an export. Every
 * option is read whole (length checked first) and parsed against its own length, so a
 * length that lies gets NBD_REP_ERR_INVALID, never a read past the option. What does not
 * parse at the framing level (bad magic, unknown client flags, an option longer than
 * MAX_OPTION_BYTES) throws ProtocolError and the connection is closed.
 */
import type { Socket } from "node:net";
import { ProtocolError } from "../common/errors.js";
import type { ByteReader } from "./byte-reader.js";
import type { NbdExportBackend } from "./export-backend.js";
import {
  CONTEXT_BASE_ALLOCATION,
  FLAG_C_FIXED_NEWSTYLE,
  FLAG_C_NO_ZEROES,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  IHAVEOPT,
  INFO_BLOCK_SIZE,
  INFO_DESCRIPTION,
  INFO_NAME,
  OPTION_HEADER_BYTES,
  OPT_ABORT,
  OPT_EXPORT_NAME,
  OPT_GO,
  OPT_INFO,
  OPT_LIST,
  OPT_LIST_META_CONTEXT,
  OPT_SET_META_CONTEXT,
  OPT_STRUCTURED_REPLY,
  OptionDataReader,
  REP_ACK,
  REP_ERR_INVALID,
  REP_ERR_UNKNOWN,
  REP_ERR_UNSUP,
  REP_INFO,
  REP_META_CONTEXT,
  REP_SERVER,
  TF_CAN_MULTI_CONN,
  TF_HAS_FLAGS,
  TF_READ_ONLY,
  TF_SEND_CACHE,
  TF_SEND_DF,
  TF_SEND_FAST_ZERO,
  TF_SEND_FLUSH,
  TF_SEND_FUA,
  TF_SEND_TRIM,
  TF_SEND_WRITE_ZEROES,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoString,
  encodeMetaContextReply,
  encodeOptionReply,
  encodeServerReply,
  type BlockSizes,
} from "./protocol.js";
import type { RangeLocks } from "./range-locks.js";

/** Option data longer than this closes the connection (strings are at most 4 KiB). */
export const MAX_OPTION_BYTES = 64 * 1024;

/** An export as the server holds it. */
export interface ServedExport {
  readonly name: string;
  readonly backend: NbdExportBackend;
  readonly blockSizes: BlockSizes;
  /** Shared by every connection to the export: overlapping changes run in arrival order. */
  readonly locks: RangeLocks;
}

export interface ExportDirectory {
  lookup(name: string): ServedExport | undefined;
  list(): readonly ServedExport[];
}

/** What the handshake agreed for the transmission phase. */
export interface Negotiated {
  readonly export: ServedExport;
  readonly structured: boolean;
  readonly transmissionFlags: number;
  /** Selected metadata contexts by id (empty unless set for this very export). */
  readonly contexts: ReadonlyMap<number, string>;
}

export function transmissionFlags(backend: NbdExportBackend, structured: boolean): number {
  let flags = TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_SEND_CACHE;
  if (backend.readOnly) flags |= TF_READ_ONLY;
  else {
    flags |= TF_SEND_TRIM | TF_SEND_WRITE_ZEROES;
    if (backend.fastZero) flags |= TF_SEND_FAST_ZERO;
  }
  if (structured) flags |= TF_SEND_DF;
  if (backend.multiConn) flags |= TF_CAN_MULTI_CONN;
  return flags;
}

/** Metadata contexts an export offers, in id order (id = index + 1). */
function contextsOf(exp: ServedExport): string[] {
  return [CONTEXT_BASE_ALLOCATION, ...exp.backend.metaContexts];
}

class OptionError extends Error {
  constructor(
    readonly replyType: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Runs the handshake on `socket`. Resolves with the negotiated export, or null when the
 * client aborted; throws ProtocolError when the client broke the framing.
 */
export async function negotiate(
  socket: Socket,
  reader: ByteReader,
  exports: ExportDirectory,
  log: (message: string) => void,
): Promise<Negotiated | null> {
  socket.write(encodeGreeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
  const clientFlags = (await reader.read(4)).readUInt32BE(0);
  if ((clientFlags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) !== 0)
    throw new ProtocolError(`Client sent unknown handshake flags 0x${clientFlags.toString(16)}`);
  const fixed = (clientFlags & FLAG_C_FIXED_NEWSTYLE) !== 0;
  const noZeroes = (clientFlags & FLAG_C_NO_ZEROES) !== 0;

  let structured = false;
  let metaExport: string | null = null;
  let selected = new Map<number, string>();

  const reply = (option: number, type: number, data?: Buffer): void => {
    socket.write(encodeOptionReply(option, type, data));
  };

  for (;;) {
    const head = await reader.read(OPTION_HEADER_BYTES);
    if (head.readBigUInt64BE(0) !== IHAVEOPT)
      throw new ProtocolError(`Bad option magic 0x${head.readBigUInt64BE(0).toString(16)}`);
    const option = head.readUInt32BE(8);
    const length = head.readUInt32BE(12);
    if (length > MAX_OPTION_BYTES)
      throw new ProtocolError(`Option ${option} claims ${length} bytes of data (limit ${MAX_OPTION_BYTES})`);
    const data = await reader.read(length);

    if (option === OPT_EXPORT_NAME) {
      const name = data.toString("utf8");
      const exp = exports.lookup(name);
      if (!exp) throw new ProtocolError(`Client asked for unknown export "${name}" with NBD_OPT_EXPORT_NAME`);
      const flags = transmissionFlags(exp.backend, structured);
      socket.write(encodeExportNameReply(exp.backend.size, flags, noZeroes));
      return { export: exp, structured, transmissionFlags: flags, contexts: contextsFor(name) };
    }
    if (!fixed) throw new ProtocolError(`Option ${option} from a client without fixed newstyle`);

    try {
      switch (option) {
        case OPT_ABORT:
          reply(option, REP_ACK);
          return null;
        case OPT_LIST:
          if (length !== 0) throw new OptionError(REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
          for (const exp of exports.list())
            reply(option, REP_SERVER, encodeServerReply(exp.name, exp.backend.description ?? ""));
          reply(option, REP_ACK);
          break;
        case OPT_STRUCTURED_REPLY:
          if (length !== 0) throw new OptionError(REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
          if (structured) throw new OptionError(REP_ERR_INVALID, "Structured replies are already negotiated");
          structured = true;
          reply(option, REP_ACK);
          break;
        case OPT_INFO:
        case OPT_GO: {
          const { name, infos } = parseInfoRequest(data);
          const exp = exports.lookup(name);
          if (!exp) throw new OptionError(REP_ERR_UNKNOWN, `No export named "${name}"`);
          const flags = transmissionFlags(exp.backend, structured);
          reply(option, REP_INFO, encodeInfoExport(exp.backend.size, flags));
          if (infos.has(INFO_BLOCK_SIZE)) reply(option, REP_INFO, encodeInfoBlockSize(exp.blockSizes));
          if (infos.has(INFO_NAME)) reply(option, REP_INFO, encodeInfoString(INFO_NAME, exp.name));
          if (infos.has(INFO_DESCRIPTION) && exp.backend.description)
            reply(option, REP_INFO, encodeInfoString(INFO_DESCRIPTION, exp.backend.description));
          reply(option, REP_ACK);
          if (option === OPT_GO)
            return { export: exp, structured, transmissionFlags: flags, contexts: contextsFor(name) };
          break;
        }
        case OPT_LIST_META_CONTEXT:
        case OPT_SET_META_CONTEXT: {
          const set = option === OPT_SET_META_CONTEXT;
          if (set) {
            // Replaces the selection even when it fails.
            selected = new Map();
            metaExport = null;
          }
          if (!structured)
            throw new OptionError(
              REP_ERR_INVALID,
              "Negotiate NBD_OPT_STRUCTURED_REPLY before metadata contexts",
            );
          const { name, queries } = parseMetaContextRequest(data);
          const exp = exports.lookup(name);
          if (!exp) throw new OptionError(REP_ERR_UNKNOWN, `No export named "${name}"`);
          const offered = contextsOf(exp);
          const matches = matchContexts(offered, queries, set);
          for (const ctx of matches)
            reply(option, REP_META_CONTEXT, encodeMetaContextReply(set ? offered.indexOf(ctx) + 1 : 0, ctx));
          reply(option, REP_ACK);
          if (set) {
            metaExport = name;
            for (const ctx of matches) selected.set(offered.indexOf(ctx) + 1, ctx);
          }
          break;
        }
        default:
          throw new OptionError(REP_ERR_UNSUP, `Option ${option} is not supported`);
      }
    } catch (err) {
      if (!(err instanceof OptionError)) throw err;
      log(`option ${option} refused: ${err.message}`);
      reply(option, err.replyType, Buffer.from(err.message, "utf8"));
    }
  }

  function contextsFor(exportName: string): ReadonlyMap<number, string> {
    return metaExport === exportName ? selected : new Map();
  }
}

function parseInfoRequest(data: Buffer): { name: string; infos: Set<number> } {
  try {
    const r = new OptionDataReader(data);
    const name = r.string();
    const count = r.u16();
    const infos = new Set<number>();
    for (let i = 0; i < count; i++) infos.add(r.u16());
    if (r.remaining !== 0) throw new RangeError(`${r.remaining} bytes follow the information requests`);
    return { name, infos };
  } catch (err) {
    throw new OptionError(REP_ERR_INVALID, `Malformed NBD_OPT_INFO/GO: ${(err as Error).message}`);
  }
}

function parseMetaContextRequest(data: Buffer): { name: string; queries: string[] } {
  try {
    const r = new OptionDataReader(data);
    const name = r.string();
    const count = r.u32();
    if (count > r.remaining / 4) throw new RangeError(`${count} queries cannot fit in ${r.remaining} bytes`);
    const queries: string[] = [];
    for (let i = 0; i < count; i++) queries.push(r.string());
    if (r.remaining !== 0) throw new RangeError(`${r.remaining} bytes follow the queries`);
    for (const q of queries) if (!q.includes(":")) throw new RangeError(`Query "${q}" has no namespace`);
    return { name, queries };
  } catch (err) {
    throw new OptionError(REP_ERR_INVALID, `Malformed metadata context request: ${(err as Error).message}`);
  }
}

/**
 * Contexts matching `queries`. Listing: no query lists all, `ns:` lists a namespace. Setting:
 * only exact names select (an empty leaf selects nothing, as the spec asks). Unknown names
 * and namespaces are ignored.
 */
function matchContexts(offered: readonly string[], queries: readonly string[], set: boolean): string[] {
  if (queries.length === 0) return set ? [] : [...offered];
  const out = new Set<string>();
  for (const q of queries) {
    if (!set && q.endsWith(":")) {
      for (const ctx of offered) if (ctx.startsWith(q)) out.add(ctx);
    } else if (offered.includes(q)) out.add(q);
  }
  return [...out];
}
