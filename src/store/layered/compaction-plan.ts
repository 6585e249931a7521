/**
 * Which layers to compact next: a pure choice over the timeline's layers, oldest first.
 *
 * - Read depth: when there are more than `maxLayers` layers, merge the `fanIn` adjacent
 *   layers with the fewest bytes between them. Small layers merge first, so sizes grow
 *   geometrically and a read consults at most `maxLayers` layers plus the journal.
 * - Space: a layer, or two adjacent layers, where at least `garbageRatio` of the data is
 *   versions no readable seq sees any more (their PITs were dropped) are rewritten into one
 *   without them. Pairs catch a version superseded in the next layer; merging pair by pair
 *   reclaims garbage across any number of layers without rewriting them all at once.
 */

export interface LayerStat {
  readonly dataBytes: number;
  /** Bytes of versions no readable seq sees (within this layer alone). */
  readonly garbageBytes: number;
  /** Bytes of this layer's newest versions that the next newer layer makes garbage. */
  readonly supersededBytes: number;
}

export interface CompactionPolicy {
  readonly maxLayers: number;
  readonly fanIn: number;
  readonly garbageRatio: number;
}

export const DEFAULT_COMPACTION_POLICY: CompactionPolicy = { maxLayers: 8, fanIn: 4, garbageRatio: 0.25 };

/** Index range [first, last] (oldest-first positions) to merge into one layer, or undefined. */
export interface CompactionWindow {
  readonly first: number;
  readonly last: number;
  readonly reason: "depth" | "garbage";
}

export function chooseCompaction(
  layers: readonly LayerStat[],
  policy: CompactionPolicy = DEFAULT_COMPACTION_POLICY,
): CompactionWindow | undefined {
  if (layers.length > policy.maxLayers) {
    const width = Math.min(Math.max(policy.fanIn, 2), layers.length);
    let best = 0;
    let bestBytes = Infinity;
    for (let first = 0; first + width <= layers.length; first++) {
      let bytes = 0;
      for (let i = first; i < first + width; i++) bytes += layers[i]?.dataBytes ?? 0;
      if (bytes < bestBytes) {
        bestBytes = bytes;
        best = first;
      }
    }
    return { first: best, last: best + width - 1, reason: "depth" };
  }
  const worth = (garbage: number, bytes: number): boolean =>
    garbage > 0 && garbage >= policy.garbageRatio * bytes;
  for (const [i, layer] of layers.entries()) {
    if (worth(layer.garbageBytes, layer.dataBytes)) return { first: i, last: i, reason: "garbage" };
    const next = layers[i + 1];
    if (
      next !== undefined &&
      worth(layer.garbageBytes + layer.supersededBytes + next.garbageBytes, layer.dataBytes + next.dataBytes)
    ) {
      return { first: i, last: i + 1, reason: "garbage" };
    }
  }
  return undefined;
}
