/**
 * The scan tracker's memory of what the standby holds: one hash per chunk of a disk, for
 * the staging timeline named in the file header. A hash is written here only after the
 * replicator acknowledged the chunk durable, so a stale file only costs re-sending; it can
 * never hide a change. File: 16-byte magic+count header, timeline id (64 bytes, padded),
 * then count × u64 little-endian. Replaced atomically and durably (writeFileDurably).
 */
import { readFile } from "node:fs/promises";
import { writeFileDurably } from "../common/durable-file.js";
import { UNKNOWN_HASH } from "../common/chunk-hash.js";

const MAGIC = Buffer.from("LBHMAP01");
const HEADER = 16 + 64;

export class HashMap {
  private dirty = false;

  private constructor(
    private readonly path: string,
    public timelineId: string,
    readonly hashes: BigUint64Array,
  ) {}

  /** Loads the map, or an all-unknown one for `chunks` chunks if the file is missing or does not fit. */
  static async load(path: string, chunks: number): Promise<HashMap> {
    let buf: Buffer | undefined;
    try {
      buf = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (
      buf &&
      buf.length === HEADER + chunks * 8 &&
      buf.subarray(0, 8).equals(MAGIC) &&
      buf.readUInt32LE(8) === chunks
    ) {
      const timelineId = buf.subarray(16, HEADER).toString("utf8").replace(/\0+$/, "");
      const hashes = new BigUint64Array(chunks);
      for (let i = 0; i < chunks; i++) hashes[i] = buf.readBigUInt64LE(HEADER + i * 8);
      return new HashMap(path, timelineId, hashes);
    }
    return new HashMap(path, "", new BigUint64Array(chunks).fill(UNKNOWN_HASH));
  }

  get(i: number): bigint {
    return this.hashes[i] ?? UNKNOWN_HASH;
  }

  set(i: number, hash: bigint): void {
    this.hashes[i] = hash;
    this.dirty = true;
  }

  /** Forgets everything and says every chunk is `hash` on `timelineId`. */
  reset(timelineId: string, hash: bigint): void {
    this.timelineId = timelineId;
    this.hashes.fill(hash);
    this.dirty = true;
  }

  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const buf = Buffer.alloc(HEADER + this.hashes.length * 8);
    MAGIC.copy(buf, 0);
    buf.writeUInt32LE(this.hashes.length, 8);
    buf.write(this.timelineId.slice(0, 64), 16, "utf8");
    for (let i = 0; i < this.hashes.length; i++) buf.writeBigUInt64LE(this.hashes[i]!, HEADER + i * 8);
    await writeFileDurably(this.path, buf);
  }
}
