/**
 * What the intercept tracker costs a writer, and the lag it keeps:
 * `node dist/agent/trackers/intercept/intercept-fio-benchmark.js [seconds=10] [sizeMiB=256] [rateMBps=20]`.
 *
 * A standby site runs as its own process (`lifeboat up`), the agent in this one. fio
 * (`--ioengine=nbd --rw=randwrite --bs=4k --iodepth=16`) writes to the same pre-filled file
 * served by qemu-nbd, by our NBD server alone, and by the agent's intercept export
 * (asynchronous, then synchronous); then at a fixed rate through the asynchronous export.
 * While fio runs against the agent, its lag (the age of the oldest write not yet durable at
 * the standby) is sampled every 10 ms.
 */
import { execFile } from "node:child_process";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { ApiClient } from "../../../cli/client/api-client.js";
import type { ClientConfig } from "../../../cli/client/client-config.js";
import { waitFor } from "../../../common/wait-for.js";
import { startLifeboat, stop, tail } from "../../../demo/processes.js";
import { FileBackend } from "../../../nbd/file-backend.js";
import { NbdServer } from "../../../nbd/nbd-server.js";
import { startQemuNbd } from "../../../nbd/testing/qemu-nbd.js";
import { nbdUnixUri } from "../../../nbd/testing/run-tool.js";
import { Agent } from "../../agent.js";

const run = promisify(execFile);
const MiB = 1024 * 1024;

interface FioResult {
  readonly iops: number;
  readonly mbps: number;
  /** Completion latency percentiles, ms. */
  readonly clatP50: number;
  readonly clatP99: number;
}

async function fio(uri: string, seconds: number, sizeMiB: number, rateMBps?: number): Promise<FioResult> {
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
      ...(rateMBps === undefined ? [] : [`--rate=${rateMBps}m`]),
      "--output-format=json",
    ],
    { maxBuffer: 16 * MiB },
  );
  const report = JSON.parse(stdout.slice(stdout.indexOf("{"))) as {
    jobs: { write: { iops: number; bw_bytes: number; clat_ns: { percentile: Record<string, number> } } }[];
  };
  const w = report.jobs[0]!.write;
  return {
    iops: w.iops,
    mbps: w.bw_bytes / 1e6,
    clatP50: (w.clat_ns.percentile["50.000000"] ?? 0) / 1e6,
    clatP99: (w.clat_ns.percentile["99.000000"] ?? 0) / 1e6,
  };
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface AgentRun {
  readonly fio: FioResult;
  readonly lag: { p50: number; p99: number; max: number };
  readonly catchUpMs: number;
  readonly backlogMax: number;
  /** CPU per write of the agent (this process) and of the standby site's process, µs. */
  readonly agentUs: number;
  readonly siteUs: number;
}

/** Runs fio against the agent while sampling its lag; then waits for it to catch up. */
async function throughAgent(
  agent: Agent,
  sitePid: number,
  uri: string,
  seconds: number,
  sizeMiB: number,
  rateMBps?: number,
): Promise<AgentRun> {
  const lags: number[] = [];
  const cpu0 = [await cpuSeconds(process.pid), await cpuSeconds(sitePid)];
  let backlogMax = 0;
  const sampler = setInterval(() => {
    const s = agent.status();
    lags.push((s.lagSeconds ?? Number.POSITIVE_INFINITY) * 1000);
    backlogMax = Math.max(
      backlogMax,
      s.disks.reduce((n, d) => n + d.backlogBytes, 0),
    );
  }, 10);
  let result: FioResult;
  try {
    result = await fio(uri, seconds, sizeMiB, rateMBps);
  } finally {
    clearInterval(sampler);
  }
  const ended = Date.now();
  await waitFor(
    "the agent to catch up",
    () => Promise.resolve((agent.status().lagSeconds ?? 1) < 0.005),
    120_000,
    5,
  );
  lags.sort((a, b) => a - b);
  const catchUpMs = Date.now() - ended;
  const writes = result.iops * seconds;
  const cpu1 = [await cpuSeconds(process.pid), await cpuSeconds(sitePid)];
  return {
    fio: result,
    lag: { p50: percentile(lags, 50), p99: percentile(lags, 99), max: lags.at(-1) ?? Number.NaN },
    catchUpMs,
    backlogMax,
    agentUs: ((cpu1[0]! - cpu0[0]!) * 1e6) / writes,
    siteUs: ((cpu1[1]! - cpu0[1]!) * 1e6) / writes,
  };
}

async function plainServer(
  file: string,
  socketPath: string,
  seconds: number,
  sizeMiB: number,
): Promise<FioResult> {
  const backend = await FileBackend.open(file);
  const server = new NbdServer({ log: () => undefined });
  server.addExport("bench", backend);
  await server.listen({ socketPath });
  try {
    return await fio(nbdUnixUri("bench", socketPath), seconds, sizeMiB);
  } finally {
    await server.close();
    await backend.close();
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const sizeMiB = Number(process.argv[3] ?? 256);
  const rate = Number(process.argv[4] ?? 20);
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-intercept-bench-"));
  const up = startLifeboat(
    "up",
    ["up", "--data", join(dir, "site"), "--api-port", "0", "--replication-port", "0"],
    join(dir, "up.log"),
    { LIFEBOAT_QUIET: "1" },
  );
  const agents: Agent[] = [];
  try {
    const file = join(dir, "disk.img");
    const fh = await open(file, "w");
    const chunk = Buffer.alloc(MiB, 0xa5);
    for (let i = 0; i < sizeMiB; i++) await fh.write(chunk, 0, MiB, i * MiB);
    await fh.sync();
    await fh.close();

    const q = await startQemuNbd(file, join(dir, "q.sock"), { exportName: "bench", format: "raw" });
    let qemu: FioResult;
    try {
      qemu = await fio(nbdUnixUri("bench", join(dir, "q.sock")), seconds, sizeMiB);
    } finally {
      await q.stop();
    }
    const plain = await plainServer(file, join(dir, "p.sock"), seconds, sizeMiB);

    const config = await waitFor(
      "lifeboat up to write its client config",
      async () => {
        if (up.child.exitCode !== null) throw new Error(`lifeboat up exited:\n${await tail(up)}`);
        return JSON.parse(await readFile(join(dir, "site", "client.json"), "utf8")) as ClientConfig;
      },
      30_000,
    );
    const api = new ApiClient(config);
    await api.post("/api/projects", { name: "bench", type: "dr" });
    const { token } = await api.post<{ token: string }>("/api/projects/bench/tokens", { ttlSeconds: 3600 });
    const startAgent = async (sync: boolean): Promise<{ agent: Agent; uri: string }> => {
      let uri = "";
      const agent = await Agent.start({
        token,
        disks: [file],
        name: "bench-1",
        stateDir: join(dir, "agent"),
        log: () => undefined,
        spoolLimitBytes: 1024 * MiB,
        tracker: "intercept",
        trackerOptions: { nbdListen: { socketPath: join(dir, "agent.sock") }, sync },
        onExports: (e) => (uri = e[0]?.uri ?? ""),
      });
      agents.push(agent);
      void agent.run();
      await waitFor(
        "the agent to finish its initial copy",
        () =>
          Promise.resolve(
            uri !== "" && agent.status().state === "CONTINUOUS" && (agent.status().lagSeconds ?? 1) < 0.01,
          ),
        300_000,
        20,
      );
      return { agent, uri };
    };

    const a = await startAgent(false);
    // The paced run first: after a full-speed run the store is still busy rolling and
    // compacting what it took, and that shows up as lag. A pause between the others.
    const paced = await throughAgent(a.agent, up.child.pid!, a.uri, seconds, sizeMiB, rate);
    await sleep(5000);
    const full = await throughAgent(a.agent, up.child.pid!, a.uri, seconds, sizeMiB);
    await a.agent.stop();
    await sleep(5000);
    const s = await startAgent(true);
    const sync = await throughAgent(s.agent, up.child.pid!, s.uri, seconds, sizeMiB);
    await s.agent.stop();

    const r = (n: number): string => String(Math.round(n));
    const ms = (n: number): string => n.toFixed(1);
    console.log(
      `fio randwrite 4k iodepth 16, ${seconds} s, ${sizeMiB} MiB file (IOPS; fio completion latency p50/p99 ms)`,
    );
    console.log(
      `  qemu-nbd                 ${r(qemu.iops)} IOPS  clat ${ms(qemu.clatP50)}/${ms(qemu.clatP99)}`,
    );
    console.log(
      `  lifeboat NBD server      ${r(plain.iops)} IOPS  clat ${ms(plain.clatP50)}/${ms(plain.clatP99)}`,
    );
    for (const [name, x] of [
      ["intercept async", full],
      [`intercept async @${rate} MB/s`, paced],
      ["intercept sync", sync],
    ] as const) {
      console.log(
        `  ${name.padEnd(24)} ${r(x.fio.iops)} IOPS (${x.fio.mbps.toFixed(1)} MB/s, ${(x.fio.iops / qemu.iops).toFixed(2)}x qemu-nbd)` +
          `  clat ${ms(x.fio.clatP50)}/${ms(x.fio.clatP99)}` +
          `  lag p50 ${ms(x.lag.p50)} p99 ${ms(x.lag.p99)} max ${ms(x.lag.max)} ms` +
          `  backlog max ${(x.backlogMax / MiB).toFixed(1)} MiB, caught up ${x.catchUpMs} ms after fio` +
          `  CPU per write: agent ${r(x.agentUs)} µs, site ${r(x.siteUs)} µs`,
      );
    }
  } finally {
    for (const a of agents) await a.stop().catch(() => undefined);
    await stop(up);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
