/**
 * The store suite (issue 3's numbers). The parent makes the test image and runs the
 * baselines; each measured part runs in its own child process through the public
 * StagingStore API: ingest, random writes, the PIT hour, the read of one PIT, changedRanges
 * across the hour, and the 64 GiB sparse disk. See README "Benchmarks" for what each figure
 * means.
 */
import { rm, statfs } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { formatBytes } from "../../cli/output/format.js";
import { catRead, ddCopy } from "../baselines.js";
import { runPhase } from "../child-runner.js";
import type { Figure } from "../figure.js";
import { prepareRead, syncAll } from "../page-cache.js";
import type { Outcome, Phase, PhaseResult } from "../phase.js";
import { percentile } from "../percentiles.js";
import { ProgressLine } from "../progress-line.js";
import type { BaselineRun, PhaseCost, Suite, SuiteContext, SuiteReport } from "../suite.js";
import { writeTestImage } from "../test-image.js";
import { bigDiskPhase } from "./big-disk-phase.js";
import { changedRangesPhase } from "./changed-ranges-phase.js";
import { idlePhase } from "./idle-phase.js";
import { ingestPhase } from "./ingest-phase.js";
import { pitHourPhase } from "./pit-hour-phase.js";
import { pitReadPhase } from "./pit-read-phase.js";
import { randomWritePhase } from "./random-write-phase.js";
import { storePlan, storeSpaceNeeded } from "./store-plan.js";

const TMPFS_MAGIC = 0x01021994;
const IMAGE = "image.raw";
const COPY = "copy.raw";
const MB = 1e6;

export const storeSuite: Suite = {
  name: "store",
  description: "staging store: ingest, random writes, PITs, PIT read, changedRanges, memory (issue 3)",
  run: runStoreSuite,
};

async function runStoreSuite(ctx: SuiteContext): Promise<SuiteReport> {
  const plan = storePlan(ctx.options);
  const { signal, dir, cache } = ctx;
  const notes: string[] = [];
  const phases: PhaseCost[] = [];
  const baselines: BaselineRun[] = [];
  const load0 = loadavg()[0] ?? 0;
  await checkSpace(dir, storeSpaceNeeded(plan));
  if ((await statfs(dir)).type === TMPFS_MAGIC) {
    notes.push(`WARNING: ${dir} is tmpfs: Linux counts no write_bytes there, and nothing reaches a disk`);
  }
  const phase = async <P, R extends PhaseResult>(
    label: string,
    def: Phase<P, R>,
    params: P,
  ): Promise<Outcome<R>> => {
    ctx.log(`phase: ${label}`);
    syncAll(); // earlier phases' writeback must not land in this one's time
    const outcome = await runPhase(def, params, signal);
    phases.push({
      phase: label,
      seconds: outcome.seconds,
      peakRssBytes: outcome.peakRssBytes,
      peakHeapUsedBytes: outcome.peakHeapUsedBytes,
      peakArrayBuffersBytes: outcome.peakArrayBuffersBytes,
      writeBytes: outcome.writeBytes,
    });
    return outcome;
  };
  const baseline = async (run: () => Promise<BaselineRun>): Promise<BaselineRun> => {
    const result = await run();
    baselines.push(result);
    return result;
  };

  const image = join(dir, IMAGE);
  const storeDir = join(dir, "store");
  const S = plan.imageBytes;
  ctx.log(`test image: ${formatBytes(S)}, seed ${ctx.options.seed}`);
  const progress = new ProgressLine("write test image", S);
  const composition = await writeTestImage(image, S, {
    seed: ctx.options.seed,
    signal,
    onProgress: (done) => progress.update(done),
  });
  progress.done();
  const share = (n: number): string => `${((100 * n) / S).toFixed(1)}%`;
  notes.push(
    `test image ${formatBytes(S)} (seed ${ctx.options.seed}): ${share(composition.zero)} zeros (holes), ` +
      `${share(composition.text)} text-like, ${share(composition.random)} random, in ${composition.runs} runs`,
  );

  ctx.log("baseline: dd bs=4M conv=fsync");
  await prepareRead(cache, [image], signal);
  const dd = await baseline(() => ddCopy(dir, IMAGE, COPY, signal));
  await rm(join(dir, COPY), { force: true });

  const idle = await phase("idle", idlePhase, { storeDir, rollThresholdBytes: plan.rollThresholdBytes });
  await prepareRead(cache, [image], signal);
  const ingest = await phase("ingest", ingestPhase, {
    storeDir,
    image,
    imageBytes: S,
    extentBytes: plan.extentBytes,
    batchBytes: plan.batchBytes,
    inFlight: plan.inFlight,
    rollThresholdBytes: plan.rollThresholdBytes,
  });
  const random = await phase("random writes", randomWritePhase, {
    storeDir,
    bytes: plan.randomBytes,
    extentsPerBatch: plan.extentsPerBatch,
    inFlight: plan.inFlight,
    seed: ctx.options.seed + 1,
    rollThresholdBytes: plan.rollThresholdBytes,
  });
  const hour = await phase("PIT hour", pitHourPhase, {
    storeDir,
    seconds: plan.hourSeconds,
    writesPerSecond: plan.writesPerSecond,
    inFlight: plan.inFlight,
    seed: ctx.options.seed + 2,
    rollThresholdBytes: plan.rollThresholdBytes,
  });

  ctx.log("baseline: cat IMAGE > /dev/null");
  await prepareRead(cache, [image], signal);
  const cat = await baseline(() => catRead(dir, IMAGE, signal));
  await prepareRead(cache, [storeDir], signal);
  const read = await phase("read PIT", pitReadPhase, {
    storeDir,
    seq: hour.middleSeq,
    chunkBytes: plan.readChunkBytes,
    inFlight: plan.readInFlight,
    rollThresholdBytes: plan.rollThresholdBytes,
  });
  const changed = await phase("changedRanges", changedRangesPhase, {
    storeDir,
    fromSeq: hour.startSeq,
    toSeq: hour.endSeq,
    runs: plan.changedRangesRuns,
    rollThresholdBytes: plan.rollThresholdBytes,
  });
  await rm(storeDir, { recursive: true, force: true });
  await rm(image, { force: true });

  const big = await phase("big sparse disk", bigDiskPhase, {
    storeDir: join(dir, "store-big"),
    diskBytes: plan.bigDiskBytes,
    bytes: plan.bigWriteBytes,
    extentsPerBatch: plan.extentsPerBatch,
    inFlight: plan.inFlight,
    seed: ctx.options.seed + 3,
    chunkBytes: plan.readChunkBytes,
    readInFlight: plan.readInFlight,
    rollThresholdBytes: plan.rollThresholdBytes,
  });

  const rss = (id: string, o: { peakRssBytes: number }): Figure => ({
    id: `${id}.peakRss`,
    label: "  peak RSS",
    value: o.peakRssBytes / MB,
    unit: "MB",
  });
  const mbps = (bytes: number, seconds: number): number => bytes / seconds / MB;
  const changedMedian = percentile(changed.runSeconds, 50);
  const hourLabel = `${plan.hourSeconds} s`;
  const figures: Figure[] = [
    {
      id: "idle.peakRss",
      label: "Node.js child with the store open, idle: peak RSS (the floor of every RSS below)",
      value: idle.peakRssBytes / MB,
      unit: "MB",
    },
    {
      id: "ingest.throughput",
      label: `Sequential ingest of the ${formatBytes(S)} image, durable (vs dd bs=4M conv=fsync)`,
      value: mbps(S, ingest.seconds),
      unit: "MB/s",
      baseline: { label: dd.command, value: mbps(S, dd.seconds) },
      target: { of: "ratio", op: ">=", threshold: 0.7 },
    },
    {
      id: "ingest.diskWritten",
      label: "  storage bytes written, rolls included (vs dd's)",
      value: ingest.writeBytes / MB,
      unit: "MB",
      baseline: { label: dd.command, value: dd.writeBytes / MB },
    },
    rss("ingest", ingest),
    {
      id: "random.throughput",
      label: `Random 4 KiB writes, ${formatBytes(plan.randomBytes)} in batches of ${plan.extentsPerBatch}, durable`,
      value: mbps(random.receivedBytes, random.seconds),
      unit: "MB/s",
      target: { of: "value", op: ">=", threshold: 50 },
    },
    {
      id: "random.writeAmplification",
      label: "  write amplification (storage bytes written, rolls included / received)",
      value: random.writeBytes / random.receivedBytes,
      unit: "x",
      target: { of: "value", op: "<=", threshold: 1.5 },
    },
    {
      id: "random.writeAmplificationAtAck",
      label: "  write amplification at the last ack (before rolls settle)",
      value: random.writeBytesAtAck / random.receivedBytes,
      unit: "x",
    },
    { id: "random.ackP50", label: "  batch ack latency p50", value: random.ackMs.p50, unit: "ms" },
    { id: "random.ackP99", label: "  batch ack latency p99", value: random.ackMs.p99, unit: "ms" },
    rss("random", random),
    {
      id: "pits.count",
      label: `PITs, one per simulated second of ${hourLabel} of writes (real span ${hour.realSpanSeconds.toFixed(1)} s)`,
      value: hour.pits,
      unit: "PITs",
    },
    {
      id: "pits.writeThroughput",
      label: `  random writes meanwhile (${plan.writesPerSecond} x 4 KiB a second)`,
      value: mbps(hour.receivedBytes, hour.seconds),
      unit: "MB/s",
    },
    { id: "pits.cutP50", label: "  cutPit latency p50", value: hour.cutMs.p50, unit: "ms" },
    { id: "pits.cutP99", label: "  cutPit latency p99", value: hour.cutMs.p99, unit: "ms" },
    {
      id: "pits.compactSeconds",
      label: "  compaction catching up after the hour (before the PIT read)",
      value: hour.compactSeconds,
      unit: "s",
    },
    {
      id: "pits.compactWrites",
      label: "  compaction catching up: storage bytes written",
      value: hour.compactWriteBytes / MB,
      unit: "MB",
    },
    {
      id: "pits.writeAmplification",
      label: "  write amplification, PITs included",
      value: hour.writeBytes / hour.receivedBytes,
      unit: "x",
    },
    rss("pits", hour),
    {
      id: "pitRead.throughput",
      label: `Read one PIT of the hour end to end (second ${Math.floor(plan.hourSeconds / 2)}; vs cat)`,
      value: mbps(read.bytes, read.seconds),
      unit: "MB/s",
      baseline: { label: cat.command, value: mbps(S, cat.seconds) },
      target: { of: "ratio", op: ">=", threshold: 0.5 },
    },
    rss("pitRead", read),
    {
      id: "changedRanges.seconds",
      label: `changedRanges across the hour (${hour.pits - 1} PITs apart), median of ${plan.changedRangesRuns}`,
      value: changedMedian,
      unit: "s",
      target: { of: "value", op: "<", threshold: 1 },
    },
    rss("changedRanges", changed),
    {
      id: "bigDisk.peakRss",
      label: `${formatBytes(plan.bigDiskBytes)} sparse disk, ${formatBytes(plan.bigWriteBytes)} random 4 KiB writes, read at a PIT: peak RSS`,
      value: big.peakRssBytes / MB,
      unit: "MB",
      target: { of: "value", op: "<", threshold: 300 },
    },
    {
      id: "bigDisk.peakRssAfterWrites",
      label: "  peak RSS after the writes, before the read",
      value: big.peakRssAfterWritesBytes / MB,
      unit: "MB",
    },
    {
      id: "bigDisk.writeThroughput",
      label: "  writes",
      value: mbps(big.receivedBytes, big.writeSeconds),
      unit: "MB/s",
    },
    {
      id: "bigDisk.readThroughput",
      label: "  read of the whole disk",
      value: mbps(big.readBytes, big.readSeconds),
      unit: "MB/s",
    },
  ];

  notes.push(
    cache === "cold"
      ? "reads cold: sync and echo 3 > /proc/sys/vm/drop_caches before dd, the ingest, cat and the PIT read"
      : "reads warm: the image (and, for the PIT read, the store's files) read once before each timed read",
    `MB = 10^6 bytes; storage bytes written = write_bytes - cancelled_write_bytes from /proc/PID/io`,
    `the store ran with ${plan.rollThresholdBytes === null ? "its default options" : `rollThresholdBytes ${formatBytes(plan.rollThresholdBytes)}`}; ` +
      `ingest: ${formatBytes(plan.extentBytes)} extents in ${formatBytes(plan.batchBytes)} batches, ${plan.inFlight} in flight; ` +
      `ingest sent ${share(S - ingest.dataBytes)} of the image as zero extents`,
    `PIT times come from the store's wall clock: the ${plan.hourSeconds} simulated seconds took ${hour.realSpanSeconds.toFixed(1)} s; ` +
      `the PIT read and changedRanges use seqs, so no clock option was needed`,
    `changedRanges found ${changed.ranges} ranges (${formatBytes(changed.bytes)}); runs took ` +
      changed.runSeconds.map((s) => (s * 1000).toFixed(1)).join(", ") +
      " ms",
    `random writes: the store took ${random.settleSeconds.toFixed(2)} s after the last ack to close (background rolls); ` +
      "bytes still in the active journal segment at close have not been rolled yet, so they count once",
    "peak RSS is the child's VmHWM over its whole life, the bench's own part included: Node.js and the open store " +
      "(the idle row), the batches in flight (4 MiB each in the ingest, 1 MiB in the random writes) and 3 MiB of content pools",
    `load average ${load0.toFixed(2)} at the start, ${(loadavg()[0] ?? 0).toFixed(2)} at the end, on ${cpus().length} CPUs shared with other work`,
  );
  if (ctx.options.quick) notes.push("--quick: tiny sizes for a smoke run; these numbers mean nothing");
  return { suite: "store", figures, phases, baselines, notes };
}

async function checkSpace(dir: string, needed: number): Promise<void> {
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (free < needed) {
    throw new Error(
      `Not enough free space in ${dir}: the store suite needs about ${formatBytes(needed)}, ` +
        `${formatBytes(free)} is free; pass --dir on a larger filesystem or a smaller --size`,
    );
  }
}
