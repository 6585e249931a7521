import { test } from "node:test";
import assert from "node:assert/strict";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent } from "../agent/agent.js";
import type { ReplicationState } from "../common/states.js";
import { waitFor } from "../common/wait-for.js";
import { FaultProxy } from "../testing/fault-proxy.js";
import { seededRandom } from "../testing/seeded-random.js";
import {
  createProjectToken,
  machineNamed,
  makeImage,
  removeDir,
  sha256File,
  newestPitEquals,
  startSite,
} from "../testing/site-fixture.js";

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;

/** Writes random runs of 4 KiB blocks at random places until the signal aborts. */
async function keepWriting(path: string, seed: number, signal: AbortSignal): Promise<number> {
  const r = seededRandom(seed);
  const fh = await open(path, "r+");
  let writes = 0;
  try {
    while (!signal.aborted) {
      const blocks = r.int(1, 16);
      const at = r.int(0, SIZE / 4096 - blocks) * 4096;
      await fh.write(randomBytes(blocks * 4096), 0, blocks * 4096, at);
      writes++;
      await sleep(r.int(10, 40));
    }
  } finally {
    await fh.close();
  }
  return writes;
}

test("Replication link through 50 random drops, stalls and slow-downs: states DISCONNECTED, RESCAN, BACKLOG, back to CONTINUOUS, and the newest PIT equals the source", async (t) => {
  const seed = Number(process.env["LIFEBOAT_FAULT_SEED"] ?? Math.floor(Math.random() * 2 ** 31));
  t.diagnostic(`fault seed ${seed} (set LIFEBOAT_FAULT_SEED to replay the schedule)`);
  const fx = await startSite();
  const proxy = await FaultProxy.start({ target: fx.site.replicator.endpoint });
  const logs: string[] = [];
  let agent: Agent | null = null;
  const sampler: { timer: NodeJS.Timeout | null } = { timer: null };
  try {
    const token = await createProjectToken(fx.api);
    const disk = join(fx.dir, "disk.img");
    await makeImage(disk, SIZE / MiB, 8);
    agent = await Agent.start({
      token,
      disks: [disk],
      name: "faulty",
      stateDir: join(fx.dir, "agent"),
      scanIntervalMs: 200,
      statusIntervalMs: 250,
      replicatorAddress: proxy.address,
      retry: { minMs: 200, maxMs: 1000 },
      log: (m) => logs.push(`${new Date().toISOString()} ${m}`),
    });
    const a = agent;
    // Every state the agent reports, in order (sampled far more often than it reports).
    const seen: ReplicationState[] = [];
    sampler.timer = setInterval(() => {
      const s = a.status().state;
      if (seen.at(-1) !== s) seen.push(s);
    }, 10);
    void a.run();
    await waitFor("initial sync", () => Promise.resolve(a.status().state === "CONTINUOUS"), 30_000, 50);

    const writing = new AbortController();
    const writer = keepWriting(disk, seed, writing.signal);
    const faults = await proxy.run({
      seed,
      count: 50,
      spanMs: 18_000,
      weights: { drop: 2, stall: 1, slow: 1 },
      downMs: [0, 400],
      stallMs: [100, 1200],
      slowMs: [200, 1500],
      slowBytesPerSecond: [64 * 1024, 1024 * 1024],
    });
    writing.abort();
    const writes = await writer;
    proxy.heal();
    const stoppedAt = Date.now();
    const kinds = (k: string): number => faults.filter((f) => f.fault.kind === k).length;
    t.diagnostic(
      `${faults.length} faults (${kinds("drop")} drops, ${kinds("stall")} stalls, ${kinds("slow")} slow-downs), ${writes} writes, ${proxy.accepted} connections`,
    );

    // Caught up: the standby holds every write made before the writer stopped.
    await waitFor(
      "the agent to report caught up",
      () => {
        const s = a.status();
        return Promise.resolve(
          s.state === "CONTINUOUS" && s.lagSeconds !== null && s.lagSeconds < (Date.now() - stoppedAt) / 1000,
        );
      },
      20_000,
      50,
    );
    const expected = await sha256File(disk);
    const m = await machineNamed(fx.api, "faulty");
    assert.ok(m);
    await newestPitEquals(fx.site, m.timelineId, expected, 15_000);

    assert.equal(kinds("drop") + kinds("stall") + kinds("slow"), 50);
    // Drops that hit an agent already disconnected, or refused its reconnects, make no new connection.
    assert.ok(proxy.accepted >= 6, `the link was made only ${proxy.accepted} times`);
    const path = seen.join(" > ");
    for (const s of ["DISCONNECTED", "RESCAN", "BACKLOG", "CONTINUOUS"] as const)
      assert.ok(seen.includes(s), `never ${s}: ${path}`);
    assert.equal(seen.at(-1), "CONTINUOUS", path);
    assert.ok(!seen.includes("STALLED") && !seen.includes("PAUSED"), path);
    // Once synced, a reconnect never starts over: no INITIATING or INITIAL_SYNC after CONTINUOUS.
    const after = seen.slice(seen.indexOf("CONTINUOUS"));
    assert.ok(!after.includes("INITIAL_SYNC") && !after.includes("INITIATING"), path);
    // Every outage is followed by a catch-up (or nothing to catch up), never by a jump into STALLED.
    seen.forEach((s, i) => {
      const next = seen[i + 1];
      if (s === "DISCONNECTED" && next !== undefined)
        assert.ok(["RESCAN", "BACKLOG", "CONTINUOUS"].includes(next), `${s} > ${next}: ${path}`);
    });
    const reported = await waitFor(
      "the console to show CONTINUOUS",
      async () => {
        const v = await machineNamed(fx.api, "faulty");
        return v?.replication.state === "CONTINUOUS" ? v : undefined;
      },
      10_000,
      100,
    );
    assert.equal(reported.replication.progressPercent, 100);
  } catch (err) {
    console.error(`Fault seed ${seed}; agent log:\n${logs.slice(-40).join("\n")}`);
    throw err;
  } finally {
    if (sampler.timer) clearInterval(sampler.timer);
    await agent?.stop();
    await proxy.close();
    await fx.close();
    await removeDir(fx.dir);
  }
});

test("A path that stalls without closing: the agent reports STALLED, drops the connection after its ACK timeout, and catches up once the path moves", async (t) => {
  const fx = await startSite();
  const proxy = await FaultProxy.start({ target: fx.site.replicator.endpoint });
  let agent: Agent | null = null;
  const logs: string[] = [];
  try {
    const token = await createProjectToken(fx.api);
    const disk = join(fx.dir, "disk.img");
    await makeImage(disk, 32, 1);
    agent = await Agent.start({
      token,
      disks: [disk],
      name: "stuck",
      stateDir: join(fx.dir, "agent"),
      scanIntervalMs: 200,
      statusIntervalMs: 200,
      replicatorAddress: proxy.address,
      retry: { minMs: 200, maxMs: 500 },
      stallReportMs: 1000,
      ackTimeoutMs: 2500,
      log: (m) => logs.push(m),
    });
    const a = agent;
    void a.run();
    await waitFor("initial sync", () => Promise.resolve(a.status().state === "CONTINUOUS"), 30_000, 50);

    // Nothing moves for 5 s, in either direction, on any connection; nothing is closed either.
    proxy.stall(5000);
    const fh = await open(disk, "r+");
    await fh.write(randomBytes(16 * MiB), 0, 16 * MiB, 8 * MiB);
    await fh.close();
    const stalled = await waitFor(
      "STALLED",
      () => {
        const s = a.status();
        return Promise.resolve(s.state === "STALLED" ? s : undefined);
      },
      4000,
      20,
    );
    assert.match(stalled.reason ?? "", /No acknowledgement from the replicator for \d+ s/);
    await waitFor(
      "the agent to drop the stalled connection",
      () => Promise.resolve(logs.some((l) => /Replication interrupted: No acknowledgement/.test(l))),
      5000,
      20,
    );
    assert.ok(proxy.stallLeft() > 0, "the connection was dropped only after the stall ended");

    const expected = await sha256File(disk);
    await waitFor("CONTINUOUS again", () => Promise.resolve(a.status().state === "CONTINUOUS"), 30_000, 50);
    const m = await machineNamed(fx.api, "stuck");
    assert.ok(m);
    await newestPitEquals(fx.site, m.timelineId, expected, 15_000);
    t.diagnostic(logs.filter((l) => l.includes("interrupted")).join("; "));
  } finally {
    await agent?.stop();
    await proxy.close();
    await fx.close();
    await removeDir(fx.dir);
  }
});
