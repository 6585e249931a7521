import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent } from "../agent/agent.js";
import type { ReplicationState } from "../common/states.js";
import { waitFor } from "../common/wait-for.js";
import { FaultProxy } from "../testing/fault-proxy.js";
import {
  machineNamed,
  makeImage,
  removeDir,
  sha256File,
  newestPitEquals,
  startSite,
} from "../testing/site-fixture.js";

const MiB = 1024 * 1024;

test("Agent reports lag as the seconds since the newest source state durable at the standby, and an ETA while it catches up after an outage", async (t) => {
  const fx = await startSite();
  const proxy = await FaultProxy.start({ target: fx.site.replicator.endpoint });
  let agent: Agent | null = null;
  let sampler: NodeJS.Timeout | undefined;
  try {
    // 16 Mbit/s: catching up on 6 MiB takes about 3 s, long enough to watch.
    await fx.api.post("/api/projects", { name: "p1", type: "dr", settings: { bandwidthLimitMbps: 16 } });
    const { token } = await fx.api.post<{ token: string }>("/api/projects/p1/tokens", { ttlSeconds: 3600 });
    const disk = join(fx.dir, "disk.img");
    await makeImage(disk, 32, 1);
    agent = await Agent.start({
      token,
      disks: [disk],
      name: "lagging",
      stateDir: join(fx.dir, "agent"),
      scanIntervalMs: 200,
      statusIntervalMs: 200,
      replicatorAddress: proxy.address,
      retry: { minMs: 200, maxMs: 500 },
      log: () => undefined,
    });
    const a = agent;
    void a.run();
    await waitFor("initial sync", () => Promise.resolve(a.status().state === "CONTINUOUS"), 30_000, 50);
    // Idle and connected: the standby holds the disk as it was at most a pass or two ago.
    await waitFor("a small lag", () => Promise.resolve((a.status().lagSeconds ?? 99) < 1), 10_000, 50);

    // The replicator out of reach for 3 s, the source written at the start of it.
    const downAt = Date.now();
    proxy.drop(3000);
    const fh = await open(disk, "r+");
    await fh.write(randomBytes(6 * MiB), 0, 6 * MiB, 16 * MiB);
    await fh.close();
    const writtenAt = Date.now();
    await sleep(2500);
    const during = a.status();
    const outage = (Date.now() - downAt) / 1000;
    assert.equal(during.state, "DISCONNECTED");
    // Nothing written since the drop is durable: the lag counts from before it, by at most a pass or two.
    assert.ok(during.lagSeconds !== null, "no lag reported");
    assert.ok(
      during.lagSeconds >= outage - 0.1 && during.lagSeconds <= outage + 1.5,
      `lag ${during.lagSeconds} s after a ${outage} s outage`,
    );

    // Back: RESCAN finds the 6 MiB, BACKLOG sends them at the limit, each with an ETA.
    const samples: { at: number; state: ReplicationState; eta: number | null }[] = [];
    sampler = setInterval(() => {
      const s = a.status();
      samples.push({ at: Date.now(), state: s.state, eta: s.etaSeconds });
    }, 50);
    await waitFor(
      "the agent to catch up",
      () => {
        const s = a.status();
        return Promise.resolve(
          s.state === "CONTINUOUS" && s.lagSeconds !== null && s.lagSeconds < (Date.now() - writtenAt) / 1000,
        );
      },
      30_000,
      20,
    );
    const caughtUpAt = Date.now();
    clearInterval(sampler);
    const catchingUp = samples.filter((s) => s.state === "BACKLOG" || s.state === "RESCAN");
    assert.ok(
      catchingUp.some((s) => s.state === "BACKLOG"),
      `never BACKLOG: ${samples.map((s) => s.state).join(" ")}`,
    );
    const withEta = catchingUp.filter((s) => s.eta !== null);
    assert.ok(withEta.length >= catchingUp.length / 2, "most catch-up reports have no ETA");
    // The first ETA of the backlog against the time it really took.
    const first = withEta.find((s) => s.state === "BACKLOG")!;
    const took = (caughtUpAt - first.at) / 1000;
    t.diagnostic(`ETA ${first.eta} s; caught up ${took.toFixed(1)} s later`);
    assert.ok(
      Math.abs(first.eta! - took) <= Math.max(1.5, took / 2),
      `ETA ${first.eta} s, but it took ${took.toFixed(1)} s`,
    );

    // The lag said the write is durable: the newest PIT has it.
    const expected = await sha256File(disk);
    const m = await machineNamed(fx.api, "lagging");
    assert.ok(m);
    await newestPitEquals(fx.site, m.timelineId, expected, 10_000);
  } finally {
    if (sampler) clearInterval(sampler);
    await agent?.stop();
    await proxy.close();
    await fx.close();
    await removeDir(fx.dir);
  }
});
