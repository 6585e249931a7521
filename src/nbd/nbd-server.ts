/**
 * An NBD server for named exports, on a Unix socket (default; created with mode 0600) or
 * TCP (bound to 127.0.0.1 unless told otherwise). Each connection runs the fixed newstyle
 * handshake (`server-handshake.ts`) and then the transmission phase (`server-session.ts`).
 * The server does not own the backends: `close()` stops serving and waits for the
 * requests in flight, and the caller closes its backends afterwards.
 */
import { chmod, lstat, mkdtemp, rename, rmdir, unlink } from "node:fs/promises";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { basename, dirname, join } from "node:path";
import { UserError, errorMessage } from "../common/errors.js";
import { logger, type Logger } from "../common/log.js";
import { ByteReader } from "./byte-reader.js";
import type { NbdExportBackend } from "./export-backend.js";
import { MAX_PAYLOAD_BYTES, type BlockSizes } from "./protocol.js";
import { RangeLocks } from "./range-locks.js";
import { negotiate, type ExportDirectory, type ServedExport } from "./server-handshake.js";
import { ServerSession, type SessionLimits } from "./server-session.js";

export const DEFAULT_BLOCK_SIZES: BlockSizes = { minimum: 1, preferred: 4096, maximum: MAX_PAYLOAD_BYTES };

export interface NbdServerOptions {
  readonly log?: Logger;
  /** A client must finish the handshake within this time (default 30 s). */
  readonly handshakeTimeoutMs?: number;
  /** Per connection (default 64 requests, 64 MiB). */
  readonly maxInflightRequests?: number;
  readonly maxInflightBytes?: number;
}

export interface ExportOptions {
  /** Advertised and enforced block sizes; default min 1, preferred 4096, max 32 MiB. */
  readonly blockSizes?: Partial<BlockSizes>;
}

export type ListenTarget =
  { readonly socketPath: string } | { readonly port: number; readonly host?: string };

export class NbdServer implements ExportDirectory {
  private readonly exports = new Map<string, ServedExport>();
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<Promise<void>>();
  private readonly transmitting = new Map<Socket, ServerSession>();
  private readonly log: Logger;
  private readonly limits: SessionLimits;
  private readonly handshakeTimeoutMs: number;
  private server: Server | null = null;
  private socketPath: string | null = null;
  private nextConnection = 1;

  constructor(options: NbdServerOptions = {}) {
    this.log = options.log ?? logger("nbd");
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 30_000;
    this.limits = {
      maxInflightRequests: options.maxInflightRequests ?? 64,
      maxInflightBytes: options.maxInflightBytes ?? 64 * 1024 * 1024,
    };
  }

  /** Serves `backend` as export `name` (the empty name is the default export). */
  addExport(name: string, backend: NbdExportBackend, options: ExportOptions = {}): void {
    if (Buffer.byteLength(name) > 4096)
      throw new UserError(`Export name is longer than 4096 bytes: ${name.slice(0, 40)}...`);
    if (this.exports.has(name)) throw new UserError(`Export "${name}" is already served`, 409);
    const blockSizes = { ...DEFAULT_BLOCK_SIZES, ...options.blockSizes };
    checkBlockSizes(name, blockSizes);
    this.exports.set(name, { name, backend, blockSizes, locks: new RangeLocks() });
  }

  /** Stops offering `name` to new connections; connections already using it go on. */
  removeExport(name: string): boolean {
    return this.exports.delete(name);
  }

  lookup(name: string): ServedExport | undefined {
    return this.exports.get(name);
  }

  list(): readonly ServedExport[] {
    return [...this.exports.values()];
  }

  /** Listens; resolves with the socket path or the TCP address actually bound. */
  async listen(target: ListenTarget): Promise<string | AddressInfo> {
    if (this.server) throw new Error("NbdServer is already listening");
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    server.on("error", (err) => this.log(`server error: ${err.message}`));
    if ("socketPath" in target) {
      await listenUnix(server, target.socketPath);
      this.server = server;
      this.socketPath = target.socketPath;
      this.log(`serving ${this.exports.size} export(s) on unix socket ${target.socketPath}`);
      return target.socketPath;
    }
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port: target.port, host: target.host ?? "127.0.0.1" }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    this.log(`serving ${this.exports.size} export(s) on tcp ${address.address}:${address.port}`);
    return address;
  }

  /** Number of open connections. */
  get connections(): number {
    return this.sockets.size;
  }

  /**
   * Stops listening and ends every connection: those in the transmission phase read no more
   * requests, finish and answer the ones in flight, and close (dropped after `graceMs`);
   * those still in the handshake are dropped at once.
   */
  async close(graceMs = 2000): Promise<void> {
    const server = this.server;
    this.server = null;
    // server.close() waits for every connection to end, so end them too.
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const s of this.sockets) {
      const session = this.transmitting.get(s);
      if (session) session.shutdown();
      else s.destroy();
    }
    const timer = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, graceMs);
    await closed;
    await Promise.all(this.sessions);
    clearTimeout(timer);
    if (this.socketPath) {
      await unlink(this.socketPath).catch(() => undefined);
      this.socketPath = null;
    }
  }

  private accept(socket: Socket): void {
    const id = this.nextConnection++;
    const log = (message: string): void => this.log(`conn ${id}: ${message}`);
    this.sockets.add(socket);
    socket.on("error", () => undefined); // reported by the session or the handshake
    const session = this.serve(socket, log)
      .catch((err: unknown) => {
        log(`closing: ${errorMessage(err)}`);
        socket.destroy();
      })
      .finally(() => {
        this.sockets.delete(socket);
        this.sessions.delete(session);
      });
    this.sessions.add(session);
  }

  private async serve(socket: Socket, log: (message: string) => void): Promise<void> {
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    const reader = new ByteReader(socket);
    const timer = setTimeout(() => {
      log(`handshake not finished after ${this.handshakeTimeoutMs} ms`);
      socket.destroy();
    }, this.handshakeTimeoutMs);
    let negotiated;
    try {
      negotiated = await negotiate(socket, reader, this, log);
    } finally {
      clearTimeout(timer);
    }
    if (!negotiated) {
      socket.end();
      await closed;
      return;
    }
    const exp = negotiated.export;
    log(
      `export "${exp.name}" (${exp.backend.size} bytes${exp.backend.readOnly ? ", read-only" : ""}` +
        `${negotiated.structured ? ", structured replies" : ""}` +
        `${negotiated.contexts.size > 0 ? `, contexts ${[...negotiated.contexts.values()].join(" ")}` : ""})`,
    );
    const session = new ServerSession(socket, negotiated, this.limits, log);
    this.transmitting.set(socket, session);
    try {
      session.start(reader.detach());
      await session.done;
    } finally {
      this.transmitting.delete(socket);
    }
  }
}

function checkBlockSizes(name: string, b: BlockSizes): void {
  const pow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
  if (!pow2(b.minimum) || b.minimum > 65536)
    throw new UserError(
      `Export "${name}": minimum block size ${b.minimum} must be a power of two up to 65536`,
    );
  if (!pow2(b.preferred) || b.preferred < Math.max(b.minimum, 512))
    throw new UserError(
      `Export "${name}": preferred block size ${b.preferred} must be a power of two of at least 512 and the minimum`,
    );
  if (b.maximum < b.preferred || b.maximum % b.minimum !== 0 || b.maximum > MAX_PAYLOAD_BYTES)
    throw new UserError(
      `Export "${name}": maximum block size ${b.maximum} must be a multiple of the minimum, at least the preferred, at most ${MAX_PAYLOAD_BYTES}`,
    );
}

/**
 * Binds a Unix socket that nobody else can reach: it is created in a fresh 0700 directory,
 * set to 0600, and only then renamed to `path`. A stale socket at `path` is replaced;
 * anything else there is an error.
 */
async function listenUnix(server: Server, path: string): Promise<void> {
  const existing = await lstat(path).catch(() => null);
  if (existing) {
    if (!existing.isSocket())
      throw new UserError(`Cannot listen on ${path}: a file that is not a socket is there`, 409);
    await unlink(path);
  }
  const dir = await mkdtemp(join(dirname(path), `.${basename(path)}.`));
  const tmp = join(dir, "s");
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(tmp, () => {
        server.off("error", reject);
        resolve();
      });
    });
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (err) {
    server.close();
    throw new UserError(`Cannot listen on unix socket ${path}: ${errorMessage(err)}`, 400, { cause: err });
  } finally {
    await rmdir(dir).catch(() => undefined);
  }
}
