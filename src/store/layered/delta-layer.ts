/**
 * An immutable delta layer opened for reading (docs/store-format.md, "Layers"): a data
 * file of sealed frames (for an L0 layer the journal segment itself, for a packed layer the
 * frames compaction wrote) and an index file, both reached through LayerFiles. The index is
 * checked and loaded into typed arrays when the layer opens; frames stay in the data file
 * and are read, opened and checked per read.
 */
import { CorruptionError } from "../../common/errors.js";
import { BLOCK_SIZE } from "../staging-store.js";
import type { FrameContext } from "./frame-context.js";
import { versionNeeded, type GcLimits } from "./gc-limits.js";
import type { LayerFiles } from "./layer-files.js";
import { ZERO_FRAME, decodeLayerIndex, type LayerIndex } from "./layer-index.js";
import { FileRef, type ReadPlan } from "./read-plan.js";

export interface LayerNames {
  readonly data: string;
  readonly index: string;
}

export class DeltaLayer {
  private constructor(
    readonly names: LayerNames,
    readonly file: FileRef,
    readonly ix: LayerIndex,
  ) {}

  get fromSeq(): number {
    return this.ix.fromSeq;
  }

  get toSeq(): number {
    return this.ix.toSeq;
  }

  /** Opens and checks a layer; `fromSeq`/`toSeq` are what the manifest says it holds. */
  static async open(
    files: LayerFiles,
    names: LayerNames,
    fromSeq: number,
    toSeq: number,
    diskBlocks: readonly number[],
    frames: FrameContext,
  ): Promise<DeltaLayer> {
    const indexFile = await files.open(names.index);
    let ix: LayerIndex;
    try {
      const buf = Buffer.alloc(indexFile.size);
      await indexFile.read(buf, 0);
      ix = decodeLayerIndex(buf, indexFile.name, fromSeq, toSeq, diskBlocks);
    } finally {
      await indexFile.close();
    }
    if (ix.encrypted !== frames.codec.encrypted) {
      throw new CorruptionError(
        `Layer index ${indexFile.name} says its frames are ${ix.encrypted ? "" : "not "}encrypted, ` +
          `but the timeline's are ${frames.codec.encrypted ? "" : "not"}`,
      );
    }
    const data = await files.open(names.data);
    if (data.size !== ix.dataLength) {
      await data.close();
      throw new CorruptionError(
        `Layer data file ${data.name} is ${data.size} bytes, but its index ${indexFile.name} says ${ix.dataLength}`,
      );
    }
    return new DeltaLayer(names, new FileRef(data.name, data, frames), ix);
  }

  /** Index of the first interval of `disk` ending after `block`. */
  private firstAfter(disk: number, block: number): number {
    const { diskFirst, ivStart, ivCount } = this.ix;
    let lo = diskFirst[disk] ?? 0;
    let hi = diskFirst[disk + 1] ?? lo;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ivStart[mid] ?? 0) + (ivCount[mid] ?? 0) <= block) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Fills the plan's unfilled blocks with this layer's newest version at or below `seq`. */
  plan(plan: ReadPlan, seq: number): void {
    if (seq <= this.fromSeq || plan.remaining === 0) return;
    const { diskFirst, ivStart, ivCount, ivVer, verSeq, verFrame, verOffset } = this.ix;
    const { frOffset, frLength, frFirst, frCount } = this.ix;
    const first = plan.firstBlock;
    const end = first + plan.filled.length;
    const last = diskFirst[plan.disk + 1] ?? 0;
    for (let i = this.firstAfter(plan.disk, first); i < last; i++) {
      const start = ivStart[i] ?? 0;
      if (start >= end) break;
      let chosen = -1;
      for (let v = (ivVer[i + 1] ?? 0) - 1; v >= (ivVer[i] ?? 0); v--) {
        if ((verSeq[v] ?? Infinity) <= seq) {
          chosen = v;
          break;
        }
      }
      if (chosen < 0) continue;
      const lo = Math.max(start, first);
      const hi = Math.min(start + (ivCount[i] ?? 0), end);
      let f = verFrame[chosen] ?? ZERO_FRAME;
      if (f === ZERO_FRAME) {
        for (let b = lo; b < hi; b++) if (!plan.filled[b - first]) plan.fillZero(b - first);
      } else {
        const versionSeq = verSeq[chosen] ?? 0;
        // Walk to the frame holding block `lo`: the version's blocks run on through the next frames.
        let o = (verOffset[chosen] ?? 0) + (lo - start);
        while (o >= (frCount[f] ?? 1)) o -= frCount[f++] ?? 1;
        for (let b = lo; b < hi; b++) {
          const i2 = b - first;
          if (!plan.filled[i2]) {
            plan.fillFrom(
              i2,
              this.file,
              frOffset[f] ?? 0,
              o,
              frLength[f] ?? 0,
              frFirst[f] ?? 0,
              frCount[f] ?? 0,
              versionSeq,
            );
          }
          if (++o === frCount[f]) {
            f++;
            o = 0;
          }
        }
      }
      if (plan.remaining === 0) return;
    }
  }

  /**
   * Plain bytes of data versions no readable seq sees, judged within this layer alone (a
   * version superseded in a newer layer is found when the two are merged).
   */
  garbageBytes(gc: GcLimits): number {
    if (gc.horizon <= this.fromSeq) return 0;
    const { ivStart, ivVer, verFrame, verSeq, ivCount } = this.ix;
    let blocks = 0;
    for (let i = 0; i < ivStart.length; i++) {
      const end = (ivVer[i + 1] ?? 0) - 1; // the newest version is always needed
      for (let v = ivVer[i] ?? 0; v < end; v++) {
        if (verFrame[v] === ZERO_FRAME) continue;
        if (!versionNeeded(verSeq[v] ?? 0, verSeq[v + 1] ?? 0, gc)) blocks += ivCount[i] ?? 0;
      }
    }
    return blocks * BLOCK_SIZE;
  }

  /**
   * Plain bytes of this layer's newest data versions that `newer` (the next layer up)
   * supersedes with no readable seq in between: the garbage a merge of the two would find.
   */
  supersededBytes(newer: DeltaLayer, gc: GcLimits): number {
    if (gc.horizon <= this.fromSeq) return 0;
    const a = this.ix;
    const b = newer.ix;
    let blocks = 0;
    for (let disk = 0; disk + 1 < a.diskFirst.length; disk++) {
      let j = b.diskFirst[disk] ?? 0;
      const jEnd = b.diskFirst[disk + 1] ?? 0;
      for (let i = a.diskFirst[disk] ?? 0; i < (a.diskFirst[disk + 1] ?? 0); i++) {
        const newest = (a.ivVer[i + 1] ?? 0) - 1;
        if (a.verFrame[newest] === ZERO_FRAME) continue;
        const start = a.ivStart[i] ?? 0;
        const end = start + (a.ivCount[i] ?? 0);
        while (j < jEnd && (b.ivStart[j] ?? 0) + (b.ivCount[j] ?? 0) <= start) j++;
        for (let k = j; k < jEnd && (b.ivStart[k] ?? 0) < end; k++) {
          const next = b.verSeq[b.ivVer[k] ?? 0] ?? 0;
          if (versionNeeded(a.verSeq[newest] ?? 0, next, gc)) continue;
          const lo = Math.max(start, b.ivStart[k] ?? 0);
          const hi = Math.min(end, (b.ivStart[k] ?? 0) + (b.ivCount[k] ?? 0));
          blocks += hi - lo;
        }
      }
    }
    return blocks * BLOCK_SIZE;
  }

  /** Plain bytes of block data in this layer's frames (what compaction policy weighs). */
  get dataBytes(): number {
    let blocks = 0;
    for (const c of this.ix.frCount) blocks += c;
    return blocks * BLOCK_SIZE;
  }

  /** Bytes this layer takes in storage: data file and index file. */
  get storedBytes(): number {
    return this.ix.dataLength + this.ix.indexBytes;
  }

  /** Block ranges [start, end) of `disk` with a version in (fromSeq, toSeq], sorted. */
  changed(disk: number, fromSeq: number, toSeq: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    if (toSeq <= this.fromSeq || fromSeq >= this.toSeq) return out;
    const { diskFirst, ivVer, verSeq, ivStart, ivCount } = this.ix;
    const last = diskFirst[disk + 1] ?? 0;
    for (let i = diskFirst[disk] ?? 0; i < last; i++) {
      for (let v = ivVer[i] ?? 0; v < (ivVer[i + 1] ?? 0); v++) {
        const seq = verSeq[v] ?? 0;
        if (seq > fromSeq && seq <= toSeq) {
          const start = ivStart[i] ?? 0;
          out.push([start, start + (ivCount[i] ?? 0)]);
          break;
        }
      }
    }
    return out;
  }

  close(): Promise<void> {
    return this.file.retire();
  }
}
