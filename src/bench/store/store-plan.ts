/**
 * Every size and count the store suite uses, derived from --size and --quick in one place
 * so the figures' labels, the phases and the report agree. Scaled from the image size S:
 * random writes S/4; the PIT hour 3600 simulated seconds of min(64, S / 64 MiB) random
 * 4 KiB writes each; the big sparse disk 16 S with S/4 of random writes (64 GiB and 1 GiB
 * at the default 4 GiB).
 */
import type { BenchOptions } from "../suite.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const STORE_DEFAULT_BYTES = 4 * GiB;
export const STORE_QUICK_BYTES = 32 * MiB;
export const WRITE_BYTES = 4 * KiB;

export interface StorePlan {
  readonly imageBytes: number;
  /** The agent's extent size when it reads a disk sequentially; all-zero extents are sent as zero extents. */
  readonly extentBytes: number;
  readonly batchBytes: number;
  /** Batches an agent keeps unacknowledged. */
  readonly inFlight: number;
  readonly randomBytes: number;
  readonly extentsPerBatch: number;
  /** Simulated seconds of the PIT hour: one PIT each, plus one at its start. */
  readonly hourSeconds: number;
  readonly writesPerSecond: number;
  readonly bigDiskBytes: number;
  readonly bigWriteBytes: number;
  readonly readChunkBytes: number;
  readonly readInFlight: number;
  readonly changedRangesRuns: number;
  /** The store's roll threshold; null for its default. --quick lowers it so layers get rolled. */
  readonly rollThresholdBytes: number | null;
}

export function storePlan(options: Pick<BenchOptions, "sizeBytes" | "quick">): StorePlan {
  const imageBytes = options.sizeBytes ?? (options.quick ? STORE_QUICK_BYTES : STORE_DEFAULT_BYTES);
  if (!Number.isSafeInteger(imageBytes) || imageBytes < 4 * MiB || imageBytes % MiB !== 0) {
    throw new RangeError(`Store bench size ${imageBytes} must be a whole number of MiB, at least 4 MiB`);
  }
  const extentsPerBatch = 256;
  const batchOfWrites = extentsPerBatch * WRITE_BYTES;
  const quarter = Math.max(batchOfWrites, Math.floor(imageBytes / 4 / batchOfWrites) * batchOfWrites);
  return {
    imageBytes,
    extentBytes: 64 * KiB,
    batchBytes: 4 * MiB,
    inFlight: 4,
    randomBytes: quarter,
    extentsPerBatch,
    hourSeconds: options.quick ? 60 : 3600,
    writesPerSecond: options.quick ? 8 : Math.min(64, Math.max(1, Math.floor(imageBytes / (64 * MiB)))),
    bigDiskBytes: 16 * imageBytes,
    bigWriteBytes: quarter,
    readChunkBytes: 4 * MiB,
    readInFlight: 4,
    changedRangesRuns: 5,
    rollThresholdBytes: options.quick ? 4 * MiB : null,
  };
}

/** Bytes the suite needs on the working directory's filesystem at most, roughly. */
export function storeSpaceNeeded(plan: StorePlan): number {
  const hourBytes = plan.hourSeconds * plan.writesPerSecond * WRITE_BYTES;
  return 3 * plan.imageBytes + 2 * (plan.randomBytes + hourBytes + plan.bigWriteBytes) + GiB;
}
