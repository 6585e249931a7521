/**
 * The layered staging store: a directory of timelines (docs/store-format.md, "Layout").
 * It opens every timeline at start, wires branches to their parents, and serializes
 * creates and drops so that a branch can never lose its parent. A timeline that fails to
 * open (damage found by its checks) is kept aside: `timeline(id)` throws its error,
 * `dropTimeline(id)` removes it, and the other timelines keep working.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileDurably } from "../../common/durable-file.js";
import { CorruptionError, UserError, errorMessage } from "../../common/errors.js";
import type { Compression } from "../codec/block-codec.js";
import type {
  BranchBase,
  CreateTimelineOptions,
  DiskSpec,
  StagingStore,
  Timeline,
  TimelineInfo,
} from "../staging-store.js";
import type { ObjectStore } from "../object-store/object-store.js";
import { fsyncDir } from "./fs-util.js";
import { ObjectStoreLayerFiles } from "./object-store-layer-files.js";
import type { CompactionPolicy } from "./compaction-plan.js";
import {
  LayeredTimeline,
  type DataKeyProvider,
  type TimelineOptions,
  type TimelineSealing,
} from "./layered-timeline.js";
import { readManifest } from "./manifest.js";
import { checkSeq, validateDisks } from "./validate.js";

export interface LayeredStoreOptions {
  /** Journal bytes at which the active segment is sealed and rolled into a delta layer. Default 64 MiB. */
  readonly rollThresholdBytes?: number;
  /** When background compaction merges and rewrites layers (compaction-plan.ts). */
  readonly compaction?: CompactionPolicy;
  /**
   * Encryption at rest: every timeline created gets the data key of its `keyScope` (its
   * project) and seals every frame with it (AES-256-GCM); timelines that name a key are
   * reopened with `keyById`. Without a key ring frames carry an XXH64 only (not encrypted,
   * not authenticated), and timelines that name a key cannot be opened.
   */
  readonly keyRing?: DataKeyProvider;
  /** Compression compaction applies to new timelines' packed layers (default "zstd"); journal frames are never compressed. */
  readonly compression?: Compression;
  /**
   * Where layer files (data and index) live, as objects `timelines/<id>/<name>`; default:
   * each timeline's directory. Journals and manifests stay under `dir` either way. The
   * caller owns the object store (and closes it after the layered store).
   */
  readonly layerStore?: ObjectStore;
}

const STORE_FILE = "store.json";
const STORE_FORMAT = "lifeboat-layered-store";
const STORE_VERSION = 2;
const COMPRESSIONS: readonly Compression[] = ["none", "lz4", "zstd"];
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const DEFAULT_ROLL_THRESHOLD = 64 * 1024 * 1024;

interface Failed {
  readonly error: Error;
  readonly info: TimelineInfo | undefined;
}

export class LayeredStore implements StagingStore {
  private readonly timelines = new Map<string, LayeredTimeline>();
  private readonly failed = new Map<string, Failed>();
  /** Per branch: releases its pin on the parent's base seq (compaction keeps that seq exact). */
  private readonly basePins = new Map<string, () => void>();
  /** Creates and drops run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly timelineOptions: TimelineOptions,
    private readonly compression: Compression,
  ) {}

  private get timelinesDir(): string {
    return join(this.dir, "timelines");
  }

  static async open(dir: string, options?: LayeredStoreOptions, signal?: AbortSignal): Promise<LayeredStore> {
    const threshold = options?.rollThresholdBytes ?? DEFAULT_ROLL_THRESHOLD;
    if (!Number.isSafeInteger(threshold) || threshold <= 0) {
      throw new UserError(`Roll threshold ${threshold} is not a positive integer number of bytes`);
    }
    const compression = options?.compression ?? "zstd";
    if (!COMPRESSIONS.includes(compression)) {
      throw new UserError(`Unknown compression ${JSON.stringify(compression)}: expected none, lz4 or zstd`);
    }
    const store = new LayeredStore(
      dir,
      {
        rollThresholdBytes: threshold,
        ...(options?.compaction === undefined ? {} : { compaction: options.compaction }),
        ...(options?.keyRing === undefined ? {} : { keyRing: options.keyRing }),
        ...(options?.layerStore === undefined ? {} : { layerStore: options.layerStore }),
      },
      compression,
    );
    await mkdir(store.timelinesDir, { recursive: true });
    await fsyncDir(dir);
    await store.checkStoreFile();
    for (const name of await readdir(store.timelinesDir)) {
      signal?.throwIfAborted();
      const path = join(store.timelinesDir, name);
      if (name.startsWith(".")) {
        await rm(path, { recursive: true, force: true }); // an interrupted create or drop
        continue;
      }
      try {
        store.timelines.set(name, await LayeredTimeline.open(path, store.timelineOptions));
      } catch (err) {
        const info = await readManifest(path).then(
          (m) => infoOf(m.id, m.disks, m.createdAt, m.base),
          () => undefined,
        );
        const message = `Timeline ${name} cannot be opened: ${errorMessage(err)}`;
        store.failed.set(name, {
          error:
            err instanceof CorruptionError
              ? new CorruptionError(message, { cause: err })
              : err instanceof UserError
                ? new UserError(message, err.status, { cause: err })
                : new Error(message, { cause: err }),
          info,
        });
      }
    }
    await store.wireParents();
    await store.removeOrphanLayers(signal);
    return store;
  }

  private async checkStoreFile(): Promise<void> {
    const path = join(this.dir, STORE_FILE);
    let text: string | undefined;
    try {
      text = await readFile(path, "utf8");
    } catch {
      await writeFileDurably(path, JSON.stringify({ format: STORE_FORMAT, version: STORE_VERSION }) + "\n");
      return;
    }
    let parsed: { format?: unknown; version?: unknown } | undefined;
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      parsed = undefined;
    }
    if (parsed?.format === STORE_FORMAT && parsed.version === 1) {
      throw new UserError(
        `${this.dir} is a version 1 layered store, which this version cannot read (there is no upgrade): ` +
          "move it aside and let replication resync into a new store",
        409,
      );
    }
    if (parsed?.format !== STORE_FORMAT || parsed.version !== STORE_VERSION) {
      throw new CorruptionError(`Not a version ${STORE_VERSION} layered store: ${path} says ${text.trim()}`);
    }
  }

  /** Deletes the layer objects of timelines that no longer exist (a drop that crashed before deleting them). */
  private async removeOrphanLayers(signal?: AbortSignal): Promise<void> {
    const objects = this.timelineOptions.layerStore;
    if (objects === undefined) return;
    const ids = new Set((await objects.list("timelines/", signal)).map((o) => o.key.split("/")[1] ?? ""));
    for (const id of ids) {
      if (!this.has(id))
        await new ObjectStoreLayerFiles(objects, ObjectStoreLayerFiles.prefixOf(id)).deleteAll(signal);
    }
  }

  /** Links each branch to its parent; a branch whose parent is gone or damaged cannot be read. */
  private async wireParents(): Promise<void> {
    for (let changed = true; changed;) {
      changed = false;
      for (const [id, timeline] of this.timelines) {
        const base = timeline.info.base;
        if (base === undefined) continue;
        const parent = this.timelines.get(base.timeline);
        if (parent !== undefined) {
          timeline.parent = parent;
          this.basePins.set(id, parent.pin(base.seq, true));
          continue;
        }
        await timeline.close();
        this.timelines.delete(id);
        const cause = this.failed.get(base.timeline)?.error;
        this.failed.set(id, {
          error: new CorruptionError(
            `Timeline ${id} cannot be opened: its parent ${base.timeline} is ${cause ? "damaged" : "missing"}`,
            cause === undefined ? undefined : { cause },
          ),
          info: timeline.info,
        });
        changed = true;
      }
    }
  }

  createTimeline(id: string, disks: readonly DiskSpec[], options?: CreateTimelineOptions): Promise<Timeline> {
    return this.exclusive(async () => {
      checkId(id);
      validateDisks(disks);
      this.checkFree(id);
      const copy = disks.map((d) => ({ id: d.id, sizeBytes: d.sizeBytes }));
      const keyRing = this.timelineOptions.keyRing;
      let keyId: string | undefined;
      if (keyRing !== undefined) {
        const scope = options?.keyScope;
        if (scope === undefined) {
          throw new UserError(
            `Timeline ${id} needs a keyScope (its project): this store encrypts every timeline with its project's key`,
          );
        }
        keyId = (await keyRing.dataKey(scope)).id;
      }
      const sealing = { keyId, compression: this.compression };
      return this.build(infoOf(id, copy, Date.now(), undefined), undefined, sealing);
    });
  }

  createBranch(id: string, base: BranchBase): Promise<Timeline> {
    return this.exclusive(async () => {
      checkId(id);
      this.checkFree(id);
      const parent = this.getTimeline(base.timeline);
      checkSeq(base.seq, parent.info.base?.seq ?? 0, parent.lastSeq(), "Branch base seq");
      const info = infoOf(id, parent.info.disks, Date.now(), { timeline: base.timeline, seq: base.seq });
      const release = parent.pin(base.seq);
      try {
        const branch = await this.build(info, parent, parent.sealing);
        this.basePins.set(id, release);
        return branch;
      } catch (err) {
        release();
        throw err;
      }
    });
  }

  /** Invariant 8: build the directory aside, rename it into place, fsync the parent directory. */
  private async build(
    info: TimelineInfo,
    parent: LayeredTimeline | undefined,
    sealing: TimelineSealing,
  ): Promise<Timeline> {
    const tmp = join(this.timelinesDir, `.creating-${info.id}-${randomBytes(4).toString("hex")}`);
    const final = join(this.timelinesDir, info.id);
    try {
      await mkdir(tmp);
      await LayeredTimeline.initialize(tmp, info, sealing);
      await rename(tmp, final);
      await fsyncDir(this.timelinesDir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    const timeline = await LayeredTimeline.open(final, this.timelineOptions);
    timeline.parent = parent;
    this.timelines.set(info.id, timeline);
    return timeline;
  }

  timeline(id: string): Timeline {
    return this.getTimeline(id);
  }

  private getTimeline(id: string): LayeredTimeline {
    this.checkOpen();
    const timeline = this.timelines.get(id);
    if (timeline !== undefined) return timeline;
    const failed = this.failed.get(id);
    if (failed !== undefined) throw failed.error;
    throw new UserError(`Timeline not found: ${id}`, 404);
  }

  has(id: string): boolean {
    return this.timelines.has(id) || this.failed.has(id);
  }

  list(): readonly TimelineInfo[] {
    const infos = [...this.timelines.values()].map((t) => t.info);
    for (const f of this.failed.values()) if (f.info !== undefined) infos.push(f.info);
    return infos.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  dropTimeline(id: string): Promise<void> {
    return this.exclusive(async () => {
      if (!this.has(id)) return;
      const children = this.list()
        .filter((info) => info.base?.timeline === id)
        .map((info) => info.id);
      if (children.length > 0) {
        throw new UserError(
          `Timeline ${id} is the base of branch(es) ${children.join(", ")}: drop them first`,
          409,
        );
      }
      await this.timelines.get(id)?.close();
      this.timelines.delete(id);
      this.basePins.get(id)?.();
      this.basePins.delete(id);
      this.failed.delete(id);
      const doomed = join(this.timelinesDir, `.dropping-${id}-${randomBytes(4).toString("hex")}`);
      await rename(join(this.timelinesDir, id), doomed);
      await fsyncDir(this.timelinesDir);
      await rm(doomed, { recursive: true, force: true });
      // Layer objects go last: a crash before this leaves them unnamed, removed at the next open.
      const objects = this.timelineOptions.layerStore;
      if (objects !== undefined) {
        await new ObjectStoreLayerFiles(objects, ObjectStoreLayerFiles.prefixOf(id)).deleteAll();
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.catch(() => undefined);
    for (const timeline of this.timelines.values()) await timeline.close();
    this.timelines.clear();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`Store is closed: ${this.dir}`);
  }

  private checkFree(id: string): void {
    if (this.has(id)) throw new UserError(`Timeline already exists: ${id}`, 409);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      this.checkOpen();
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function checkId(id: string): void {
  if (typeof id !== "string" || !ID_PATTERN.test(id)) {
    throw new UserError(
      `Invalid timeline id ${JSON.stringify(id)}: use 1-128 of A-Z a-z 0-9 . _ - not starting with . _ or -`,
    );
  }
}

function infoOf(
  id: string,
  disks: readonly DiskSpec[],
  createdAt: number,
  base: BranchBase | undefined,
): TimelineInfo {
  return { id, disks, createdAt, ...(base === undefined ? {} : { base }) };
}
