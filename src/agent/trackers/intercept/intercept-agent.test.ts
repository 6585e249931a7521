/**
 * The intercept tracker inside a real agent, against a real site (console, replicator,
 * store, mutual TLS): the machine's I/O goes through the agent's NBD export.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, mkdir, open, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Agent } from "../../agent.js";
import type { Machine } from "../../../common/model.js";
import { waitFor } from "../../../common/wait-for.js";
import { NbdClient } from "../../../nbd/nbd-client.js";
import { ext4OverNbdSkipReason, runTool } from "../../../nbd/testing/run-tool.js";
import {
  createProjectToken,
  machineNamed,
  removeDir,
  sha256File,
  sha256OfPit,
  startSite,
  type SiteFixture,
} from "../../../testing/site-fixture.js";

const MiB = 1024 * 1024;
const quiet = (): void => undefined;

interface Started {
  readonly agent: Agent;
  readonly uri: string;
  readonly socketPath: string;
}

async function startAgent(fx: SiteFixture, disk: string, name: string, sync: boolean): Promise<Started> {
  const token = await createProjectToken(fx.api, `p-${name}`);
  const socketPath = join(fx.dir, `${name}-nbd`, "nbd.sock");
  let uri = "";
  const agent = await Agent.start({
    token,
    disks: [disk],
    name,
    stateDir: join(fx.dir, `${name}-agent`),
    statusIntervalMs: 300,
    log: quiet,
    tracker: "intercept",
    trackerOptions: { nbdListen: { socketPath }, sync },
    onExports: (exports) => (uri = exports[0]?.uri ?? ""),
  });
  void agent.run();
  await waitFor("the agent to serve its disk", () => Promise.resolve(uri !== "" && uri), 10_000, 20);
  return { agent, uri, socketPath };
}

/** The machine, once it is CONTINUOUS with every write durable at the standby. */
async function caughtUp(fx: SiteFixture, agent: Agent, name: string): Promise<Machine> {
  await waitFor(
    "the agent to catch up",
    () => {
      const s = agent.status();
      return Promise.resolve(s.state === "CONTINUOUS" && s.lagSeconds !== null && s.lagSeconds < 0.05);
    },
    60_000,
    20,
  );
  return waitFor(
    `${name} to report CONTINUOUS`,
    async () => {
      const m = await machineNamed(fx.api, name);
      return m?.replication.state === "CONTINUOUS" ? m : undefined;
    },
    10_000,
    100,
  );
}

/** The newest PIT's seq once it holds `sha` (the disk as it is now). */
async function pitMatching(fx: SiteFixture, m: Machine, sha: string): Promise<number> {
  return waitFor(
    "a PIT equal to the disk",
    async () => {
      const last = (await fx.site.replicator.pits(m.timelineId)).at(-1);
      return last && (await sha256OfPit(fx.site, m.timelineId, 0, last.seq)) === sha ? last.seq : undefined;
    },
    20_000,
  );
}

test(
  "Agent --tracker intercept: ext4 made through nbdfuse on the agent's export reaches a PIT bit for bit, and e2fsck finds it clean",
  { skip: ext4OverNbdSkipReason() },
  async () => {
    const fx = await startSite();
    let started: Started | null = null;
    const fuseDir = join(fx.dir, "fuse");
    const mnt = join(fx.dir, "mnt");
    let fuse: ReturnType<typeof spawn> | null = null;
    let fuseExited: Promise<void> = Promise.resolve();
    let loop: string | null = null;
    let mounted = false;
    let fuseMounted = false;
    try {
      const disk = join(fx.dir, "vm.img");
      await writeFile(disk, "");
      await truncate(disk, 64 * MiB);
      started = await startAgent(fx, disk, "vm-1", false);
      assert.match(started.uri, /^nbd\+unix:\/\/\/disk0\?socket=\/.*nbd\.sock$/);
      await caughtUp(fx, started.agent, "vm-1");

      await mkdir(fuseDir);
      await mkdir(mnt);
      const child = spawn("nbdfuse", [fuseDir, started.uri], { stdio: ["ignore", "ignore", "pipe"] });
      fuse = child;
      let fuseErr = "";
      child.stderr.on("data", (d: Buffer) => (fuseErr += d.toString()));
      fuseExited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      await waitFor(
        "nbdfuse to expose the export",
        async () => {
          if (child.exitCode !== null) throw new Error(`nbdfuse exited: ${fuseErr}`);
          return access(join(fuseDir, "nbd")).then(() => true);
        },
        10_000,
        50,
      );
      fuseMounted = true;
      // 4 KiB sectors: the export takes 4 KiB-aligned requests only (the store's block size).
      loop = (
        await runTool("losetup", ["--find", "--show", "--sector-size", "4096", join(fuseDir, "nbd")])
      ).stdout.trim();
      await runTool("mkfs.ext4", ["-q", "-F", loop]);
      await runTool("mount", [loop, mnt]);
      mounted = true;
      await writeFile(join(mnt, "big.bin"), randomBytes(8 * MiB));
      await mkdir(join(mnt, "dir"));
      for (let i = 0; i < 100; i++)
        await writeFile(join(mnt, "dir", `f${i}.txt`), `file ${i}\n`.repeat(i + 1));
      await runTool("sync", []);
      await runTool("umount", [mnt]);
      mounted = false;
      await runTool("losetup", ["-d", loop]);
      loop = null;
      await runTool("umount", [fuseDir]);
      fuseMounted = false;
      await fuseExited;

      const m = await caughtUp(fx, started.agent, "vm-1");
      const seq = await pitMatching(fx, m, await sha256File(disk));
      // The PIT is a filesystem: export it and let e2fsck check it (it exits non-zero on any fault).
      const image = join(fx.dir, "pit.img");
      const t = fx.site.replicator.openTimeline(m.timelineId);
      const out = await open(image, "w");
      for (let at = 0; at < 64 * MiB; at += 4 * MiB)
        await out.write(await t.read(0, at, 4 * MiB, seq), 0, 4 * MiB, at);
      await out.close();
      const fsck = await runTool("e2fsck", ["-fn", image]);
      // 11 reserved inodes, lost+found, big.bin, dir and its 100 files.
      assert.match(fsck.stdout + fsck.stderr, / 113\/\d+ files/);

      // The console shows the tracker, the export's URI and the lag (`lifeboat machines --json`).
      assert.equal(m.replication.tracker, "intercept");
      assert.equal(m.replication.disks[0]?.nbdUri, started.uri);
      assert.ok(
        m.replication.lagSeconds !== null && m.replication.lagSeconds < 5,
        `lag ${m.replication.lagSeconds}`,
      );
      // Far less than a full copy per change: the empty disk, then what ext4 wrote.
      assert.ok(started.agent.status().bytesSent < 40 * MiB, `sent ${started.agent.status().bytesSent}`);
    } finally {
      if (mounted) await runTool("umount", [mnt]).catch(() => undefined);
      if (loop) await runTool("losetup", ["-d", loop]).catch(() => undefined);
      if (fuseMounted) await runTool("umount", [fuseDir]).catch(() => undefined);
      if (fuse && fuse.exitCode === null) fuse.kill("SIGTERM");
      await fuseExited;
      await started?.agent.stop();
      await fx.close();
      await removeDir(fx.dir);
    }
  },
);

test("Agent --tracker intercept --sync: a write acknowledged over NBD is already durable in the staging store", async () => {
  const fx = await startSite();
  let started: Started | null = null;
  let client: NbdClient | null = null;
  try {
    const disk = join(fx.dir, "db.img");
    await writeFile(disk, randomBytes(2 * MiB));
    await truncate(disk, 16 * MiB);
    started = await startAgent(fx, disk, "db-1", true);
    const m = await caughtUp(fx, started.agent, "db-1");
    const t = fx.site.replicator.openTimeline(m.timelineId);
    client = await NbdClient.connect({ socketPath: started.socketPath }, { exportName: "disk0" });
    for (let i = 0; i < 20; i++) {
      const block = randomBytes(4096 * (1 + (i % 3)));
      const offset = 4 * MiB + i * 256 * 1024;
      await client.write(offset, block);
      assert.ok((await t.read(0, offset, block.length)).equals(block), `write ${i} was not at the standby`);
    }
    await client.disconnect();
    client = null;
    await pitMatching(fx, m, await sha256File(disk));
  } finally {
    client?.destroy();
    await started?.agent.stop();
    await fx.close();
    await removeDir(fx.dir);
  }
});
