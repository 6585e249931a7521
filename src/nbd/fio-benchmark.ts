/**
 * Random-write IOPS of our NBD server against qemu-nbd serving the same file, with fio's
 * nbd engine: `node dist/nbd/fio-benchmark.js [seconds=10] [rounds=1] [sizeMiB=256] [no-inline]`
 * (`no-inline` sends every write of ours through libuv's thread pool).
 * The file is filled with data first so neither server pays for block allocation, and the
 * servers take turns so both see the same page cache.
 */
import { execFile } from "node:child_process";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { FileBackend } from "./file-backend.js";
import { NbdServer } from "./nbd-server.js";
import { startQemuNbd } from "./testing/qemu-nbd.js";
import { nbdUnixUri } from "./testing/run-tool.js";

const run = promisify(execFile);
const MiB = 1024 * 1024;

async function fioIops(uri: string, seconds: number, sizeMiB: number): Promise<number> {
  const { stdout } = await run(
    "fio",
    [
      "--name=bench",
      "--ioengine=nbd",
      `--uri=${uri}`,
      "--rw=randwrite",
      "--bs=4k",
      "--iodepth=16",
      `--size=${sizeMiB}M`,
      `--runtime=${seconds}`,
      "--time_based",
      "--output-format=json",
    ],
    { maxBuffer: 16 * MiB },
  );
  const report = JSON.parse(stdout.slice(stdout.indexOf("{"))) as { jobs: { write: { iops: number } }[] };
  return report.jobs[0]!.write.iops;
}

async function ours(
  file: string,
  socketPath: string,
  seconds: number,
  sizeMiB: number,
  inlineWrites: boolean,
): Promise<number> {
  const backend = await FileBackend.open(file, { inlineWrites });
  const server = new NbdServer({ log: () => undefined });
  server.addExport("bench", backend);
  await server.listen({ socketPath });
  try {
    return await fioIops(nbdUnixUri("bench", socketPath), seconds, sizeMiB);
  } finally {
    await server.close();
    await backend.close();
  }
}

async function qemu(file: string, socketPath: string, seconds: number, sizeMiB: number): Promise<number> {
  const q = await startQemuNbd(file, socketPath, { exportName: "bench", format: "raw" });
  try {
    return await fioIops(nbdUnixUri("bench", socketPath), seconds, sizeMiB);
  } finally {
    await q.stop();
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const rounds = Number(process.argv[3] ?? 1);
  const sizeMiB = Number(process.argv[4] ?? 256);
  const inlineWrites = process.argv[5] !== "no-inline";
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-nbd-bench-"));
  try {
    const file = join(dir, "disk.img");
    const fh = await open(file, "w");
    const chunk = Buffer.alloc(MiB, 0xa5);
    for (let i = 0; i < sizeMiB; i++) await fh.write(chunk, 0, MiB, i * MiB);
    await fh.sync();
    await fh.close();
    const results: { ours: number[]; qemu: number[] } = { ours: [], qemu: [] };
    for (let r = 0; r < rounds; r++) {
      results.ours.push(await ours(file, join(dir, `o${r}.sock`), seconds, sizeMiB, inlineWrites));
      results.qemu.push(await qemu(file, join(dir, `q${r}.sock`), seconds, sizeMiB));
      console.log(
        `round ${r + 1}: lifeboat ${Math.round(results.ours[r]!)} IOPS, qemu-nbd ${Math.round(results.qemu[r]!)} IOPS`,
      );
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const o = mean(results.ours);
    const q = mean(results.qemu);
    console.log(
      `fio randwrite 4k iodepth 16, ${seconds} s, ${sizeMiB} MiB file: lifeboat` +
        `${inlineWrites ? "" : " (no inline writes)"} ${Math.round(o)} IOPS, ` +
        `qemu-nbd ${Math.round(q)} IOPS, ratio ${(o / q).toFixed(2)}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
