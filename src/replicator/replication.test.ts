import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Agent } from "../agent/agent.js";
import { formatInstallToken, parseInstallToken } from "../common/install-token.js";
import type { Machine } from "../common/model.js";
import { waitFor } from "../common/wait-for.js";
import {
  createProjectToken,
  machineNamed,
  makeImage,
  removeDir,
  scribble,
  sha256File,
  sha256OfPit,
  startSite,
} from "../testing/site-fixture.js";

const MiB = 1024 * 1024;
const quiet = (): void => undefined;

async function continuous(api: Parameters<typeof machineNamed>[0], name: string): Promise<Machine> {
  return waitFor(
    `${name} to reach CONTINUOUS`,
    async () => {
      const m = await machineNamed(api, name);
      return m?.replication.state === "CONTINUOUS" ? m : undefined;
    },
    60_000,
  );
}

/** Waits until the newest PIT of the machine holds the disks as they are now (hashes given). */
async function pitMatching(
  fx: Awaited<ReturnType<typeof startSite>>,
  machine: Machine,
  expected: string[],
): Promise<number> {
  return waitFor(
    "a PIT equal to the source",
    async () => {
      const m = await machineNamed(fx.api, machine.name);
      const pits = await fx.site.replicator.pits(m!.timelineId);
      const last = pits.at(-1);
      if (!last) return undefined;
      for (const [i, h] of expected.entries())
        if ((await sha256OfPit(fx.site, m!.timelineId, i, last.seq)) !== h) return undefined;
      return last.seq;
    },
    60_000,
  );
}

/** No file of the site's store holds a sample of the source's bytes, and the timeline names its key. */
async function assertEncryptedAtRest(siteDir: string, disk: string, timelineId: string): Promise<void> {
  const image = await readFile(disk);
  let sample: Buffer | undefined;
  for (let at = 0; at + 4096 <= image.length && sample === undefined; at += 4096) {
    const block = image.subarray(at, at + 4096);
    if (block.some((b) => b !== 0)) sample = block.subarray(0, 64);
  }
  assert.ok(sample !== undefined, "the source image has no data");
  const files = (await readdir(join(siteDir, "store"), { recursive: true, withFileTypes: true })).filter(
    (e) => e.isFile(),
  );
  assert.ok(files.length > 0);
  for (const f of files) {
    const bytes = await readFile(join(f.parentPath, f.name));
    assert.equal(bytes.indexOf(sample), -1, `${f.name} holds the source's bytes in plain text`);
  }
  const manifest = await readFile(join(siteDir, "store", "timelines", timelineId, "manifest.json"), "utf8");
  assert.match(manifest, /"keyId":"[0-9a-f]{16}"/);
  const master = await stat(join(siteDir, "keys", "master.key"));
  assert.equal(master.mode & 0o077, 0, "the master key is readable by others");
}

test("Agent replicates two disks over mutual TLS: initial sync, PITs bit-exact, changes, restart without a full resync", async () => {
  const fx = await startSite();
  const agents: Agent[] = [];
  try {
    const token = await createProjectToken(fx.api);
    const disks = [join(fx.dir, "a.img"), join(fx.dir, "b.img")];
    await makeImage(disks[0]!, 64, 8);
    await makeImage(disks[1]!, 32, 2);
    const stateDir = join(fx.dir, "agent");
    const startAgent = async (): Promise<Agent> => {
      const a = await Agent.start({
        token,
        disks,
        name: "src-1",
        stateDir,
        scanIntervalMs: 300,
        statusIntervalMs: 300,
        log: quiet,
      });
      agents.push(a);
      void a.run();
      return a;
    };
    const agent = await startAgent();
    let m = await continuous(fx.api, "src-1");
    assert.equal(m.lifecycle, "NOT_TESTED");
    const initialBytes = m.replication.bytesSent;
    // Sparse: only the data (8 + 2 MiB and a few blocks) crosses the wire, not the 96 MiB.
    assert.ok(initialBytes < 14 * MiB, `initial sync sent ${initialBytes} bytes`);
    const seq1 = await pitMatching(fx, m, [await sha256File(disks[0]!), await sha256File(disks[1]!)]);
    await assertEncryptedAtRest(join(fx.dir, "site"), disks[0]!, m.timelineId);

    // Changes while replicating reach a newer PIT; the old PIT still reads the old data.
    const before = await sha256OfPit(fx.site, m.timelineId, 0, seq1);
    await scribble(disks[0]!, 64 * MiB, 50);
    const seq2 = await pitMatching(fx, m, [await sha256File(disks[0]!), await sha256File(disks[1]!)]);
    assert.ok(seq2 > seq1);
    assert.equal(await sha256OfPit(fx.site, m.timelineId, 0, seq1), before);

    // Stop the agent, change the disk, start it again: only the changes are sent.
    await agent.stop();
    await scribble(disks[1]!, 32 * MiB, 10);
    const again = await startAgent();
    await pitMatching(fx, m, [await sha256File(disks[0]!), await sha256File(disks[1]!)]);
    m = await continuous(fx.api, "src-1");
    const resentBytes = again.status().bytesSent;
    assert.ok(resentBytes < 2 * MiB, `restart re-sent ${resentBytes} bytes`);
    assert.ok(
      m.replication.lagSeconds !== null && m.replication.lagSeconds < 10,
      `lag ${m.replication.lagSeconds}`,
    );
  } finally {
    for (const a of agents) await a.stop();
    await fx.close();
    await removeDir(fx.dir);
  }
});

// Expired tokens are refused by the same route (api/agent-routes.test.ts drives the clock).
test("Agent.start() refuses a forged or revoked token with a clear message and registers nothing", async () => {
  const fx = await startSite();
  try {
    const token = await createProjectToken(fx.api);
    const disk = join(fx.dir, "a.img");
    await makeImage(disk, 4, 1);
    const parsed = parseInstallToken(token);
    const forged = formatInstallToken({ ...parsed, secret: "not-the-secret" });
    await assert.rejects(
      Agent.start({ token: forged, disks: [disk], stateDir: join(fx.dir, "s1"), log: quiet }),
      /Install token refused: this console does not know it/,
    );
    const { id, token: revoked } = await fx.api.post<{ id: string; token: string }>(
      "/api/projects/p1/tokens",
      {},
    );
    await fx.api.request("DELETE", `/api/tokens/${id}`);
    await assert.rejects(
      Agent.start({ token: revoked, disks: [disk], stateDir: join(fx.dir, "s2"), log: quiet }),
      /revoked/,
    );
    assert.deepEqual(await fx.api.get<Machine[]>("/api/machines"), []);
  } finally {
    await fx.close();
    await removeDir(fx.dir);
  }
});
