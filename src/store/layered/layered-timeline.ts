/**
 * One timeline of the layered store: its journal (durable appends, group commit), its
 * immutable delta layers, its manifest (layers, flushed seq, PITs, branch base) and the
 * background roll that turns a sealed journal segment into a layer. Reads resolve each
 * block through journal, layers newest first, then the parent at the base seq.
 */
import { readdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { CorruptionError, UserError } from "../../common/errors.js";
import {
  BLOCK_SIZE,
  type AppendOptions,
  type ChangedRange,
  type Extent,
  type Pit,
  type Timeline,
  type TimelineInfo,
} from "../staging-store.js";
import { DeltaLayer } from "./delta-layer.js";
import { writeDeltaLayer } from "./delta-layer-writer.js";
import { seqName } from "./fs-util.js";
import { Journal, type Segment } from "./journal.js";
import { DESCRIPTOR_SIZE, MAX_BODY_LENGTH, encodeBatch } from "./journal-record.js";
import { readManifest, writeManifest, type Manifest } from "./manifest.js";
import { ReadPlan } from "./read-plan.js";
import { checkDiskRange, checkSeq, validateExtents } from "./validate.js";

const LAYER_PATTERN = /^layer-\d{16}-\d{16}\.dlt(\.tmp)?$/;
/** Largest single read; callers read big disks in 1-4 MiB pieces. */
const MAX_READ_BYTES = 256 * 1024 * 1024;
/** After a failed roll, wait this long before trying again. */
const ROLL_RETRY_MS = 1000;

export interface TimelineOptions {
  readonly rollThresholdBytes: number;
}

export class LayeredTimeline implements Timeline {
  readonly info: TimelineInfo;
  /** Set by the store after every timeline is open; reads fall through to it at the base seq. */
  parent: LayeredTimeline | undefined;
  /** The last background roll failure, if the latest attempt failed. */
  lastRollError: unknown;
  private journal!: Journal;
  /** Newest first. */
  private layers: DeltaLayer[] = [];
  private manifestQueue: Promise<void> = Promise.resolve();
  private rolling: Promise<void> | undefined;
  private lastRollFailure = 0;
  private closed = false;

  private constructor(
    readonly dir: string,
    private manifest: Manifest,
  ) {
    this.info = {
      id: manifest.id,
      disks: manifest.disks,
      createdAt: manifest.createdAt,
      ...(manifest.base === undefined ? {} : { base: manifest.base }),
    };
  }

  /** Opens a timeline directory: manifest, layers, journal replay; resumes an interrupted roll. */
  static async open(dir: string, options: TimelineOptions): Promise<LayeredTimeline> {
    const manifest = await readManifest(dir);
    if (manifest.id !== basename(dir)) {
      throw new CorruptionError(`Manifest in ${dir} belongs to timeline ${manifest.id}`);
    }
    const timeline = new LayeredTimeline(dir, manifest);
    const named = new Set(manifest.layers.map((l) => l.file));
    for (const name of await readdir(dir)) {
      // A roll that crashed before its manifest replace leaves an unnamed layer: it holds nothing we need.
      if (LAYER_PATTERN.test(name) && !named.has(name)) await rm(join(dir, name), { force: true });
    }
    checkLayerTiling(dir, manifest);
    try {
      for (const ref of manifest.layers) {
        timeline.layers.unshift(
          await DeltaLayer.open(join(dir, ref.file), ref.fromSeq, ref.toSeq, manifest.disks.length),
        );
      }
      timeline.journal = await Journal.open(
        dir,
        manifest.disks,
        manifest.flushedSeq,
        manifest.lastTag ?? undefined,
        {
          rollThresholdBytes: options.rollThresholdBytes,
          onSealed: () => timeline.startRoll(),
          rollSettled: () => timeline.rolling ?? Promise.resolve(),
        },
      );
    } catch (err) {
      for (const layer of timeline.layers) await layer.close();
      throw err;
    }
    if (timeline.journal.sealed.length > 0) timeline.startRoll();
    return timeline;
  }

  /** Writes the manifest of a new, empty timeline or branch into `dir`. */
  static async initialize(dir: string, info: TimelineInfo): Promise<void> {
    await writeManifest(dir, {
      format: 1,
      id: info.id,
      createdAt: info.createdAt,
      disks: info.disks,
      ...(info.base === undefined ? {} : { base: info.base }),
      flushedSeq: info.base?.seq ?? 0,
      lastTag: null,
      layers: [],
      pits: [],
    });
  }

  async append(extents: readonly Extent[], options?: AppendOptions, signal?: AbortSignal): Promise<number> {
    this.checkOpen();
    signal?.throwIfAborted();
    validateExtents(this.info.disks, extents);
    const tag = options?.tag;
    if (tag !== undefined && !Number.isFinite(tag)) throw new UserError(`Tag ${tag} is not a finite number`);
    const bodyLength = extents.reduce((n, e) => n + DESCRIPTOR_SIZE + (e.kind === "data" ? e.length : 0), 0);
    if (bodyLength > MAX_BODY_LENGTH) {
      throw new UserError(`Batch of ${bodyLength} bytes is too large: split it below 4 GiB`, 413);
    }
    return await this.journal.append(encodeBatch(extents, tag), signal);
  }

  lastSeq(): number {
    return this.journal.lastSeq;
  }

  lastTag(): number | undefined {
    return this.journal.lastTag;
  }

  async read(
    disk: number,
    offset: number,
    length: number,
    seq?: number,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    this.checkOpen();
    signal?.throwIfAborted();
    checkDiskRange(this.info.disks, disk, offset, length);
    if (length > MAX_READ_BYTES) {
      throw new UserError(
        `Read of ${length} bytes is too large: read at most ${MAX_READ_BYTES} at a time`,
        413,
      );
    }
    const at = seq ?? this.lastSeq();
    checkSeq(at, this.info.base?.seq ?? 0, this.lastSeq(), "Read seq");
    const plan = new ReadPlan(disk, offset / BLOCK_SIZE, length / BLOCK_SIZE);
    try {
      this.planRead(plan, at);
    } catch (err) {
      plan.abandon();
      throw err;
    }
    const out = Buffer.alloc(length);
    await plan.execute(out, signal);
    return out;
  }

  /** Synchronous on purpose: the sources cannot change while a plan is being built. */
  private planRead(plan: ReadPlan, seq: number): void {
    this.journal.index.plan(plan, seq);
    for (const layer of this.layers) {
      if (plan.remaining === 0) return;
      layer.plan(plan, seq);
    }
    const base = this.info.base;
    if (plan.remaining > 0 && base !== undefined) {
      if (this.parent === undefined) throw new UserError(`Parent timeline ${base.timeline} is not open`, 404);
      this.parent.planRead(plan, Math.min(seq, base.seq));
    }
  }

  changedRanges(disk: number, fromSeq: number, toSeq: number, signal?: AbortSignal): Promise<ChangedRange[]> {
    return settle(() => {
      this.checkOpen();
      signal?.throwIfAborted();
      checkDiskRange(this.info.disks, disk, 0, 0);
      checkSeq(toSeq, 0, this.lastSeq(), "Diff end seq");
      checkSeq(fromSeq, 0, this.lastSeq(), "Diff start seq");
      if (fromSeq > toSeq) throw new UserError(`Diff start seq ${fromSeq} is after its end seq ${toSeq}`);
      const ranges = this.journal.index.changed(disk, fromSeq, toSeq);
      for (const layer of this.layers) for (const r of layer.changed(disk, fromSeq, toSeq)) ranges.push(r);
      ranges.sort((a, b) => a[0] - b[0]);
      const out: ChangedRange[] = [];
      let current: [number, number] | undefined;
      for (const [start, end] of ranges) {
        if (current !== undefined && start <= current[1]) current[1] = Math.max(current[1], end);
        else {
          if (current !== undefined) out.push(toBytes(current));
          current = [start, end];
        }
      }
      if (current !== undefined) out.push(toBytes(current));
      return out;
    });
  }

  async cutPit(seq?: number, label?: string): Promise<Pit> {
    this.checkOpen();
    const at = seq ?? this.lastSeq();
    checkSeq(at, this.info.base?.seq ?? 0, this.lastSeq(), "PIT seq");
    let result: Pit | undefined;
    await this.updateManifest((m) => {
      result = m.pits.find((p) => p.seq === at);
      if (result !== undefined) return undefined;
      const pit: Pit = { seq: at, time: Date.now(), ...(label === undefined ? {} : { label }) };
      result = pit;
      return { ...m, pits: [...m.pits, pit].sort((a, b) => a.seq - b.seq) };
    });
    return result as Pit;
  }

  pits(): readonly Pit[] {
    return this.manifest.pits;
  }

  /** Counters for tests and metrics. */
  stats(): { layers: number; groups: number; journalBytes: number } {
    return { layers: this.layers.length, groups: this.journal.groups, journalBytes: this.journal.bytes };
  }

  /** Resolves when no append is being written and no roll is running (for tests and close). */
  async settled(): Promise<void> {
    await this.journal.idle();
    while (this.rolling !== undefined) await this.rolling;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.settled();
    await this.journal.close();
    await this.manifestQueue;
    for (const layer of this.layers) await layer.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`Timeline ${this.info.id} is closed`);
  }

  /** Serialized manifest replace; `mutate` returns the new manifest, or undefined for no change. */
  private updateManifest(mutate: (m: Manifest) => Manifest | undefined): Promise<void> {
    const run = this.manifestQueue.then(async () => {
      const next = mutate(this.manifest);
      if (next === undefined) return;
      await writeManifest(this.dir, next);
      this.manifest = next;
    });
    this.manifestQueue = run.catch(() => undefined);
    return run;
  }

  private startRoll(): void {
    if (this.rolling !== undefined || this.closed) return;
    if (Date.now() - this.lastRollFailure < ROLL_RETRY_MS) return;
    this.rolling = this.rollSealed().finally(() => {
      this.rolling = undefined;
    });
  }

  private async rollSealed(): Promise<void> {
    for (let segment = this.journal.sealed[0]; segment !== undefined; segment = this.journal.sealed[0]) {
      try {
        await this.roll(segment);
        this.lastRollError = undefined;
      } catch (err) {
        this.lastRollError = err;
        this.lastRollFailure = Date.now();
        return;
      }
      if (this.closed) return;
    }
  }

  /** Invariant 5: layer durable, then manifest, then index swap, then segment unlink. */
  private async roll(segment: Segment): Promise<void> {
    const fromSeq = this.manifest.flushedSeq;
    const toSeq = segment.lastSeq;
    if (segment.firstSeq !== fromSeq + 1) {
      throw new Error(`Segment ${segment.file.path} starts at ${segment.firstSeq}, expected ${fromSeq + 1}`);
    }
    const file = `layer-${seqName(fromSeq)}-${seqName(toSeq)}.dlt`;
    const path = join(this.dir, file);
    const disks = this.info.disks.length;
    await writeDeltaLayer(path, this.journal.index.entriesOf(segment.file), fromSeq, toSeq, disks);
    const layer = await DeltaLayer.open(path, fromSeq, toSeq, disks);
    try {
      await this.updateManifest((m) => ({
        ...m,
        flushedSeq: toSeq,
        lastTag: segment.lastTag ?? null,
        layers: [...m.layers, { file, fromSeq, toSeq }],
      }));
    } catch (err) {
      // The file stays: if the rename did land, the manifest on disk names it. If not, open deletes it.
      await layer.close();
      throw err;
    }
    // Same synchronous step as the index removal inside dropSealed: no read sees both or neither.
    this.layers.unshift(layer);
    await this.journal.dropSealed(segment);
  }
}

/** The manifest's layers must cover (base seq or 0, flushedSeq] exactly, in order, or seqs are missing. */
function checkLayerTiling(dir: string, manifest: Manifest): void {
  let expected = manifest.base?.seq ?? 0;
  for (const layer of manifest.layers) {
    if (layer.fromSeq !== expected || layer.toSeq <= layer.fromSeq) {
      throw new CorruptionError(
        `Manifest in ${dir} lists layer ${layer.file} for seqs (${layer.fromSeq}, ${layer.toSeq}], expected it to start at ${expected}`,
      );
    }
    expected = layer.toSeq;
  }
  if (expected !== manifest.flushedSeq) {
    throw new CorruptionError(
      `Manifest in ${dir} says seqs up to ${manifest.flushedSeq} are in layers, but they end at ${expected}`,
    );
  }
}

/** Runs synchronous work behind a promise, so a thrown error becomes a rejection. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function toBytes([start, end]: [number, number]): ChangedRange {
  return { offset: start * BLOCK_SIZE, length: (end - start) * BLOCK_SIZE };
}
