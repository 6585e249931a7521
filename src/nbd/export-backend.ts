/**
 * What the NBD server serves: one `NbdExportBackend` per named export. The server checks
 * every request against the export's size, flags and block sizes before it calls the
 * backend, so a backend only sees in-range requests; it never parses anything a client
 * sent. Implementations: `file-backend.ts` (a file or block device); decorators wrap one
 * (`tracked-backend.ts`: dirty map and write hook).
 *
 * Contract (what "done" means when a promise resolves):
 * - `write`, `trim`, `writeZeroes`: the change is applied, so a later `read` on any
 *   connection returns it. With `fua` it is also durable (survives power loss).
 * - `flush`: every change whose promise resolved before `flush` was called is durable.
 *   (The server replies to a write only after its promise resolved, so "every write
 *   completed before a flush is durable before its reply".)
 * - The server never has two overlapping mutating calls (write, trim, writeZeroes) in flight
 *   on one export: overlapping ones run in arrival order, so a hook sees the same order as
 *   the disk. Reads and non-overlapping writes run concurrently.
 * - A failure rejects with an Error; `NbdErrno` picks the error number the client sees
 *   (otherwise Node's `code` is mapped: ENOSPC/EDQUOT/EFBIG → ENOSPC, EROFS/EPERM/EACCES →
 *   EPERM, anything else → EIO). A rejected write may have been applied in part, as on a
 *   disk; a write whose payload did not fully arrive is never passed to the backend.
 */
import type { StatusExtent } from "./protocol.js";

export type { StatusExtent } from "./protocol.js";

/** A byte range of the export. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export interface WriteZeroesOptions {
  readonly fua: boolean;
  /** The range must stay allocated (NBD_CMD_FLAG_NO_HOLE): write zeros, do not punch. */
  readonly noHole: boolean;
  /** Fail at once with NbdErrno(ENOTSUP) unless zeroing is faster than writing (FAST_ZERO). */
  readonly fast: boolean;
}

export interface NbdExportBackend {
  /** Export size in bytes; fixed while served. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Shown by NBD_INFO_DESCRIPTION and NBD_OPT_LIST. */
  readonly description?: string | undefined;
  /** Flush and FUA on one connection cover writes made on every connection (NBD_FLAG_CAN_MULTI_CONN). */
  readonly multiConn: boolean;
  /** NBD_CMD_FLAG_FAST_ZERO can ever succeed (the server advertises it; the backend still decides per request). */
  readonly fastZero: boolean;
  /**
   * Metadata contexts this export answers besides `base:allocation` (which every export
   * answers), e.g. `lifeboat:dirty`.
   */
  readonly metaContexts: readonly string[];

  /**
   * Fills all of `into` with the bytes at `offset`. May return the ranges (absolute
   * offsets, inside the request) it knows read as zeros, so the server can send them as
   * holes; they must be filled with zeros in `into` as well. Returns null when it knows none.
   */
  read(offset: number, into: Buffer): Promise<readonly ByteRange[] | null>;

  /** Writes `data` at `offset`. The server keeps `data` unchanged until this resolves. */
  write(offset: number, data: Buffer, fua: boolean): Promise<void>;

  flush(): Promise<void>;

  /** The client no longer needs the range. We make it read as zeros (deterministic for replication). */
  trim(offset: number, length: number, fua: boolean): Promise<void>;

  writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void>;

  /**
   * Status of `[offset, offset+length)` in `context` (`base:allocation` or one of
   * `metaContexts`): consecutive extents from `offset`, at least one, covering at most
   * `length` bytes (fewer is allowed; the client asks again for the rest).
   */
  blockStatus(offset: number, length: number, context: string): Promise<readonly StatusExtent[]>;

  /** Optional read-ahead hint (NBD_CMD_CACHE). */
  cache?(offset: number, length: number): Promise<void>;

  /** Releases what the backend holds; the server calls it when the export is removed. */
  close(): Promise<void>;
}

/**
 * One change to an export, in the order the backend applied it: what the intercept tracker
 * queues for replication. `data` is only valid until the hook's promise resolves (copy it
 * to keep it).
 */
export type ExportChange =
  | { readonly kind: "data"; readonly offset: number; readonly data: Buffer }
  | { readonly kind: "zero"; readonly offset: number; readonly length: number };

/**
 * Called by `TrackedBackend` for every change before the client gets its reply: the
 * intercept tracker queues the change for replication (or, in synchronous mode, waits
 * until the standby holds it durably). A rejection fails the client's request with EIO;
 * the change is then on the local disk but the client was told it failed, as when a disk
 * write fails half-way.
 */
export interface ExportWriteHook {
  changed(change: ExportChange): Promise<void>;
  /** The client flushed: everything passed to `changed` before is durable locally. */
  flushed?(): Promise<void>;
}

/** An error with the NBD error number the client should see (NBD_EINVAL, NBD_ENOTSUP, ...). */
export class NbdErrno extends Error {
  constructor(
    readonly errno: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "NbdErrno";
  }
}
