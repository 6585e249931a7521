#!/usr/bin/env node
// Throughput of the staging store's frame codec, one core: seal and open GB/s (of plain
// bytes) and the compression ratio, on frames of mixed data (half text-like, half random
// 4 KiB blocks), then the all-zero check. A measurement to compare designs on one machine,
// not a test. Usage: npm run build && node scripts/bench-codec.js [frameKiB=64] [MiB=64]
import { randomBytes } from "node:crypto";
import { createFrameCodec } from "../dist/store/codec/frame-codec.js";
import { makeDataKey } from "../dist/store/codec/data-key.js";
import { isZero } from "../dist/store/codec/is-zero.js";
import { mixedBlocks, textLike } from "../dist/store/codec/test-support.js";

const frameBytes = Number(process.argv[2] ?? 64) * 1024;
const totalBytes = Number(process.argv[3] ?? 64) * 1024 * 1024;
const RUNS = 5;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * GB/s of `bytes` per call of fn, median over `RUNS` timed passes after one warm-up pass,
 * by CPU time (user + system) of this process: on a shared machine wall time mostly
 * measures the neighbours. The codec is synchronous, so CPU time is one core's time.
 */
function measure(bytes, fn) {
  fn();
  const rates = [];
  for (let r = 0; r < RUNS; r++) {
    const start = process.cpuUsage();
    fn();
    const used = process.cpuUsage(start);
    rates.push(bytes / ((used.user + used.system) * 1000));
  }
  return median(rates);
}

function corpus(kind) {
  const blocks = totalBytes / 4096;
  if (kind === "mixed") return mixedBlocks(blocks, 1);
  if (kind === "text") return textLike(totalBytes, 1);
  return randomBytes(totalBytes);
}

const key = makeDataKey("bench", randomBytes(32));
const configs = [
  ["zstd+AES", { compression: "zstd", key }],
  ["lz4+AES", { compression: "lz4", key }],
  ["none+AES", { compression: "none", key }],
  ["zstd", { compression: "zstd" }],
  ["lz4", { compression: "lz4" }],
  ["none", { compression: "none" }],
];

console.log(
  `node ${process.version}, ${frameBytes / 1024} KiB frames, ${totalBytes / 2 ** 20} MiB per pass, median of ${RUNS}, GB/s of plain data per second of CPU time`,
);
for (const kind of ["mixed", "text", "random"]) {
  const data = corpus(kind);
  const plains = [];
  for (let at = 0; at < data.length; at += frameBytes) plains.push(data.subarray(at, at + frameBytes));
  const aads = plains.map((_, i) => Buffer.from(`timeline t1 disk 0 offset ${i * frameBytes} seq 42`));
  console.log(`\n${kind} data`);
  console.log("codec".padEnd(10), "seal GB/s".padStart(10), "open GB/s".padStart(10), "ratio".padStart(7));
  for (const [name, options] of configs) {
    const codec = createFrameCodec(options);
    let frames = plains.map((p, i) => codec.seal(p, aads[i]));
    const stored = frames.reduce((n, f) => n + f.length, 0);
    const seal = measure(data.length, () => {
      frames = plains.map((p, i) => codec.seal(p, aads[i]));
    });
    const open = measure(data.length, () => {
      for (let i = 0; i < frames.length; i++) codec.open(frames[i], aads[i]);
    });
    console.log(
      name.padEnd(10),
      seal.toFixed(2).padStart(10),
      open.toFixed(2).padStart(10),
      (data.length / stored).toFixed(2).padStart(7),
    );
  }
}

// The all-zero check: Buffer.compare (what isZero uses) against a JavaScript u64 scan.
function u64Scan(bytes) {
  const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 3);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return false;
  return true;
}
console.log("\nall-zero check on zero buffers (GB/s, ns per call)");
for (const size of [4096, 65536]) {
  const zero = Buffer.alloc(size);
  const calls = Math.floor(2 ** 30 / size);
  for (const [name, fn] of [
    ["isZero", isZero],
    ["u64 scan", u64Scan],
  ]) {
    const rate = measure(size * calls, () => {
      for (let i = 0; i < calls; i++) if (!fn(zero)) throw new Error("not zero?");
    });
    console.log(
      `${name.padEnd(10)} ${String(size).padStart(6)} B ${rate.toFixed(1).padStart(6)} GB/s ${(size / rate).toFixed(0).padStart(6)} ns`,
    );
  }
}
