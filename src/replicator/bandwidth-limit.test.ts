import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent } from "../agent/agent.js";
import { waitFor } from "../common/wait-for.js";
import { FaultProxy } from "../testing/fault-proxy.js";
import { makeImage, removeDir, startSite } from "../testing/site-fixture.js";

const MiB = 1024 * 1024;
const SLICE = 64 * 1024;

test("Agent holds the project's bandwidth limit within 5%, measured on the wire over 3 s", async (t) => {
  const fx = await startSite();
  const proxy = await FaultProxy.start({ target: fx.site.replicator.endpoint });
  let agent: Agent | null = null;
  try {
    await fx.api.post("/api/projects", { name: "slow", type: "dr", settings: { bandwidthLimitMbps: 32 } });
    const { token } = await fx.api.post<{ token: string }>("/api/projects/slow/tokens", { ttlSeconds: 3600 });
    const limit = 4_000_000; // 32 Mbit/s
    const disk = join(fx.dir, "a.img");
    await makeImage(disk, 24, 20);
    agent = await Agent.start({
      token,
      disks: [disk],
      name: "slow-1",
      stateDir: join(fx.dir, "agent"),
      scanIntervalMs: 200,
      statusIntervalMs: 500,
      replicatorAddress: proxy.address,
      log: () => undefined,
    });
    const a = agent;
    const started = Date.now();
    void a.run();
    // Past the handshake and the first slices, measure what crosses the wire for 3 s.
    await waitFor("the first data", () => Promise.resolve(proxy.bytesToTarget > 4 * SLICE), 20_000, 5);
    const t0 = performance.now();
    const b0 = proxy.bytesToTarget;
    await sleep(3000);
    const seconds = (performance.now() - t0) / 1000;
    const rate = (proxy.bytesToTarget - b0) / seconds;
    t.diagnostic(`${Math.round(rate)} bytes/s on the wire over ${seconds.toFixed(2)} s, limit ${limit}`);
    // 5%, plus one slice over the window (TLS framing adds about 0.2% on top of the frames).
    const slack = SLICE / seconds;
    assert.ok(rate <= limit * 1.05 + slack, `${Math.round(rate)} bytes/s is above the limit + 5%`);
    assert.ok(rate >= limit * 0.95 - slack, `${Math.round(rate)} bytes/s is below the limit - 5%`);

    // The whole initial sync: no faster than the limit either (one bucket of burst allowed).
    await waitFor("initial sync", () => Promise.resolve(a.status().state === "CONTINUOUS"), 30_000, 50);
    const total = (Date.now() - started) / 1000;
    const sent = a.status().bytesSent;
    assert.ok(sent > 20 * MiB, `sent ${sent}`);
    assert.ok(
      sent / total <= limit * 1.05 + (SLICE + limit * 0.1) / total,
      `${sent} bytes in ${total} s is above the limit`,
    );
  } finally {
    await agent?.stop();
    await proxy.close();
    await fx.close();
    await removeDir(fx.dir);
  }
});
