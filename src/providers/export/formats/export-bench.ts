/**
 * Export benchmark: our writer against `qemu-img convert` for each format, from the same
 * raw image (zeros 30% of it, as holes; the rest 1 MiB units of text-like and random data
 * in a fixed pseudo-random order). Both sides read the raw file from the page cache and
 * end with the output fsync'd (qemu-img convert does not flush by default, so the
 * benchmark fsyncs its output inside the timing). Not a test: `npm run bench` runs it.
 *
 * Each side runs `runs` times per format, alternating which goes first, and the medians
 * are compared, because the machines are shared and one run can be off by 2x.
 *
 * ratio = our rate / qemu-img's rate (= qemu-img seconds / our seconds); the target is
 * at least 0.7 for every format.
 */
import { execFile } from "node:child_process";
import { mkdir, open, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ImageFormat } from "../../image-format.js";
import { imageExtension } from "./image-writers.js";
import { openRawFileSource } from "./raw-file-source.js";
import { randomData, textLike } from "./sample-data.js";
import { writeImage } from "./write-image.js";
import { seededRandom } from "../../../bench/seeded-content.js";

export interface ExportBenchOptions {
  readonly dir: string;
  /** Size of the raw image; rounded down to a multiple of 4096. */
  readonly sizeBytes: number;
  readonly formats: readonly ImageFormat[];
  /** Runs of each side per format (default 3), alternating which goes first; medians are reported. */
  readonly runs?: number;
  readonly signal?: AbortSignal;
}

export interface ExportBenchResult {
  readonly format: ImageFormat;
  readonly ourSeconds: number;
  readonly qemuImgSeconds: number;
  /** Our rate over qemu-img's: above 1 we are faster. */
  readonly ratio: number;
  /** Every run's seconds, in order: the spread shows how noisy the machine was. */
  readonly ourRuns: readonly number[];
  readonly qemuImgRuns: readonly number[];
  /** Bytes the images occupy on disk (allocated blocks). */
  readonly ourImageBytes: number;
  readonly qemuImgImageBytes: number;
}

const UNIT = 1024 * 1024;
const TEXT_POOL = 8 * UNIT;

/** qemu-img convert arguments that make the same kind of image as our writer. */
const QEMU_ARGS: Readonly<Record<ImageFormat, readonly string[]>> = {
  raw: ["-O", "raw"],
  qcow2: ["-O", "qcow2"],
  vhd: ["-O", "vpc", "-o", "subformat=fixed"],
  "vhd-dynamic": ["-O", "vpc", "-o", "subformat=dynamic"],
  vmdk: ["-O", "vmdk", "-o", "subformat=streamOptimized"],
};

function run(cmd: string, args: readonly string[], signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { ...(signal === undefined ? {} : { signal }) }, (err, _stdout, stderr) => {
      if (err === null) resolve();
      else reject(new Error(`${cmd} ${args.join(" ")} failed: ${stderr || err.message}`, { cause: err }));
    });
  });
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The benchmark's raw image: 30% holes, 35% text-like, 35% random, in 1 MiB units. */
export async function makeBenchImage(path: string, sizeBytes: number, signal?: AbortSignal): Promise<void> {
  const text = textLike(TEXT_POOL, 42);
  const next = seededRandom(0);
  const fh = await open(path, "w");
  try {
    await fh.truncate(sizeBytes);
    for (let at = 0; at < sizeBytes; at += UNIT) {
      signal?.throwIfAborted();
      const n = Math.min(UNIT, sizeBytes - at);
      const pick = next();
      if (pick < 0.3) continue;
      const from = (at / 4096) % (TEXT_POOL - UNIT); // shift the text so units differ
      const data = pick < 0.65 ? text.subarray(from, from + n) : randomData(n);
      await fh.write(data, 0, n, at);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function timeOurs(
  format: ImageFormat,
  source: string,
  out: string,
  signal?: AbortSignal,
): Promise<number> {
  const input = await openRawFileSource(source);
  const t = performance.now();
  try {
    await writeImage(format, input, out, { ...(signal === undefined ? {} : { signal }) });
  } finally {
    await input.close();
  }
  return (performance.now() - t) / 1000;
}

async function timeQemuImg(
  format: ImageFormat,
  source: string,
  out: string,
  signal?: AbortSignal,
): Promise<number> {
  const t = performance.now();
  await run("qemu-img", ["convert", "-f", "raw", ...QEMU_ARGS[format], source, out], signal);
  await fsyncFile(out);
  return (performance.now() - t) / 1000;
}

export async function exportBench(opts: ExportBenchOptions): Promise<ExportBenchResult[]> {
  const size = Math.floor(opts.sizeBytes / 4096) * 4096;
  await mkdir(opts.dir, { recursive: true });
  const source = join(opts.dir, "export-bench-source.raw");
  const results: ExportBenchResult[] = [];
  try {
    await makeBenchImage(source, size, opts.signal);
    const runs = Math.max(1, Math.floor(opts.runs ?? 3));
    for (const format of opts.formats) {
      const ours = join(opts.dir, `export-bench-ours.${imageExtension(format)}`);
      const theirs = join(opts.dir, `export-bench-qemu.${imageExtension(format)}`);
      const ourTimes: number[] = [];
      const qemuTimes: number[] = [];
      let ourImageBytes = 0;
      let qemuImgImageBytes = 0;
      try {
        for (let i = 0; i < runs; i++) {
          const sides = [
            async () => {
              ourTimes.push(await timeOurs(format, source, ours, opts.signal));
              ourImageBytes = (await stat(ours)).blocks * 512;
              await rm(ours);
            },
            async () => {
              qemuTimes.push(await timeQemuImg(format, source, theirs, opts.signal));
              qemuImgImageBytes = (await stat(theirs)).blocks * 512;
              await rm(theirs);
            },
          ];
          if (i % 2 === 1) sides.reverse();
          for (const side of sides) await side();
        }
      } finally {
        await rm(ours, { force: true });
        await rm(theirs, { force: true });
      }
      const ourSeconds = median(ourTimes);
      const qemuImgSeconds = median(qemuTimes);
      results.push({
        format,
        ourSeconds,
        qemuImgSeconds,
        ratio: qemuImgSeconds / ourSeconds,
        ourRuns: ourTimes,
        qemuImgRuns: qemuTimes,
        ourImageBytes,
        qemuImgImageBytes,
      });
    }
  } finally {
    await rm(source, { force: true });
  }
  return results;
}
