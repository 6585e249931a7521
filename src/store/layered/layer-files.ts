/**
 * Where a timeline's immutable layer files live (data files and index files): the narrow
 * interface the layers, the roll and compaction use, so that the same code can keep them in
 * the timeline's directory (LocalLayerFiles, the default) or in an object store (S3 API,
 * Azure Blob) through src/store/object-store. The journal and the manifest never go through
 * here: they stay on local disk, where fsync means durable.
 *
 * Contract:
 * - `put` stores a complete local file under `name`, durably, once the promise resolves; a
 *   reader sees the whole file or none. The local file must already be synced. With "link"
 *   the local file keeps its name (an L0 layer's data file is the journal segment, which the
 *   journal unlinks later); with "move" it is consumed.
 * - Files are never modified after `put`; `put` of an existing name replaces it with the
 *   same content (a retried roll).
 * - `open` of a missing name rejects with a CorruptionError naming it; a read beyond the
 *   end rejects with a CorruptionError.
 * - `delete` is idempotent. A delete need not be durable at once: a file that comes back
 *   after a crash is unnamed by the manifest and removed at the next open.
 * - `list` returns the names of stored layer files (the caller filters them).
 */
import type { RandomReader } from "./read-plan.js";

export interface LayerFile extends RandomReader {
  /** For error messages: a path, or an object key with its store. */
  readonly name: string;
  readonly size: number;
}

export interface LayerFiles {
  /** Where the files are, for errors and logs. */
  readonly description: string;
  open(name: string, signal?: AbortSignal): Promise<LayerFile>;
  put(name: string, localPath: string, how: "link" | "move", signal?: AbortSignal): Promise<void>;
  list(signal?: AbortSignal): Promise<string[]>;
  delete(name: string, signal?: AbortSignal): Promise<void>;
}
