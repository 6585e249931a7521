/**
 * The index of an L0 layer, built from the journal entries of one sealed segment: the
 * segment itself becomes the layer's data file (no byte of it is copied), so a roll writes
 * only this index. Each disk's block space is cut at every extent boundary into
 * non-overlapping intervals, each with its versions by seq (a later extent of the same batch
 * wins), and each data version points at the journal frame holding its first block.
 */
import { BLOCKS_PER_FRAME } from "./frame-context.js";
import { lowerBound } from "./gc-limits.js";
import { frameSpan, type JournalEntry } from "./journal-index.js";
import { LayerIndexBuilder, ZERO_FRAME } from "./layer-index.js";

interface Version {
  readonly interval: number;
  readonly entry: JournalEntry;
  /** Blocks into the entry where this interval starts. */
  readonly skip: number;
}

/**
 * Builds the index of segment entries `entries` (in file order). Returns the builder, ready
 * to encode with the layer's header.
 */
export function buildL0Index(entries: readonly JournalEntry[], diskCount: number): LayerIndexBuilder {
  const builder = new LayerIndexBuilder();
  // Frame table in file order; each data entry's first frame number.
  const firstFrame = new Map<JournalEntry, number>();
  for (const e of entries) {
    const ends = e.frameEnds;
    if (ends === undefined) continue;
    firstFrame.set(e, builder.frames);
    for (let k = 0; k < ends.length; k++) {
      const { at, length } = frameSpan(e, k);
      const first = e.start + k * BLOCKS_PER_FRAME;
      builder.addFrame(
        e.filePos + at,
        length,
        e.disk,
        first,
        Math.min(BLOCKS_PER_FRAME, e.end - first),
        e.seq,
      );
    }
  }
  for (let disk = 0; disk < diskCount; disk++) {
    const own = entries.filter((e) => e.disk === disk);
    if (own.length === 0) continue;
    const points = [...new Set(own.flatMap((e) => [e.start, e.end]))].sort((a, b) => a - b);
    const versions: Version[] = [];
    for (const entry of own) {
      const last = lowerBound(points, entry.end);
      for (let k = lowerBound(points, entry.start); k < last; k++) {
        versions.push({ interval: k, entry, skip: (points[k] ?? 0) - entry.start });
      }
    }
    versions.sort(
      (a, b) => a.interval - b.interval || a.entry.seq - b.entry.seq || a.entry.ord - b.entry.ord,
    );
    let current = -1;
    for (let i = 0; i < versions.length; i++) {
      const v = versions[i] as Version;
      const next = versions[i + 1];
      // Same interval and seq: a later extent of the same batch overrides this one.
      if (next !== undefined && next.interval === v.interval && next.entry.seq === v.entry.seq) continue;
      if (v.interval !== current) {
        current = v.interval;
        const start = points[current] ?? 0;
        builder.addInterval(disk, start, (points[current + 1] ?? 0) - start);
      }
      const frame = firstFrame.get(v.entry);
      if (frame === undefined) builder.addVersion(v.entry.seq, ZERO_FRAME, 0);
      else {
        builder.addVersion(
          v.entry.seq,
          frame + Math.floor(v.skip / BLOCKS_PER_FRAME),
          v.skip % BLOCKS_PER_FRAME,
        );
      }
    }
  }
  return builder;
}
