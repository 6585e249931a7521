/**
 * The deterministic test image every bench reads: runs of zeros, text-like data and random
 * data in a shuffled order, each run's length drawn log-uniformly from its kind's range
 * (zeros come in large runs like free space, text in small ones like files and logs), each
 * kind covering its share of the image. Zero runs are holes: the file is written sparse.
 */
import { open } from "node:fs/promises";
import { BLOCK, SeededContent, seededRandom } from "./seeded-content.js";

export type RunKind = "zero" | "text" | "random";

export interface ImageRun {
  readonly kind: RunKind;
  readonly offset: number;
  readonly length: number;
}

export interface RunShape {
  /** Share of the image's bytes, 0..1; the shares of the three kinds add up to 1. */
  readonly share: number;
  /** Run length range in bytes, multiples of 4096. */
  readonly minBytes: number;
  readonly maxBytes: number;
}

export type ImageMix = Readonly<Record<RunKind, RunShape>>;

const KiB = 1024;
const MiB = 1024 * KiB;

/** 30% zeros; the rest half text, half random. */
export const DEFAULT_MIX: ImageMix = {
  zero: { share: 0.3, minBytes: 16 * KiB, maxBytes: 64 * MiB },
  text: { share: 0.35, minBytes: 4 * KiB, maxBytes: 4 * MiB },
  random: { share: 0.35, minBytes: 64 * KiB, maxBytes: 16 * MiB },
};

const KINDS: readonly RunKind[] = ["zero", "text", "random"];

export type ImageComposition = Readonly<Record<RunKind, number>> & { readonly runs: number };

/**
 * The runs of an image of `sizeBytes` (a multiple of 4096) for `seed`; they tile the image.
 * Each kind gets runs until it holds its share (to the block), then the runs are shuffled,
 * so the shares are exact however few long runs a small image has.
 */
export function planImage(sizeBytes: number, seed: number, mix: ImageMix = DEFAULT_MIX): ImageRun[] {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % BLOCK !== 0) {
    throw new RangeError(`Image size ${sizeBytes} is not a positive multiple of ${BLOCK}`);
  }
  const random = seededRandom(seed);
  const pieces: Array<{ kind: RunKind; length: number }> = [];
  let left = sizeBytes;
  KINDS.forEach((kind, i) => {
    const { share, minBytes, maxBytes } = mix[kind];
    const quota =
      i === KINDS.length - 1 ? left : Math.min(left, Math.round((share * sizeBytes) / BLOCK) * BLOCK);
    left -= quota;
    for (let given = 0; given < quota;) {
      const drawn = minBytes * Math.pow(maxBytes / minBytes, random());
      const length = Math.min(quota - given, Math.max(BLOCK, Math.round(drawn / BLOCK) * BLOCK));
      pieces.push({ kind, length });
      given += length;
    }
  });
  for (let i = pieces.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pieces[i], pieces[j]] = [pieces[j] as (typeof pieces)[number], pieces[i] as (typeof pieces)[number]];
  }
  const runs: ImageRun[] = [];
  let offset = 0;
  for (const { kind, length } of pieces) {
    const last = runs[runs.length - 1];
    if (last?.kind === kind)
      runs[runs.length - 1] = { kind, offset: last.offset, length: last.length + length };
    else runs.push({ kind, offset, length });
    offset += length;
  }
  return runs;
}

export function compositionOf(runs: readonly ImageRun[]): ImageComposition {
  const bytes = { zero: 0, text: 0, random: 0 };
  for (const run of runs) bytes[run.kind] += run.length;
  return { ...bytes, runs: runs.length };
}

export interface WriteImageOptions {
  readonly seed: number;
  readonly mix?: ImageMix;
  readonly signal?: AbortSignal;
  readonly onProgress?: (doneBytes: number) => void;
}

const CHUNK = 4 * MiB;

/** Writes the image to `path` (replacing it), sparse, and fsyncs it. */
export async function writeTestImage(
  path: string,
  sizeBytes: number,
  options: WriteImageOptions,
): Promise<ImageComposition> {
  const runs = planImage(sizeBytes, options.seed, options.mix);
  const content = new SeededContent(options.seed);
  const random = seededRandom(options.seed ^ 0x7e47);
  const handle = await open(path, "w");
  try {
    await handle.truncate(sizeBytes);
    const buffer = Buffer.alloc(CHUNK);
    for (const run of runs) {
      options.signal?.throwIfAborted();
      if (run.kind !== "zero") {
        for (let done = 0; done < run.length; done += CHUNK) {
          const piece = buffer.subarray(0, Math.min(CHUNK, run.length - done));
          if (run.kind === "text") content.fillText(piece, random);
          else content.fillRandom(piece, run.offset + done);
          await writeFully(handle, piece, run.offset + done);
        }
      }
      options.onProgress?.(run.offset + run.length);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return compositionOf(runs);
}

async function writeFully(
  handle: Awaited<ReturnType<typeof open>>,
  data: Buffer,
  position: number,
): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
