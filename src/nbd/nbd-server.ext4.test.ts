/**
 * A real filesystem on our export: nbdfuse exposes it as a file, a loop device makes that a
 * block device, and ext4 is made, mounted, written, unmounted and checked with e2fsck.
 * Needs root (loop devices, mount) and /dev/fuse; skipped otherwise.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "../common/wait-for.js";
import { serveTestFile } from "./testing/serve-test-file.js";
import { ext4OverNbdSkipReason, runTool } from "./testing/run-tool.js";

test(
  "ext4 made on our export through nbdfuse and a loop device mounts, keeps files and passes e2fsck",
  { skip: ext4OverNbdSkipReason() },
  async () => {
    const fx = await serveTestFile({ sizeBytes: 64 * 1024 * 1024 });
    const fuseDir = join(fx.dir, "fuse");
    const mnt = join(fx.dir, "mnt");
    await mkdir(fuseDir);
    await mkdir(mnt);
    const fuse = spawn("nbdfuse", [fuseDir, fx.uri], { stdio: ["ignore", "ignore", "pipe"] });
    let fuseErr = "";
    fuse.stderr.on("data", (d: Buffer) => (fuseErr += d.toString()));
    const fuseExited = new Promise<void>((resolve) => fuse.once("exit", () => resolve()));
    let loop: string | null = null;
    let mounted = false;
    let fuseMounted = false;
    try {
      await waitFor(
        "nbdfuse to expose the export",
        async () => {
          if (fuse.exitCode !== null) throw new Error(`nbdfuse exited: ${fuseErr}`);
          return access(join(fuseDir, "nbd")).then(() => true);
        },
        10_000,
        50,
      );
      fuseMounted = true;
      loop = (await runTool("losetup", ["--find", "--show", join(fuseDir, "nbd")])).stdout.trim();
      await runTool("mkfs.ext4", ["-q", "-F", loop]);
      await runTool("mount", [loop, mnt]);
      mounted = true;
      const big = randomBytes(6 * 1024 * 1024);
      await writeFile(join(mnt, "big.bin"), big);
      await mkdir(join(mnt, "dir"));
      for (let i = 0; i < 50; i++)
        await writeFile(join(mnt, "dir", `f${i}.txt`), `file ${i}\n`.repeat(i + 1));
      await runTool("sync", []);
      await runTool("umount", [mnt]);
      mounted = false;

      const fsck = await runTool("e2fsck", ["-fn", loop]);
      assert.match(fsck.stdout + fsck.stderr, /\d+\/\d+ files/);

      await runTool("mount", ["-o", "ro", loop, mnt]);
      mounted = true;
      assert.ok((await readFile(join(mnt, "big.bin"))).equals(big));
      assert.equal(await readFile(join(mnt, "dir", "f9.txt"), "utf8"), "file 9\n".repeat(10));
      await runTool("umount", [mnt]);
      mounted = false;
      assert.ok(fx.dirty.dirtyBlocks > 0);
    } finally {
      if (mounted) await runTool("umount", [mnt]).catch(() => undefined);
      if (loop) await runTool("losetup", ["-d", loop]).catch(() => undefined);
      if (fuseMounted) await runTool("umount", [fuseDir]).catch(() => undefined);
      if (fuse.exitCode === null) fuse.kill("SIGTERM");
      await fuseExited;
      await fx.close();
    }
    // e2fsck on the backing file too, now that nothing holds it.
  },
);
