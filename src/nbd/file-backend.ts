/**
 * An NBD export over a regular file or a block device, with positioned I/O on one fs
 * FileHandle shared by every connection (so flush on one connection covers writes from all:
 * multi-conn is safe).
 *
 * - FUA: write, then fdatasync; flush: fdatasync. Syncs are grouped (SyncBatcher): a sync
 *   that starts after a write completed covers it, so "every write completed before a flush
 *   is durable before its reply".
 * - trim and write-zeroes: on a regular file, ranges of at least 1 MiB are punched (or
 *   zero-ranged when NO_HOLE is set) with util-linux fallocate, since Node cannot call
 *   fallocate(2); smaller ranges, block devices, and filesystems without the mode get zeros
 *   written. FAST_ZERO succeeds only where fallocate applies, else ENOTSUP.
 * - base:allocation: Node exposes neither SEEK_DATA/SEEK_HOLE nor FIEMAP, so the backend
 *   reads the range (at most STATUS_SCAN_BYTES per request) and reports blocks that read as
 *   all zeros as HOLE|ZERO (safe: a hole only warns that a write may need space) and the
 *   rest as allocated data. A file with no blocks allocated at all is one hole, unread.
 *   Reads report zero runs of at least 64 KiB, which the server sends as holes.
 * - Hot path: I/O goes through fs's callback API on the FileHandle's descriptor (the
 *   promise API costs about a fifth of the IOPS). Writes of at most 64 KiB are issued
 *   inline on the event loop (a buffered pwrite into the page cache takes microseconds,
 *   less than the hop to libuv's thread pool and back); if one ever takes longer than 2 ms
 *   (the kernel throttling dirty pages), writes go through the thread pool for the next
 *   second so that one slow disk does not stall every connection. `inlineWrites: false`
 *   turns this off.
 */
import { constants, read as fsRead, write as fsWrite, writeSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { open, readFile, type FileHandle } from "node:fs/promises";
import {
  NbdErrno,
  type ByteRange,
  type NbdExportBackend,
  type WriteZeroesOptions,
} from "./export-backend.js";
import { FallocateUnavailable, fallocateRange, type FallocateMode } from "./fallocate.js";
import {
  CONTEXT_BASE_ALLOCATION,
  NBD_EINVAL,
  NBD_ENOTSUP,
  STATE_HOLE,
  STATE_ZERO,
  type StatusExtent,
} from "./protocol.js";
import { SyncBatcher } from "./sync-batcher.js";
import { scanZeroRuns, zeroRanges } from "./zero-scan.js";

/** Ranges at least this large are worth a fallocate process; smaller ones get zeros written. */
const FALLOCATE_MIN_BYTES = 1024 * 1024;
/** base:allocation reads at most this much per request and answers for what it read. */
const STATUS_SCAN_BYTES = 8 * 1024 * 1024;
const ZERO_GRANULARITY = 4096;
const READ_HOLE_MIN_BYTES = 64 * 1024;
const ZEROS = Buffer.alloc(1024 * 1024);
const INLINE_WRITE_MAX_BYTES = 64 * 1024;
const INLINE_SLOW_MS = 2;
const INLINE_BACKOFF_MS = 1000;
const RESOLVED: Promise<void> = Promise.resolve();

export interface FileBackendOptions {
  readonly readOnly?: boolean;
  readonly description?: string;
  /** Small writes run inline on the event loop while they stay fast (default true). */
  readonly inlineWrites?: boolean;
}

export class FileBackend implements NbdExportBackend {
  readonly multiConn = true;
  readonly metaContexts: readonly string[] = [];
  readonly description: string;
  private readonly syncer: SyncBatcher;
  /** Cleared when fallocate is missing or the filesystem refuses a mode. */
  private canFallocate: Record<FallocateMode, boolean>;
  private readonly fd: number;
  private readonly inlineWrites: boolean;
  /** performance.now() before which small writes go to the thread pool (after a slow one). */
  private inlineOffUntil = 0;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly size: number,
    readonly readOnly: boolean,
    private readonly regularFile: boolean,
    options: FileBackendOptions,
  ) {
    this.description = options.description ?? path;
    this.fd = fh.fd;
    this.inlineWrites = options.inlineWrites ?? true;
    this.syncer = new SyncBatcher(() => fh.datasync());
    this.canFallocate = { "punch-hole": regularFile, "zero-range": regularFile };
  }

  /** Opens `path` (a regular file or a block device) for serving. */
  static async open(path: string, options: FileBackendOptions = {}): Promise<FileBackend> {
    const readOnly = options.readOnly ?? false;
    let fh: FileHandle;
    try {
      fh = await open(path, readOnly ? constants.O_RDONLY : constants.O_RDWR);
    } catch (err) {
      throw new Error(`Cannot open ${path} for an NBD export: ${(err as Error).message}`, { cause: err });
    }
    try {
      const st = await fh.stat();
      let size: number;
      if (st.isFile()) size = st.size;
      else if (st.isBlockDevice()) size = await blockDeviceSize(st.rdev);
      else throw new Error(`Cannot serve ${path} over NBD: it is neither a regular file nor a block device`);
      return new FileBackend(fh, path, size, readOnly, st.isFile(), options);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  get fastZero(): boolean {
    return this.canFallocate["punch-hole"] || this.canFallocate["zero-range"];
  }

  async read(offset: number, into: Buffer): Promise<readonly ByteRange[] | null> {
    await this.readFully(offset, into);
    return into.length >= READ_HOLE_MIN_BYTES
      ? zeroRanges(into, offset, ZERO_GRANULARITY, READ_HOLE_MIN_BYTES)
      : null;
  }

  write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    if (
      this.inlineWrites &&
      data.length <= INLINE_WRITE_MAX_BYTES &&
      performance.now() >= this.inlineOffUntil
    ) {
      const started = performance.now();
      try {
        for (let done = 0; done < data.length;) {
          const n = writeSync(this.fd, data, done, data.length - done, offset + done);
          if (n === 0) throw new Error(`Write at ${offset + done} of ${this.path} wrote nothing`);
          done += n;
        }
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      const took = performance.now() - started;
      if (took > INLINE_SLOW_MS) this.inlineOffUntil = started + took + INLINE_BACKOFF_MS;
      return fua ? this.syncer.sync() : RESOLVED;
    }
    return this.writeAsync(offset, data, fua);
  }

  private async writeAsync(offset: number, data: Buffer, fua: boolean): Promise<void> {
    for (let done = 0; done < data.length;) {
      const n = await pwrite(this.fd, data, done, data.length - done, offset + done);
      if (n === 0) throw new Error(`Write at ${offset + done} of ${this.path} wrote nothing`);
      done += n;
    }
    if (fua) await this.syncer.sync();
  }

  flush(): Promise<void> {
    return this.syncer.sync();
  }

  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    await this.zero(offset, length, "punch-hole", false);
    if (fua) await this.syncer.sync();
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    await this.zero(offset, length, options.noHole ? "zero-range" : "punch-hole", options.fast);
    if (options.fua) await this.syncer.sync();
  }

  async blockStatus(offset: number, length: number, context: string): Promise<readonly StatusExtent[]> {
    if (context !== CONTEXT_BASE_ALLOCATION)
      throw new NbdErrno(NBD_EINVAL, `Unknown metadata context ${context}`);
    if (this.regularFile && (await this.fh.stat()).blocks === 0)
      return [{ length, flags: STATE_HOLE | STATE_ZERO }];
    const scan = Buffer.allocUnsafe(Math.min(length, STATUS_SCAN_BYTES));
    await this.readFully(offset, scan);
    return scanZeroRuns(scan, offset, ZERO_GRANULARITY).map((run) => ({
      length: run.length,
      flags: run.zero ? STATE_HOLE | STATE_ZERO : 0,
    }));
  }

  async close(): Promise<void> {
    await this.syncer.idle();
    await this.fh.close();
  }

  private async readFully(offset: number, into: Buffer): Promise<void> {
    for (let done = 0; done < into.length;) {
      const n = await pread(this.fd, into, done, into.length - done, offset + done);
      if (n === 0)
        throw new Error(`Read at ${offset + done} of ${this.path} hit its end (size ${this.size})`);
      done += n;
    }
  }

  /** Makes the range read as zeros: fallocate when large enough and available, else written zeros. */
  private async zero(offset: number, length: number, mode: FallocateMode, fast: boolean): Promise<void> {
    if (length >= FALLOCATE_MIN_BYTES && this.canFallocate[mode]) {
      try {
        await fallocateRange(this.fd, mode, offset, length);
        return;
      } catch (err) {
        if (!(err instanceof FallocateUnavailable)) throw err;
        this.canFallocate[mode] = false;
      }
    }
    if (fast)
      throw new NbdErrno(NBD_ENOTSUP, `Zeroing ${length} bytes at ${offset} is no faster than writing them`);
    for (let done = 0; done < length;) {
      const n = Math.min(ZEROS.length, length - done);
      await this.writeAsync(offset + done, ZEROS.subarray(0, n), false);
      done += n;
    }
  }
}

function pwrite(fd: number, buf: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fsWrite(fd, buf, at, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

function pread(fd: number, buf: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fsRead(fd, buf, at, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** A block device's size from sysfs (Node cannot issue BLKGETSIZE64). */
async function blockDeviceSize(rdev: number): Promise<number> {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  const sectors = Number((await readFile(`/sys/dev/block/${major}:${minor}/size`, "utf8")).trim());
  return sectors * 512;
}
