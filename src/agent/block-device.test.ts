import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { waitFor } from "../common/wait-for.js";
import {
  createProjectToken,
  machineNamed,
  makeImage,
  removeDir,
  sha256File,
  sha256OfPit,
  startSite,
} from "../testing/site-fixture.js";
import { Agent } from "./agent.js";
import { diskSize } from "./disk-size.js";

const run = promisify(execFile);

/** Attaches an image as a loop device; null when this machine cannot (not root, no loop driver). */
async function attachLoop(image: string): Promise<string | null> {
  try {
    const { stdout } = await run("losetup", ["--find", "--show", image]);
    return stdout.trim();
  } catch {
    return null;
  }
}

test("Agent replicates a real block device (a loop device), sized from sysfs", async (t) => {
  const fx = await startSite();
  let device: string | null = null;
  let agent: Agent | null = null;
  try {
    const image = join(fx.dir, "backing.img");
    await makeImage(image, 24, 5);
    device = await attachLoop(image);
    if (device === null) {
      t.skip("losetup cannot attach a loop device here (needs root and the loop driver)");
      return;
    }
    assert.equal(await diskSize(device), 24 * 1024 * 1024);
    const token = await createProjectToken(fx.api);
    agent = await Agent.start({
      token,
      disks: [device],
      name: "blk",
      stateDir: join(fx.dir, "agent"),
      scanIntervalMs: 300,
      statusIntervalMs: 300,
      log: () => undefined,
    });
    void agent.run();
    const expected = await sha256File(device);
    await waitFor(
      "the loop device's data in a PIT",
      async () => {
        const m = await machineNamed(fx.api, "blk");
        const pit = m ? (await fx.site.replicator.pits(m.timelineId)).at(-1) : undefined;
        return m && pit ? (await sha256OfPit(fx.site, m.timelineId, 0, pit.seq)) === expected : false;
      },
      60_000,
    );
  } finally {
    await agent?.stop();
    if (device) await run("losetup", ["-d", device]).catch(() => undefined);
    await fx.close();
    await removeDir(fx.dir);
  }
});
