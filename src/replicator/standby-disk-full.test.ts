import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, readdir, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "../agent/agent.js";
import { waitFor } from "../common/wait-for.js";
import {
  createProjectToken,
  machineNamed,
  makeImage,
  removeDir,
  sha256File,
  sha256OfPit,
  startSite,
  type SiteFixture,
} from "../testing/site-fixture.js";

const MiB = 1024 * 1024;

/** Makes a 64 MiB ext4 file system in `image` and mounts it (loop device) on `at`; false if this host cannot. */
function mountSmallFs(image: string, at: string): string | null {
  try {
    execFileSync("truncate", ["-s", "64M", image], { stdio: "pipe" });
    execFileSync("mkfs.ext4", ["-q", "-F", image], { stdio: "pipe" });
    execFileSync("mount", ["-o", "loop", image, at], { stdio: "pipe" });
    return null;
  } catch (err) {
    return String(err).split("\n")[0] ?? "mount failed";
  }
}

function unmount(at: string): void {
  try {
    execFileSync("umount", [at], { stdio: "pipe" });
  } catch {
    execFileSync("umount", ["-l", at], { stdio: "pipe" }); // still busy: detach it anyway
  }
}

/** Takes all but `leave` bytes of the free space of the file system of `dir` with one file (fallocate: no data written). */
async function fillLeaving(dir: string, path: string, leave: number): Promise<void> {
  const fs = await statfs(dir);
  const take = fs.bavail * fs.bsize - leave;
  execFileSync("fallocate", ["-l", String(Math.max(4096, take)), path], { stdio: "pipe" });
}

test("Standby disk full: the replicator answers ERROR 'out of space', the agent reports STALLED with that reason, keeps its spool and backs off; once space is freed it resumes and the newest PIT equals the source", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-full-"));
  const storeDir = join(dir, "site", "store");
  await mkdir(storeDir, { recursive: true });
  const cannot = mountSmallFs(join(dir, "store.ext4"), storeDir);
  if (cannot !== null) {
    await rm(dir, { recursive: true, force: true });
    t.skip(`cannot mount a 64 MiB ext4 image here (needs root and loop devices): ${cannot}`);
    return;
  }
  const t0 = Date.now();
  const mark = (what: string): void => t.diagnostic(`${what} at ${Date.now() - t0} ms`);
  let fx: SiteFixture | undefined;
  let agent: Agent | undefined;
  const logs: string[] = [];
  try {
    fx = await startSite({ dir });
    const site = fx;
    const token = await createProjectToken(fx.api);
    const disk = join(dir, "disk.img");
    await makeImage(disk, 32, 4);
    agent = await Agent.start({
      token,
      disks: [disk],
      name: "full",
      stateDir: join(dir, "agent"),
      scanIntervalMs: 200,
      statusIntervalMs: 200,
      retry: { minMs: 250, maxMs: 2000 },
      log: (m) => logs.push(m),
    });
    const a = agent;
    void a.run();
    await waitFor("initial sync", () => Promise.resolve(a.status().state === "CONTINUOUS"), 30_000, 50);
    mark("initial sync");
    const m = await machineNamed(fx.api, "full");
    assert.ok(m);
    const timeline = fx.site.replicator.openTimeline(m.timelineId);

    // Leave 6 MiB on the store's file system, then write 16 MiB of new data on the source.
    const filler = join(storeDir, "filler");
    await fillLeaving(storeDir, filler, 6 * MiB);
    const free = await statfs(storeDir);
    t.diagnostic(
      `store file system: ${((free.bavail * free.bsize) / MiB).toFixed(1)} MiB free (${Date.now() - t0} ms)`,
    );
    const fh = await open(disk, "r+");
    await fh.write(randomBytes(16 * MiB), 0, 16 * MiB, 8 * MiB);
    await fh.close();

    const stalled = await waitFor(
      "the console to show STALLED",
      async () => {
        const v = await machineNamed(site.api, "full");
        return v?.replication.state === "STALLED" ? v : undefined;
      },
      30_000,
      100,
    );
    mark("STALLED");
    assert.match(stalled.replication.reason ?? "", /The standby is out of space/);
    assert.match(stalled.replication.reason ?? "", /free space on the replicator/);
    assert.equal(a.status().state, "STALLED");
    // Nothing acknowledged that the store does not hold, and what it does not hold is still spooled.
    assert.ok(a.ackedTag <= (timeline.lastTag() ?? 0), `acked ${a.ackedTag}, stored ${timeline.lastTag()}`);
    const spooled = (await readdir(join(dir, "agent", "spool", m.timelineId)))
      .map((n) => Number(n.replace(".batch", "")))
      .filter((tag) => tag > (timeline.lastTag() ?? 0));
    assert.ok(spooled.length > 0, "the batches the standby refused are kept in the spool");

    // It keeps retrying, each time waiting longer.
    const refusals = (): number[] =>
      logs
        .filter((l) => l.includes("out of space"))
        .map((l) => Number(/retrying in ([\d.]+) s/.exec(l)?.[1]));
    await waitFor("three refusals", () => Promise.resolve(refusals().length >= 3), 20_000, 100);
    const waits = refusals();
    assert.ok(
      waits.every((w, i) => i === 0 || w >= waits[i - 1]!),
      `backoff does not grow: ${waits.join(", ")}`,
    );
    assert.ok(waits.at(-1)! > waits[0]!, `backoff does not grow: ${waits.join(", ")}`);
    assert.equal(a.status().state, "STALLED");

    mark("three refusals");
    // Space comes back: the agent resumes by itself and catches up.
    await rm(filler);
    const freedAt = Date.now();
    const expected = await sha256File(disk);
    await waitFor(
      "the agent to catch up",
      () => {
        const s = a.status();
        return Promise.resolve(
          s.state === "CONTINUOUS" && s.lagSeconds !== null && s.lagSeconds < (Date.now() - freedAt) / 1000,
        );
      },
      30_000,
      100,
    );
    await waitFor(
      "the newest PIT to equal the source",
      async () => {
        const last = timeline.pits().at(-1);
        return last !== undefined && (await sha256OfPit(site.site, m.timelineId, 0, last.seq)) === expected;
      },
      15_000,
      250,
    );
    mark("caught up");
    const after = await waitFor(
      "the console to show CONTINUOUS",
      async () => {
        const v = await machineNamed(site.api, "full");
        return v?.replication.state === "CONTINUOUS" ? v : undefined;
      },
      10_000,
      100,
    );
    assert.equal(after.replication.reason, undefined);
  } finally {
    await agent?.stop();
    await fx?.close();
    unmount(storeDir);
    await removeDir(dir);
  }
});
