import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Machine } from "../common/model.js";
import { waitFor } from "../common/wait-for.js";
import { startLifeboat, stop, tail, type Proc } from "../demo/processes.js";
import {
  machineNamed,
  makeImage,
  removeDir,
  sha256File,
  newestPitEquals,
  startSite,
} from "../testing/site-fixture.js";

const MiB = 1024 * 1024;
const DATA = 40 * MiB;

test("kill -9 of the agent in the middle of its initial sync: the restart resumes after the last acknowledged batch (sends only the rest) and the newest PIT equals the source", async (t) => {
  const fx = await startSite();
  const procs: Proc[] = [];
  try {
    // 64 Mbit/s: the 40 MiB take about 5 s, long enough to kill the agent half-way.
    await fx.api.post("/api/projects", { name: "p1", type: "dr", settings: { bandwidthLimitMbps: 64 } });
    const { token } = await fx.api.post<{ token: string }>("/api/projects/p1/tokens", { ttlSeconds: 3600 });
    const disk = join(fx.dir, "disk.img");
    await makeImage(disk, 48, DATA / MiB);
    const args = [
      "agent",
      "--token",
      token,
      "--disk",
      disk,
      "--name",
      "killed",
      "--state-dir",
      join(fx.dir, "agent"),
      "--scan-interval",
      "300ms",
      "--status-interval",
      "100ms",
    ];
    const first = startLifeboat("agent", args, join(fx.dir, "agent1.log"));
    procs.push(first);
    const atKill = await waitFor(
      "the initial sync half-way",
      async () => {
        const m = await machineNamed(fx.api, "killed");
        const p = m?.replication.progressPercent ?? 0;
        return m?.replication.state === "INITIAL_SYNC" && p >= 50 && p < 80 ? m : undefined;
      },
      60_000,
      20,
    );
    first.child.kill("SIGKILL");
    await first.exited;
    const sentBefore = atKill.replication.bytesSent;
    // What the standby held at the kill: the progress counts the 8 MiB of zeros at the end of
    // the 48 MiB disk too (a fresh timeline holds them already).
    const heldAtKill = Math.max(0, (atKill.replication.progressPercent / 100) * 48 * MiB - 8 * MiB);
    t.diagnostic(
      `killed at ${atKill.replication.progressPercent}% with ${(sentBefore / MiB).toFixed(1)} MiB sent`,
    );

    const restartedAt = Date.now();
    const second = startLifeboat("agent", args, join(fx.dir, "agent2.log"));
    procs.push(second);
    const done = await waitFor(
      "the restarted agent to finish",
      async () => {
        const m = await machineNamed(fx.api, "killed");
        const fresh = m !== undefined && Date.parse(m.replication.updatedAt) > restartedAt + 300;
        return fresh && m.replication.state === "CONTINUOUS" ? m : undefined;
      },
      60_000,
      50,
    );
    const sentAfter = done.replication.bytesSent;
    t.diagnostic(`the restarted agent sent ${(sentAfter / MiB).toFixed(1)} MiB`);
    // Only what was not acknowledged before the kill goes again: the rest, plus at most one
    // batch (4 MiB) acknowledged after the last report before the kill.
    assert.ok(
      sentAfter <= DATA - heldAtKill + 4 * MiB,
      `restart sent ${sentAfter} bytes; ${DATA - heldAtKill} were left`,
    );
    assert.ok(sentAfter < DATA * 0.75, `restart sent ${sentAfter} of ${DATA} bytes: a full resync`);
    // It picked up after the last acknowledged tag; what the killed agent had spooled beyond
    // it (it reads ahead of the bandwidth limit) is dropped, and found again by the scan.
    const resumed = /Dropped \d+ spooled batches after tag \d+/.exec(await readFile(second.logFile, "utf8"));
    assert.ok(resumed, "the restarted agent did not resume from its spool");
    t.diagnostic(resumed[0]);

    const expected = await sha256File(disk);
    const m: Machine = done;
    await newestPitEquals(fx.site, m.timelineId, expected, 15_000);
    for (const p of procs) await stop(p);
  } catch (err) {
    for (const p of procs) await stop(p, "SIGKILL");
    for (const p of procs) console.error(`--- ${p.name} ---\n${await tail(p, 30)}`);
    throw err;
  } finally {
    await fx.close();
    await removeDir(fx.dir);
  }
});
