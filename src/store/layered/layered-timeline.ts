/**
 * One timeline of the layered store: its journal (durable appends, group commit), its
 * immutable layers, its manifest (layers, flushed seq, PITs, branch base, key id) and the
 * background roll that turns a sealed journal segment into an L0 layer by writing its index
 * (the segment becomes the layer's data file), and compaction into packed layers. Reads
 * resolve each block through journal, layers newest first, then the parent at the base seq.
 */
import { open, readdir, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { basename, join } from "node:path";
import { CorruptionError, UserError } from "../../common/errors.js";
import type { Compression } from "../codec/block-codec.js";
import type { DataKey } from "../codec/data-key.js";
import { createFrameCodec } from "../codec/frame-codec.js";
import {
  BLOCK_SIZE,
  type AppendOptions,
  type ChangedRange,
  type Extent,
  type Pit,
  type Timeline,
  type TimelineInfo,
} from "../staging-store.js";
import { DEFAULT_COMPACTION_POLICY, chooseCompaction, type CompactionPolicy } from "./compaction-plan.js";
import { DeltaLayer } from "./delta-layer.js";
import { FrameContext } from "./frame-context.js";
import type { GcLimits } from "./gc-limits.js";
import { seqName, writeAllAt } from "./fs-util.js";
import { Journal, type Segment } from "./journal.js";
import { DESCRIPTOR_SIZE, MAX_BODY_LENGTH, encodeBatch } from "./journal-record.js";
import { buildL0Index } from "./l0-index.js";
import type { LayerFiles } from "./layer-files.js";
import { LocalLayerFiles } from "./local-layer-files.js";
import { ObjectStoreLayerFiles } from "./object-store-layer-files.js";
import type { ObjectStore } from "../object-store/object-store.js";
import { MANIFEST_FORMAT, readManifest, writeManifest, type Manifest } from "./manifest.js";
import { writePackedLayer } from "./packed-layer-writer.js";
import { ReadPlan } from "./read-plan.js";
import { checkDiskRange, checkSeq, validateExtents } from "./validate.js";

/** Layer data and index files, and their temporary names while being written. */
const LAYER_PATTERN = /^layer-\d{16}-\d{16}(-[0-9a-f]{8})?\.(seg|pack|idx)(\.tmp)?$/;
/** Largest single read; callers read big disks in 1-4 MiB pieces. */
const MAX_READ_BYTES = 256 * 1024 * 1024;
/** After a failed roll, wait this long before trying again. */
const ROLL_RETRY_MS = 1000;
/** A timeline that received this many bytes within about a second is busy ingesting: background compaction waits. */
const INGEST_BUSY_BYTES = 2 * 1024 * 1024;
const INGEST_BUCKET_MS = 1000;
const YIELD_POLL_MS = 100;

/** Finds data keys: KeyRing (codec/key-ring.ts) is one. */
export interface DataKeyProvider {
  /** The current key of a key scope (a project), created on first use. */
  dataKey(scope: string, signal?: AbortSignal): Promise<DataKey>;
  /** A key by the id a manifest recorded. */
  keyById(id: string, signal?: AbortSignal): Promise<DataKey>;
}

export interface TimelineOptions {
  readonly rollThresholdBytes: number;
  readonly compaction?: CompactionPolicy;
  /** Needed to open a timeline whose manifest names a data key. */
  readonly keyRing?: DataKeyProvider;
  /** Where layer files live; default: the timeline's directory. */
  readonly layerStore?: ObjectStore;
}

/** How a new timeline seals its frames; recorded in its manifest. */
export interface TimelineSealing {
  readonly keyId: string | undefined;
  readonly compression: Compression;
}

export interface CompactionResult {
  /** Layers merged or rewritten. */
  readonly layersIn: number;
  readonly layersOut: number;
  /** Layer bytes before minus after (data returned to the filesystem). */
  readonly freedBytes: number;
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
  /** Index bytes the rolls of this process wrote (the whole write cost of a roll). */
  private rollIndexBytes = 0;
  private rollHolds = 0;
  private manifestQueue: Promise<void> = Promise.resolve();
  private rolling: Promise<void> | undefined;
  private lastRollFailure = 0;
  private closed = false;
  /** Seqs other timelines read through to (branch bases), with a count per seq. */
  private readonly pins = new Map<number, number>();
  private compacting: Promise<void> | undefined;
  private readonly stopCompaction = new AbortController();
  /** The last background compaction failure, if the latest attempt failed. */
  lastCompactionError: Error | undefined;
  private lastCompactionFailure = 0;
  private compacted = { layersIn: 0, layersOut: 0, freedBytes: 0 };
  /** Bytes appended in the current and the previous one-second bucket (compaction yields to ingest). */
  private ingest = { start: 0, bytes: 0, previous: 0 };
  /** compact() calls waiting: compaction does not yield to ingest meanwhile. */
  private urgentCompactions = 0;

  private constructor(
    readonly dir: string,
    private manifest: Manifest,
    private readonly compactionPolicy: CompactionPolicy,
    /** Seals journal records (no compression: the fast path) and opens every frame. */
    private readonly frames: FrameContext,
    /** Seals packed layers (compression, same key). */
    private readonly packFrames: FrameContext,
    private readonly files: LayerFiles,
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
    const key = await keyOf(manifest, options.keyRing);
    const codec = (compression: Compression): FrameContext =>
      new FrameContext(manifest.id, createFrameCodec({ compression, ...(key === undefined ? {} : { key }) }));
    const files =
      options.layerStore === undefined
        ? new LocalLayerFiles(dir)
        : new ObjectStoreLayerFiles(options.layerStore, ObjectStoreLayerFiles.prefixOf(manifest.id));
    const timeline = new LayeredTimeline(
      dir,
      manifest,
      options.compaction ?? DEFAULT_COMPACTION_POLICY,
      codec("none"),
      codec(manifest.compression),
      files,
    );
    const named = new Set(manifest.layers.flatMap((l) => [l.data, l.index]));
    for (const name of await readdir(dir)) {
      // A roll or compaction that crashed before its manifest replace leaves unnamed files, and
      // one that crashed after it leaves the replaced layers unnamed: nothing needs them. An
      // unnamed L0 data file may be a second name of a journal segment: only that name goes.
      if (name.endsWith(".tmp") && LAYER_PATTERN.test(name)) await rm(join(dir, name), { force: true });
    }
    for (const name of await files.list()) {
      if (LAYER_PATTERN.test(name) && !name.endsWith(".tmp") && !named.has(name)) await files.delete(name);
    }
    checkLayerTiling(dir, manifest);
    const diskBlocks = manifest.disks.map((d) => d.sizeBytes / BLOCK_SIZE);
    try {
      for (const ref of manifest.layers) {
        const names = { data: ref.data, index: ref.index };
        timeline.layers.unshift(
          await DeltaLayer.open(files, names, ref.fromSeq, ref.toSeq, diskBlocks, timeline.frames),
        );
      }
      const newestPit = manifest.pits[manifest.pits.length - 1]?.seq ?? 0;
      timeline.journal = await Journal.open(
        dir,
        manifest.disks,
        {
          flushedSeq: manifest.flushedSeq,
          flushedTag: manifest.lastTag ?? undefined,
          acknowledgedSeq: Math.max(newestPit, manifest.flushedSeq),
        },
        {
          rollThresholdBytes: options.rollThresholdBytes,
          onSealed: () => timeline.startRoll(),
          rollSettled: () => timeline.rolling ?? Promise.resolve(),
          frames: timeline.frames,
        },
      );
    } catch (err) {
      for (const layer of timeline.layers) await layer.close();
      throw err;
    }
    if (timeline.journal.sealed.length > 0) timeline.startRoll();
    else timeline.startCompaction();
    return timeline;
  }

  /** Writes the manifest of a new, empty timeline or branch into `dir`. */
  static async initialize(dir: string, info: TimelineInfo, sealing: TimelineSealing): Promise<void> {
    await writeManifest(dir, {
      format: MANIFEST_FORMAT,
      id: info.id,
      createdAt: info.createdAt,
      disks: info.disks,
      ...(info.base === undefined ? {} : { base: info.base }),
      flushedSeq: info.base?.seq ?? 0,
      lastTag: null,
      layers: [],
      pits: [],
      ...(sealing.keyId === undefined ? {} : { keyId: sealing.keyId }),
      compression: sealing.compression,
    });
  }

  /** How this timeline seals frames: a branch seals as its parent does. */
  get sealing(): TimelineSealing {
    return { keyId: this.manifest.keyId, compression: this.manifest.compression };
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
    // Sealed now, while the previous group is being written and synced.
    const batch = encodeBatch(extents, tag, this.frames);
    if (batch.bodyLength > MAX_BODY_LENGTH) {
      throw new UserError(
        `Batch of ${batch.bodyLength} bytes once sealed is too large: split it below 4 GiB`,
        413,
      );
    }
    this.noteIngest(batch.bodyLength);
    return await this.journal.append(batch, signal);
  }

  private noteIngest(bytes: number): void {
    this.ingestBusy();
    this.ingest.bytes += bytes;
  }

  /** True when about INGEST_BUSY_BYTES or more were appended in the last one to two seconds. */
  private ingestBusy(): boolean {
    const now = Date.now();
    const age = now - this.ingest.start;
    if (age >= INGEST_BUCKET_MS) {
      this.ingest = { start: now, bytes: 0, previous: age < 2 * INGEST_BUCKET_MS ? this.ingest.bytes : 0 };
    }
    return this.ingest.bytes + this.ingest.previous >= INGEST_BUSY_BYTES;
  }

  /**
   * Background compaction yields to heavy ingest, between chunks: it waits while the timeline
   * is busy, unless a compact() call waits for it or the layers are over twice maxLayers.
   * Compaction debt is paid when ingest slows down; reads meanwhile consult more layers.
   */
  private async yieldToIngest(): Promise<void> {
    while (
      !this.closed &&
      this.urgentCompactions === 0 &&
      this.layers.length <= 2 * this.compactionPolicy.maxLayers &&
      this.ingestBusy()
    ) {
      await sleep(YIELD_POLL_MS, undefined, { signal: this.stopCompaction.signal });
    }
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
    this.checkReadable(at, "Read seq");
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
      this.checkReadable(toSeq, "Diff end seq");
      this.checkReadable(fromSeq, "Diff start seq");
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
    this.checkReadable(at, "PIT seq");
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

  async markPit(seq: number, mark: { readonly label?: string; readonly keep: boolean }): Promise<Pit> {
    this.checkOpen();
    let result: Pit | undefined;
    await this.updateManifest((m) => {
      const old = m.pits.find((p) => p.seq === seq);
      if (old === undefined) return undefined;
      result = {
        seq: old.seq,
        time: old.time,
        ...(mark.label === undefined ? {} : { label: mark.label }),
        ...(mark.keep ? { keep: true } : {}),
      };
      const next = result;
      return { ...m, pits: m.pits.map((p) => (p.seq === seq ? next : p)) };
    });
    if (result === undefined) throw new UserError(`Timeline ${this.info.id} has no PIT at seq ${seq}`, 404);
    return result;
  }

  async dropPits(seqs: readonly number[]): Promise<void> {
    this.checkOpen();
    const doomed = new Set(seqs);
    await this.updateManifest((m) => {
      const gone = m.pits.filter((p) => doomed.has(p.seq));
      if (gone.length === 0) return undefined;
      const pits = m.pits.filter((p) => !doomed.has(p.seq));
      // Seqs up to the newest dropped PIT are given up, but for the PITs and pins still kept.
      const gcHorizon = Math.max(m.gcHorizon ?? 0, ...gone.map((p) => p.seq));
      return { ...m, pits, gcHorizon };
    });
    this.startCompaction();
  }

  /**
   * True when a read at `seq` is exact: above the GC horizon, the head, the base seq, or a
   * seq compaction keeps (a PIT, a pinned branch base).
   */
  readable(seq: number): boolean {
    if (seq > (this.manifest.gcHorizon ?? 0) || seq >= this.lastSeq()) return true;
    if (seq === (this.info.base?.seq ?? 0)) return true;
    return this.pins.has(seq) || this.manifest.pits.some((p) => p.seq === seq);
  }

  private checkReadable(seq: number, what: string): void {
    if (!this.readable(seq)) {
      throw new UserError(
        `${what} ${seq} of timeline ${this.info.id} is no longer kept: retention dropped it; use a listed PIT`,
        410,
      );
    }
  }

  /**
   * Keeps `seq` exact through compaction until the returned release is called (a branch
   * based on it). Synchronous, so no compaction can commit between the check and the pin.
   * `force` pins without the check (reopening a store whose branches already exist).
   */
  pin(seq: number, force = false): () => void {
    if (!force) this.checkReadable(seq, "Branch base seq");
    this.pins.set(seq, (this.pins.get(seq) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.pins.get(seq) ?? 1) - 1;
      if (left > 0) this.pins.set(seq, left);
      else this.pins.delete(seq);
    };
  }

  /** Runs compaction now, until the policy is met; resolves with what it did since open. */
  async compact(): Promise<CompactionResult> {
    this.checkOpen();
    this.urgentCompactions++;
    try {
      await this.settled();
      this.startCompaction(true);
      while (this.compacting !== undefined) await this.compacting;
    } finally {
      this.urgentCompactions--;
    }
    if (this.lastCompactionError !== undefined) throw this.lastCompactionError;
    return { ...this.compacted };
  }

  /** Counters for tests and metrics; `layerBytes` is what the layers take in storage (data and index files). */
  stats(): {
    layers: number;
    groups: number;
    journalBytes: number;
    layerBytes: number;
    rollIndexBytes: number;
  } {
    return {
      layers: this.layers.length,
      groups: this.journal.groups,
      journalBytes: this.journal.bytes,
      layerBytes: this.layers.reduce((n, l) => n + l.storedBytes, 0),
      rollIndexBytes: this.rollIndexBytes,
    };
  }

  /**
   * Keeps sealed segments from being rolled until the returned release is called (tests:
   * a sealed segment to look at). Appends go on; backpressure does not wait for held rolls.
   */
  holdRolls(): () => void {
    this.rollHolds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.rollHolds--;
      if (this.journal.sealed.length > 0) this.startRoll();
    };
  }

  /** Resolves when no append is being written and no roll is running (for tests and close). */
  async settled(): Promise<void> {
    await this.journal.idle();
    while (this.rolling !== undefined) await this.rolling;
    while (this.compacting !== undefined) await this.compacting;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopCompaction.abort();
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
    if (this.rolling !== undefined || this.closed || this.rollHolds > 0) return;
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

  /**
   * Invariant 5: the index durable, the segment linked as the layer's data file, then the
   * manifest, then the read-path swap, then the segment's journal name unlinked. No block
   * data is copied: the roll writes the index only.
   */
  private async roll(segment: Segment): Promise<void> {
    const fromSeq = this.manifest.flushedSeq;
    const toSeq = segment.lastSeq;
    if (segment.firstSeq !== fromSeq + 1) {
      throw new Error(`Segment ${segment.path} starts at ${segment.firstSeq}, expected ${fromSeq + 1}`);
    }
    const base = `layer-${seqName(fromSeq)}-${seqName(toSeq)}`;
    const names = { data: `${base}.seg`, index: `${base}.idx` };
    const disks = this.info.disks;
    const index = buildL0Index(this.journal.index.entriesOf(segment.file), disks.length).encode({
      fromSeq,
      toSeq,
      encrypted: this.frames.codec.encrypted,
      packed: false,
      compression: this.frames.codec.compression,
      dataLength: segment.size,
    });
    const tmp = join(this.dir, `${names.index}.tmp`);
    const handle = await open(tmp, "w");
    try {
      await writeAllAt(handle, [index], 0);
      await handle.sync();
    } catch (err) {
      await handle.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    await this.files.put(names.index, tmp, "move");
    await this.files.put(names.data, segment.path, "link");
    this.rollIndexBytes += index.length;
    const diskBlocks = disks.map((d) => d.sizeBytes / BLOCK_SIZE);
    const layer = await DeltaLayer.open(this.files, names, fromSeq, toSeq, diskBlocks, this.frames);
    try {
      await this.updateManifest((m) => ({
        ...m,
        flushedSeq: toSeq,
        lastTag: segment.lastTag ?? null,
        layers: [...m.layers, { ...names, fromSeq, toSeq }],
      }));
    } catch (err) {
      // The files stay: if the rename did land, the manifest on disk names them. If not, open deletes them.
      await layer.close();
      throw err;
    }
    // Same synchronous step as the index removal inside dropSealed: no read sees both or neither.
    this.layers.unshift(layer);
    await this.journal.dropSealed(segment);
    this.startCompaction();
  }

  /** Starts background compaction unless it runs already; `force` ignores a recent failure. */
  private startCompaction(force = false): void {
    if (this.compacting !== undefined || this.closed) return;
    if (!force && Date.now() - this.lastCompactionFailure < ROLL_RETRY_MS) return;
    this.compacting = this.compactUntilDone().finally(() => {
      this.compacting = undefined;
    });
  }

  private async compactUntilDone(): Promise<void> {
    try {
      while (!this.closed) {
        const oldestFirst = [...this.layers].reverse();
        const gc = { horizon: this.manifest.gcHorizon ?? 0, readPoints: this.readPoints() };
        const window = chooseCompaction(
          oldestFirst.map((l, i) => {
            const newer = oldestFirst[i + 1];
            return {
              dataBytes: l.dataBytes,
              garbageBytes: l.garbageBytes(gc),
              supersededBytes: newer === undefined ? 0 : l.supersededBytes(newer, gc),
            };
          }),
          this.compactionPolicy,
        );
        if (window === undefined) break;
        await this.compactWindow(oldestFirst.slice(window.first, window.last + 1), gc);
      }
      this.lastCompactionError = undefined;
    } catch (err) {
      if (this.closed) return;
      this.lastCompactionError = err instanceof Error ? err : new Error(String(err));
      this.lastCompactionFailure = Date.now();
    }
  }

  /** Sorted seqs that must stay exact: PITs and pinned branch bases. */
  private readPoints(): number[] {
    const points = new Set(this.manifest.pits.map((p) => p.seq));
    for (const seq of this.pins.keys()) points.add(seq);
    return [...points].sort((a, b) => a - b);
  }

  /**
   * Merges adjacent layers (oldest first) into one, dropping versions no readable seq sees.
   * Ordering as for a roll: new layer durable, then the manifest, then the in-memory swap,
   * then the old files go. A crash before the manifest leaves an unnamed new file (removed
   * at open); after it, unnamed old files (removed at open).
   */
  private async compactWindow(window: readonly DeltaLayer[], gc: GcLimits): Promise<void> {
    const first = window[0] as DeltaLayer;
    const last = window[window.length - 1] as DeltaLayer;
    const fromSeq = first.fromSeq;
    const toSeq = last.toSeq;
    const inWindow = gc.readPoints.filter((p) => p > fromSeq && p <= toSeq);
    const disks = this.info.disks;
    const { names } = await writePackedLayer(
      this.files,
      this.dir,
      window,
      disks.length,
      gc,
      this.packFrames,
      this.stopCompaction.signal,
      () => this.yieldToIngest(),
    );
    const diskBlocks = disks.map((d) => d.sizeBytes / BLOCK_SIZE);
    let merged: DeltaLayer;
    try {
      merged = await DeltaLayer.open(this.files, names, fromSeq, toSeq, diskBlocks, this.frames);
    } catch (err) {
      await this.files.delete(names.data);
      await this.files.delete(names.index);
      throw err;
    }
    const oldData = window.map((l) => l.names.data);
    let committed = false;
    try {
      await this.updateManifest((m) => {
        const at = m.layers.findIndex((l) => l.data === oldData[0]);
        const same = at >= 0 && oldData.every((f, k) => m.layers[at + k]?.data === f);
        // A PIT cut or a branch pinned inside the window since the snapshot: try again later.
        const now = this.readPoints().filter((p) => p > fromSeq && p <= toSeq);
        if (!same || now.some((p) => !inWindow.includes(p))) return undefined;
        committed = true;
        const layers = [...m.layers];
        layers.splice(at, oldData.length, { ...names, fromSeq, toSeq });
        return { ...m, layers };
      });
    } catch (err) {
      await merged.close();
      throw err;
    }
    if (!committed) {
      await merged.close();
      await this.files.delete(names.data);
      await this.files.delete(names.index);
      return;
    }
    const newestAt = this.layers.indexOf(last);
    this.layers.splice(newestAt, window.length, merged);
    const before = window.reduce((n, l) => n + l.storedBytes, 0);
    this.compacted = {
      layersIn: this.compacted.layersIn + window.length,
      layersOut: this.compacted.layersOut + 1,
      freedBytes: this.compacted.freedBytes + before - merged.storedBytes,
    };
    for (const layer of window) {
      await layer.close();
      await this.files.delete(layer.names.data);
      await this.files.delete(layer.names.index);
    }
  }
}

/** The manifest's layers must cover (base seq or 0, flushedSeq] exactly, in order, or seqs are missing. */
function checkLayerTiling(dir: string, manifest: Manifest): void {
  let expected = manifest.base?.seq ?? 0;
  for (const layer of manifest.layers) {
    if (layer.fromSeq !== expected || layer.toSeq <= layer.fromSeq) {
      throw new CorruptionError(
        `Manifest in ${dir} lists layer ${layer.data} for seqs (${layer.fromSeq}, ${layer.toSeq}], expected it to start at ${expected}`,
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

/** The data key a timeline's manifest names, from the key ring; undefined for an unencrypted timeline. */
async function keyOf(manifest: Manifest, keyRing: DataKeyProvider | undefined): Promise<DataKey | undefined> {
  if (manifest.keyId === undefined) return undefined;
  if (keyRing === undefined) {
    throw new UserError(
      `Timeline ${manifest.id} is encrypted with data key ${manifest.keyId}, but the store was opened ` +
        "without a key ring: open it with the key ring that holds this key",
      409,
    );
  }
  const key = await keyRing.keyById(manifest.keyId);
  if (key.id !== manifest.keyId) {
    throw new CorruptionError(`Key ring returned key ${key.id} when asked for ${manifest.keyId}`);
  }
  return key;
}
