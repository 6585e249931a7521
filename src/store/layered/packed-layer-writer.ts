/**
 * Compaction's writer: merges a window of adjacent layers (oldest first) into one packed
 * layer, dropping the versions garbage collection allows (gc-limits.ts), and re-seals the
 * kept data with the timeline's compaction codec (zstd and encryption by default), so
 * compression happens here, in the background, never on the acknowledgement path.
 *
 * 1. Merge: the layers' intervals are cut at each other's boundaries and their versions
 *    concatenated (layers hold disjoint seq ranges), then filtered by GC; adjacent intervals
 *    left with the same versions are joined again. Typed arrays, no object per version.
 * 2. Runs: the kept data versions of one seq that are adjacent on the disk form a run; runs
 *    are written in (disk, block, seq) order, cut into frames of up to 16 blocks. A source
 *    frame whose blocks are all kept, in the target compression, is copied verbatim (its aad
 *    is unchanged); otherwise the kept blocks are re-sealed.
 * 3. Streaming: frames are produced a chunk (about 4 MiB of plain data) at a time: source
 *    frames read with coalesced preads, opened (so damage is reported, never laundered),
 *    sealed, written. Memory stays bounded whatever the layer sizes.
 */
import { randomBytes } from "node:crypto";
import { open, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { BLOCK_SIZE } from "../staging-store.js";
import type { DeltaLayer, LayerNames } from "./delta-layer.js";
import { BLOCKS_PER_FRAME, damagedFrame, type FrameContext } from "./frame-context.js";
import { seqName, writeAllAt } from "./fs-util.js";
import { versionNeeded, type GcLimits } from "./gc-limits.js";
import { f64, u32, u8 } from "./growable.js";
import type { LayerFiles } from "./layer-files.js";
import { LayerIndexBuilder, ZERO_FRAME } from "./layer-index.js";

const CHUNK_PLAIN_BYTES = 4 * 1024 * 1024;
const CHUNK_SOURCE_BYTES = 8 * 1024 * 1024;
const MAX_READ_BYTES = 4 * 1024 * 1024;
const READ_CONCURRENCY = 4;
const NONE = 0xffffffff;
/** Numbers per piece: source layer, source frame, first block in it, block count, seq. */
const PIECE = 5;

/** The window merged into intervals and versions; versions point at their source. */
class Merge {
  readonly ivDisk = u32();
  readonly ivStart = f64();
  readonly ivCount = f64();
  /** First version of each interval; versions of interval i end where i+1's start. */
  readonly ivVer = u32();
  readonly verSeq = f64();
  readonly verInterval = u32();
  /** Source layer (position in the window) and its version; the version's block `delta` is this one's first. */
  readonly verLayer = u32();
  readonly verSource = u32();
  readonly verDelta = f64();
  readonly verZero = u8();
  /** Filled while writing: output frame and block in it. */
  readonly verFrame = u32();
  readonly verOffset = u8();
}

function merge(window: readonly DeltaLayer[], diskCount: number, gc: GcLimits): Merge {
  const m = new Merge();
  const kept: number[] = []; // pairs (layer, source version) of the interval being built
  const prevKept: number[] = [];
  for (let disk = 0; disk < diskCount; disk++) {
    const points: number[] = [];
    for (const layer of window) {
      const ix = layer.ix;
      for (let i = ix.diskFirst[disk] ?? 0; i < (ix.diskFirst[disk + 1] ?? 0); i++) {
        points.push(ix.ivStart[i] ?? 0, (ix.ivStart[i] ?? 0) + (ix.ivCount[i] ?? 0));
      }
    }
    if (points.length === 0) continue;
    const sorted = Float64Array.from(points).sort();
    const cursor = window.map((l) => l.ix.diskFirst[disk] ?? 0);
    prevKept.length = 0;
    let prevEnd = -1;
    for (let k = 0; k + 1 < sorted.length; k++) {
      const p = sorted[k] ?? 0;
      const q = sorted[k + 1] ?? 0;
      if (q === p) continue;
      const seqs: number[] = [];
      const sources: number[] = [];
      window.forEach((layer, li) => {
        const ix = layer.ix;
        const end = ix.diskFirst[disk + 1] ?? 0;
        let i = cursor[li] ?? 0;
        while (i < end && (ix.ivStart[i] ?? 0) + (ix.ivCount[i] ?? 0) <= p) i++;
        cursor[li] = i;
        if (i < end && (ix.ivStart[i] ?? 0) <= p) {
          for (let v = ix.ivVer[i] ?? 0; v < (ix.ivVer[i + 1] ?? 0); v++) {
            seqs.push(ix.verSeq[v] ?? 0);
            sources.push(li, v, i);
          }
        }
      });
      if (seqs.length === 0) {
        prevEnd = -1;
        continue;
      }
      kept.length = 0;
      for (let j = 0; j < seqs.length; j++) {
        if (versionNeeded(seqs[j] ?? 0, seqs[j + 1] ?? Infinity, gc)) kept.push(j);
      }
      // Join with the previous interval when it has exactly the same versions.
      const same =
        prevEnd === p &&
        prevKept.length === kept.length * 2 &&
        kept.every(
          (j, n) => prevKept[2 * n] === sources[3 * j] && prevKept[2 * n + 1] === sources[3 * j + 1],
        );
      if (same) {
        const last = m.ivCount.length - 1;
        m.ivCount.set(last, m.ivCount.get(last) + (q - p));
        prevEnd = q;
        continue;
      }
      const interval = m.ivStart.push(p);
      m.ivDisk.push(disk);
      m.ivCount.push(q - p);
      m.ivVer.push(m.verSeq.length);
      prevKept.length = 0;
      for (const j of kept) {
        const li = sources[3 * j] ?? 0;
        const v = sources[3 * j + 1] ?? 0;
        const ix = (window[li] as DeltaLayer).ix;
        m.verSeq.push(seqs[j] ?? 0);
        m.verInterval.push(interval);
        m.verLayer.push(li);
        m.verSource.push(v);
        m.verDelta.push(p - (ix.ivStart[sources[3 * j + 2] ?? 0] ?? 0));
        m.verZero.push(ix.verFrame[v] === ZERO_FRAME ? 1 : 0);
        m.verFrame.push(ZERO_FRAME);
        m.verOffset.push(0);
        prevKept.push(li, v);
      }
      prevEnd = q;
    }
  }
  m.ivVer.push(m.verSeq.length);
  return m;
}

/**
 * Runs: kept data versions at the same depth (0 = an interval's newest data version, 1 the
 * one before, ...) in adjacent intervals of one disk, whatever their seqs. Created in
 * (disk, block, depth) order. Cutting runs into frames puts the newest versions of adjacent
 * blocks in the same frames, even when they were written by different batches (random
 * writes): frames stay near 64 KiB, compress well, and a read of the head opens few of them.
 */
class Runs {
  readonly first = u32();
  readonly last = u32();
  readonly disk = u32();
  readonly start = f64();
  /** Per version: the next version of its run, or NONE. */
  readonly next: Uint32Array;

  constructor(m: Merge) {
    this.next = new Uint32Array(m.verSeq.length).fill(NONE);
    let open: number[] = [];
    let nextOpen: number[] = [];
    let prevDisk = -1;
    let prevEnd = -1;
    for (let i = 0; i < m.ivStart.length; i++) {
      const disk = m.ivDisk.get(i);
      const start = m.ivStart.get(i);
      if (disk !== prevDisk || start !== prevEnd) open.length = 0;
      nextOpen.length = 0;
      for (let v = m.ivVer.get(i + 1) - 1; v >= m.ivVer.get(i); v--) {
        if (m.verZero.get(v)) continue;
        const depth = nextOpen.length;
        let r = open[depth];
        if (r === undefined) {
          r = this.first.push(v);
          this.last.push(v);
          this.disk.push(disk);
          this.start.push(start);
        } else {
          this.next[this.last.get(r)] = v;
          this.last.set(r, v);
        }
        nextOpen.push(r);
      }
      [open, nextOpen] = [nextOpen, open];
      prevDisk = disk;
      prevEnd = start + m.ivCount.get(i);
    }
  }
}

/** One output frame: a verbatim copy of a source frame, or blocks gathered from source frames. */
interface Job {
  readonly disk: number;
  readonly first: number;
  count: number;
  /** Newest seq of its blocks. */
  seq: number;
  readonly verbatim: { readonly layer: number; readonly frame: number } | undefined;
  /** Quintuples: source layer, source frame, first block in it, block count, seq. */
  readonly pieces: number[];
}

export interface PackedLayerResult {
  readonly names: LayerNames;
  readonly dataBytes: number;
  readonly indexBytes: number;
}

/**
 * Writes the merged, collected window as a packed layer covering (fromSeq, toSeq] and
 * stores its two files through `files`; returns their names. Nothing is named by the
 * manifest yet: on failure or abort the temporary files are removed.
 */
export async function writePackedLayer(
  files: LayerFiles,
  dir: string,
  window: readonly DeltaLayer[],
  diskCount: number,
  gc: GcLimits,
  target: FrameContext,
  signal?: AbortSignal,
  /** Awaited before each chunk: the caller may hold compaction back (while ingest is busy). */
  pause?: () => Promise<void>,
): Promise<PackedLayerResult> {
  const fromSeq = (window[0] as DeltaLayer).fromSeq;
  const toSeq = (window[window.length - 1] as DeltaLayer).toSeq;
  const base = `layer-${seqName(fromSeq)}-${seqName(toSeq)}-${randomBytes(4).toString("hex")}`;
  const names = { data: `${base}.pack`, index: `${base}.idx` };
  const dataTmp = join(dir, `${names.data}.tmp`);
  const indexTmp = join(dir, `${names.index}.tmp`);
  const m = merge(window, diskCount, gc);
  const runs = new Runs(m);
  const builder = new LayerIndexBuilder();
  const verbatimOk = window.map(
    (l) => l.ix.compression === target.codec.compression && l.ix.encrypted === target.codec.encrypted,
  );
  const handle = await open(dataTmp, "w");
  let dataBytes = 0;
  try {
    let jobs: Job[] = [];
    let plainBytes = 0;
    const sourceFrames = new Set<number>();
    let sourceBytes = 0;
    let nextFrame = 0;
    const flushChunk = async (): Promise<void> => {
      await pause?.();
      signal?.throwIfAborted();
      dataBytes += await writeChunk(handle, dataBytes, jobs, window, target, builder);
      jobs = [];
      plainBytes = 0;
      sourceFrames.clear();
      sourceBytes = 0;
    };
    const addJob = async (job: Job): Promise<void> => {
      jobs.push(job);
      nextFrame++;
      plainBytes += job.count * BLOCK_SIZE;
      const p = job.pieces;
      for (let i = 0; i < p.length; i += PIECE) {
        const key = (p[i] ?? 0) * 2 ** 32 + (p[i + 1] ?? 0);
        if (sourceFrames.has(key)) continue;
        sourceFrames.add(key);
        sourceBytes += (window[p[i] ?? 0] as DeltaLayer).ix.frLength[p[i + 1] ?? 0] ?? 0;
      }
      if (plainBytes >= CHUNK_PLAIN_BYTES || sourceBytes >= CHUNK_SOURCE_BYTES) await flushChunk();
    };

    for (let r = 0; r < runs.first.length; r++) {
      const disk = runs.disk.get(r);
      const runStart = runs.start.get(r);
      // The run as source pieces, adjacent pieces of one frame joined, and where in the run
      // each of its versions starts.
      const pieces: number[] = [];
      const starts: number[] = [];
      let runBlocks = 0;
      let curLayer = -1;
      let curSource = -1;
      let curDelta = -1;
      let f = 0;
      let o = 0;
      for (let v = runs.first.get(r); v !== NONE; v = runs.next[v] ?? NONE) {
        const li = m.verLayer.get(v);
        const ix = (window[li] as DeltaLayer).ix;
        const source = m.verSource.get(v);
        const delta = m.verDelta.get(v);
        const seq = m.verSeq.get(v);
        let left = m.ivCount.get(m.verInterval.get(v));
        starts.push(v, runBlocks);
        // Consecutive versions often continue the same source version: keep the cursor.
        if (li !== curLayer || source !== curSource || delta !== curDelta) {
          f = ix.verFrame[source] ?? 0;
          o = (ix.verOffset[source] ?? 0) + delta;
          while (o >= (ix.frCount[f] ?? 1)) o -= ix.frCount[f++] ?? 1;
          curLayer = li;
          curSource = source;
        }
        curDelta = delta + left;
        while (left > 0) {
          const frameBlocks = ix.frCount[f] ?? 0;
          const take = Math.min(left, frameBlocks - o);
          const n = pieces.length;
          if (
            n > 0 &&
            pieces[n - 5] === li &&
            pieces[n - 4] === f &&
            (pieces[n - 3] ?? 0) + (pieces[n - 2] ?? 0) === o
          ) {
            pieces[n - 2] = (pieces[n - 2] ?? 0) + take;
            pieces[n - 1] = Math.max(pieces[n - 1] ?? 0, seq);
          } else {
            pieces.push(li, f, o, take, seq);
          }
          left -= take;
          runBlocks += take;
          o += take;
          if (o === frameBlocks) {
            f++;
            o = 0;
          }
        }
      }
      // Output frames: whole source frames in the target compression verbatim, the rest
      // gathered 16 blocks at a time. frameStarts: (frame number, run block) per output frame.
      const frameStarts: number[] = [];
      let pending: Job | undefined;
      let block = 0;
      const flushPending = async (): Promise<void> => {
        if (pending === undefined) return;
        const job = pending;
        pending = undefined;
        await addJob(job);
      };
      for (let i = 0; i < pieces.length; i += PIECE) {
        const li = pieces[i] ?? 0;
        const frame = pieces[i + 1] ?? 0;
        let from = pieces[i + 2] ?? 0;
        let n = pieces[i + 3] ?? 0;
        const seq = pieces[i + 4] ?? 0;
        const ix = (window[li] as DeltaLayer).ix;
        if (from === 0 && n === ix.frCount[frame] && verbatimOk[li]) {
          await flushPending();
          frameStarts.push(nextFrame, block);
          await addJob({
            disk,
            first: runStart + block,
            count: n,
            seq: Math.max(seq, ix.frSeq[frame] ?? 0),
            verbatim: { layer: li, frame },
            pieces: [li, frame, 0, n, seq],
          });
          block += n;
          continue;
        }
        while (n > 0) {
          if (pending === undefined) {
            frameStarts.push(nextFrame, block);
            pending = { disk, first: runStart + block, count: 0, seq, verbatim: undefined, pieces: [] };
          }
          const put = Math.min(BLOCKS_PER_FRAME - pending.count, n);
          pending.pieces.push(li, frame, from, put, seq);
          pending.count += put;
          pending.seq = Math.max(pending.seq, seq);
          from += put;
          n -= put;
          block += put;
          if (pending.count === BLOCKS_PER_FRAME) await flushPending();
        }
      }
      await flushPending();
      // Each version points at the output frame holding its first block.
      let k = 0;
      for (let i = 0; i < starts.length; i += 2) {
        const at = starts[i + 1] ?? 0;
        while (k + 2 < frameStarts.length && (frameStarts[k + 3] ?? 0) <= at) k += 2;
        m.verFrame.set(starts[i] ?? 0, frameStarts[k] ?? 0);
        m.verOffset.set(starts[i] ?? 0, at - (frameStarts[k + 1] ?? 0));
      }
    }
    if (jobs.length > 0) await flushChunk();
    if (builder.frames !== nextFrame)
      throw new Error(`Packed layer ${names.data}: ${builder.frames} frames written, ${nextFrame} planned`);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(dataTmp, { force: true });
    throw err;
  }
  await handle.close();

  let indexBytes = 0;
  try {
    for (let i = 0; i < m.ivStart.length; i++) {
      builder.addInterval(m.ivDisk.get(i), m.ivStart.get(i), m.ivCount.get(i));
      for (let v = m.ivVer.get(i); v < m.ivVer.get(i + 1); v++) {
        builder.addVersion(
          m.verSeq.get(v),
          m.verZero.get(v) ? ZERO_FRAME : m.verFrame.get(v),
          m.verOffset.get(v),
        );
      }
    }
    const index = builder.encode({
      fromSeq,
      toSeq,
      encrypted: target.codec.encrypted,
      packed: true,
      compression: target.codec.compression,
      dataLength: dataBytes,
    });
    indexBytes = index.length;
    const ih = await open(indexTmp, "w");
    try {
      await writeAllAt(ih, [index], 0);
      await ih.sync();
    } finally {
      await ih.close();
    }
    signal?.throwIfAborted();
    await files.put(names.data, dataTmp, "move", signal);
    await files.put(names.index, indexTmp, "move", signal);
  } catch (err) {
    await rm(dataTmp, { force: true });
    await rm(indexTmp, { force: true });
    await files.delete(names.data).catch(() => undefined);
    throw err;
  }
  return { names, dataBytes, indexBytes };
}

/**
 * Produces one chunk of output frames: reads the source frames the jobs need (adjacent ones
 * together), opens them, seals or copies each output frame, and writes them at `position`.
 * Returns the bytes written.
 */
async function writeChunk(
  handle: FileHandle,
  position: number,
  jobs: readonly Job[],
  window: readonly DeltaLayer[],
  target: FrameContext,
  builder: LayerIndexBuilder,
): Promise<number> {
  // Source frames by layer, sorted, read in runs of adjacent frames.
  const wanted = new Map<number, Set<number>>();
  for (const job of jobs) {
    const p = job.pieces;
    for (let i = 0; i < p.length; i += PIECE) {
      let set = wanted.get(p[i] ?? 0);
      if (set === undefined) wanted.set(p[i] ?? 0, (set = new Set()));
      set.add(p[i + 1] ?? 0);
    }
  }
  const raw = new Map<number, Buffer>();
  const plain = new Map<number, Buffer>();
  const reads: Array<{ li: number; frames: number[] }> = [];
  for (const [li, set] of wanted) {
    const ix = (window[li] as DeltaLayer).ix;
    const sorted = [...set].sort((a, b) => a - b);
    let run: number[] = [];
    let bytes = 0;
    for (const f of sorted) {
      const prev = run[run.length - 1];
      const adjacent =
        prev !== undefined && (ix.frOffset[prev] ?? 0) + (ix.frLength[prev] ?? 0) === ix.frOffset[f];
      if (run.length > 0 && (!adjacent || bytes + (ix.frLength[f] ?? 0) > MAX_READ_BYTES)) {
        reads.push({ li, frames: run });
        run = [];
        bytes = 0;
      }
      run.push(f);
      bytes += ix.frLength[f] ?? 0;
    }
    if (run.length > 0) reads.push({ li, frames: run });
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < reads.length) {
      const { li, frames } = reads[next++] as { li: number; frames: number[] };
      const layer = window[li] as DeltaLayer;
      const ix = layer.ix;
      const first = frames[0] ?? 0;
      const lastFrame = frames[frames.length - 1] ?? 0;
      const start = ix.frOffset[first] ?? 0;
      const buf = Buffer.allocUnsafe((ix.frOffset[lastFrame] ?? 0) + (ix.frLength[lastFrame] ?? 0) - start);
      await layer.file.reader.read(buf, start);
      for (const f of frames) {
        const at = (ix.frOffset[f] ?? 0) - start;
        const bytes = buf.subarray(at, at + (ix.frLength[f] ?? 0));
        const place = {
          file: layer.file.name,
          offset: ix.frOffset[f] ?? 0,
          disk: ix.frDisk[f] ?? 0,
          firstBlock: ix.frFirst[f] ?? 0,
          blockCount: ix.frCount[f] ?? 0,
          seq: ix.frSeq[f] ?? 0,
        };
        try {
          plain.set(
            li * 2 ** 32 + f,
            layer.file.frames.open(bytes, place.disk, place.firstBlock, place.blockCount),
          );
        } catch (err) {
          throw damagedFrame(place, err);
        }
        raw.set(li * 2 ** 32 + f, bytes);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, reads.length) }, worker));

  const out: Buffer[] = [];
  let at = position;
  for (const job of jobs) {
    let frame: Buffer;
    if (job.verbatim !== undefined) {
      frame = raw.get(job.verbatim.layer * 2 ** 32 + job.verbatim.frame) as Buffer;
    } else {
      const data = Buffer.allocUnsafe(job.count * BLOCK_SIZE);
      const p = job.pieces;
      let to = 0;
      for (let i = 0; i < p.length; i += PIECE) {
        const src = plain.get((p[i] ?? 0) * 2 ** 32 + (p[i + 1] ?? 0)) as Buffer;
        const from = (p[i + 2] ?? 0) * BLOCK_SIZE;
        const length = (p[i + 3] ?? 0) * BLOCK_SIZE;
        src.copy(data, to, from, from + length);
        to += length;
      }
      frame = target.seal(data, job.disk, job.first, job.count);
    }
    builder.addFrame(at, frame.length, job.disk, job.first, job.count, job.seq);
    out.push(frame);
    at += frame.length;
  }
  return await writeAllAt(handle, out, position);
}
