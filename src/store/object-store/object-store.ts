/**
 * Where the staging store keeps its immutable files (layers and their indexes): one small
 * interface, with a local directory (the default), the S3 API and Azure Blob beside it.
 * The journal never goes through here: it stays on local disk, where fsync means durable.
 *
 * Keys are relative, slash-separated paths: each segment matches
 * `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`, at most 16 segments. Anything else (absolute
 * paths, "..", empty segments, backslashes) is rejected with a UserError before any I/O.
 *
 * Semantics every backend must meet (the conformance suite, object-store-conformance.ts,
 * checks each one):
 * - `put` is atomic and durable: once it resolves, the whole object is visible and
 *   survives a crash of this process; until then readers see the old object or none,
 *   never a part. Overwriting an existing key replaces it whole.
 * - `read` of a missing key rejects with ObjectNotFoundError; a range beyond the object's
 *   end rejects with a UserError (416-like) and returns nothing partial.
 * - `delete` is idempotent: deleting a missing key resolves.
 * - `list(prefix)` returns every object whose key starts with `prefix`, sorted by key,
 *   across any number of backend pages.
 * - Every method honours its AbortSignal.
 */

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
}

/** An object's contents: bytes in memory, or a local file streamed (and, locally, linked) in. */
export type ObjectBody = Buffer | { readonly file: string };

export interface ObjectStore {
  /** For errors and logs, with no secret in it: "local:/var/lib/lifeboat/store", "s3://bucket/prefix", "azure://account/container/prefix". */
  readonly description: string;
  put(key: string, body: ObjectBody, signal?: AbortSignal): Promise<void>;
  /** Reads `length` bytes at `offset`. */
  read(key: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer>;
  /** Size of the object, or undefined when there is none. */
  head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined>;
  list(prefix: string, signal?: AbortSignal): Promise<ObjectInfo[]>;
  delete(key: string, signal?: AbortSignal): Promise<void>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}

export class ObjectNotFoundError extends Error {
  constructor(
    readonly key: string,
    where: string,
  ) {
    super(`Object ${key} does not exist in ${where}`);
    this.name = "ObjectNotFoundError";
  }
}
