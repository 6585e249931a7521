/**
 * A timeline's manifest: the small JSON document that says which layers hold which seqs,
 * up to which seq the journal has been rolled, the PITs and the branch base. It is the
 * only mutable file besides the active journal segment, and it is only ever replaced
 * atomically (write temp, fsync, rename, fsync directory) so a crash leaves the old or
 * the new one, never a mix.
 */
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { xxh64 } from "@node-rs/xxhash";
import { CorruptionError } from "../../common/errors.js";
import type { Compression } from "../codec/block-codec.js";
import type { BranchBase, DiskSpec, Pit } from "../staging-store.js";
import { writeFileDurably } from "../../common/durable-file.js";

export const MANIFEST_FILE = "manifest.json";
const MANIFEST_TMP = "manifest.json.tmp";

export const MANIFEST_FORMAT = 2;

/** A layer: its data file (frames) and index file, holding seqs (fromSeq, toSeq]. */
export interface LayerRef {
  readonly data: string;
  readonly index: string;
  readonly fromSeq: number;
  readonly toSeq: number;
}

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly id: string;
  readonly createdAt: number;
  readonly disks: readonly DiskSpec[];
  readonly base?: BranchBase;
  readonly flushedSeq: number;
  readonly lastTag: number | null;
  readonly layers: readonly LayerRef[];
  readonly pits: readonly Pit[];
  /**
   * Compaction has dropped versions that no read point needed in layers up to this seq:
   * below it, only the listed PITs, branch bases and the base seq read exactly. Absent: 0.
   */
  readonly gcHorizon?: number;
  /**
   * Id of the data key that seals every frame of this timeline (KeyRing.keyById finds it);
   * absent: frames are not encrypted (XXH64 only). Never the key itself.
   */
  readonly keyId?: string;
  /** Compression compaction seals packed layers with. */
  readonly compression: Compression;
}

function checksumOf(text: string): string {
  return xxh64(text).toString(16).padStart(16, "0");
}

export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const body = JSON.stringify(manifest);
  const text = `{"checksum":"${checksumOf(body)}","body":${body}}\n`;
  // Temp file manifest.json.tmp (readManifest removes a leftover one), fsync, rename, fsync dir.
  await writeFileDurably(join(dir, MANIFEST_FILE), text);
}

export async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST_FILE);
  await rm(join(dir, MANIFEST_TMP), { force: true });
  const text = await readFile(path, "utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CorruptionError(`Manifest is not valid JSON: ${path}`, { cause: err });
  }
  if (typeof parsed !== "object" || parsed === null || !("checksum" in parsed) || !("body" in parsed)) {
    throw new CorruptionError(`Manifest lacks checksum or body: ${path}`);
  }
  const body = JSON.stringify(parsed.body);
  if (parsed.checksum !== checksumOf(body)) {
    throw new CorruptionError(`Manifest checksum mismatch: ${path}`);
  }
  const manifest = parsed.body as Manifest;
  const format: unknown = (parsed.body as { format?: unknown }).format;
  if (format !== MANIFEST_FORMAT) {
    throw new CorruptionError(
      `Unsupported manifest format ${String(format)} in ${path}: this version reads format ` +
        `${MANIFEST_FORMAT} only; there is no upgrade from format 1: drop the timeline and resync`,
    );
  }
  return manifest;
}
