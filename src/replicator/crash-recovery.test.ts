import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { ApiClient } from "../cli/client/api-client.js";
import type { ClientConfig } from "../cli/client/client-config.js";
import type { Machine } from "../common/model.js";
import { waitFor } from "../common/wait-for.js";
import { startLifeboat, stop, tail, type Proc } from "../demo/processes.js";
import { openSiteStore } from "../embedded/embedded-site.js";
import { open } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { createProjectToken, makeImage, removeDir, sha256File } from "../testing/site-fixture.js";

const MiB = 1024 * 1024;
const CHUNK = 65536;
const SIZE = 384 * MiB;

/** Writes one random 4 KiB block into each of `count` distinct 64 KiB chunks, so every chunk is either before or after. */
async function scribbleChunks(path: string, count: number): Promise<void> {
  const chunks = new Set<number>();
  while (chunks.size < count) chunks.add(Math.floor(Math.random() * (SIZE / CHUNK)));
  const fh = await open(path, "r+");
  try {
    for (const c of chunks)
      await fh.write(randomBytes(4096), 0, 4096, c * CHUNK + Math.floor(Math.random() * 16) * 4096);
  } finally {
    await fh.close();
  }
}

function chunkDigests(buf: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < buf.length; at += CHUNK)
    out.push(
      createHash("sha1")
        .update(buf.subarray(at, at + CHUNK))
        .digest("hex"),
    );
  return out;
}

/** Adds the disk's current content of every chunk to `history` (chunk index -> contents it has had). */
async function record(path: string, history: Set<string>[]): Promise<void> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (let at = 0; at < SIZE; at += 4 * MiB) {
      await fh.read(buf, 0, 4 * MiB, at);
      chunkDigests(buf).forEach((d, i) => (history[at / CHUNK + i] ??= new Set()).add(d));
    }
  } finally {
    await fh.close();
  }
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  return typeof addr === "object" && addr ? addr.port : 0;
}

test("kill -9 of the replicator during initial sync and during CDP, and of the agent: nothing acknowledged is lost, every PIT is a real source state", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-crash-"));
  const data = join(dir, "site");
  const apiPort = await freePort();
  const replPort = await freePort();
  const procs: Proc[] = [];
  const up = (): Proc => {
    const p = startLifeboat(
      "up",
      ["up", "--data", data, "--api-port", String(apiPort), "--replication-port", String(replPort)],
      join(dir, "up.log"),
    );
    procs.push(p);
    return p;
  };
  const disk = join(dir, "disk.img");
  const agentArgs = (token: string): string[] => [
    "agent",
    "--token",
    token,
    "--disk",
    disk,
    "--name",
    "crashy",
    "--state-dir",
    join(dir, "agent"),
    "--scan-interval",
    "300ms",
    "--status-interval",
    "100ms",
  ];
  // Every content each chunk of the source has had: a PIT may only hold those. (A scan pass
  // reads the disk over time, so a PIT may mix chunks from before and after a write burst;
  // it must never hold bytes the source never had.)
  const history: Set<string>[] = [];
  try {
    await makeImage(disk, 384, 320);
    await record(disk, history);
    let site = up();
    const config = await waitFor(
      "client.json",
      async () => JSON.parse(await readFile(join(data, "client.json"), "utf8")) as ClientConfig,
      90_000,
    );
    const api = new ApiClient(config);
    await waitFor("console", () => api.get("/api/health").then(() => true), 90_000);
    const token = await createProjectToken(api);
    let agent = startLifeboat("agent", agentArgs(token), join(dir, "agent.log"));
    procs.push(agent);
    const machine = (): Promise<Machine | undefined> =>
      api.get<Machine[]>("/api/machines").then((ms) => ms[0]);

    // 1. kill -9 the replicator in the middle of the initial sync.
    const during = await waitFor(
      "initial sync under way",
      async () => {
        const m = await machine();
        const p = m?.replication.progressPercent ?? 0;
        return m?.replication.state === "INITIAL_SYNC" && p > 3 && p < 80 ? m : undefined;
      },
      60_000,
      50,
    );
    site.child.kill("SIGKILL");
    await site.exited;
    assert.ok(during.replication.progressPercent < 80);
    site = up();
    const synced = await waitFor(
      "initial sync to finish after the crash",
      async () => {
        const m = await machine();
        return m?.replication.state === "CONTINUOUS" ? m : undefined;
      },
      120_000,
      200,
    );
    assert.equal(synced.replication.state, "CONTINUOUS");

    // 2. Changes during CDP; kill -9 the replicator while a large change is on the wire.
    for (let round = 0; round < 3; round++) {
      await scribbleChunks(disk, 200);
      await record(disk, history);
      await new Promise((r) => setTimeout(r, 700));
    }
    await scribbleChunks(disk, 5000);
    await record(disk, history);
    await new Promise((r) => setTimeout(r, 400));
    site.child.kill("SIGKILL");
    await site.exited;
    site = up();
    const replicatorBackAt = Date.now();
    await waitFor(
      "CDP to catch up after the crash",
      async () => {
        const m = await machine();
        // Only a report made after the restart counts: the console keeps the last one from before.
        const fresh = m !== undefined && Date.parse(m.replication.updatedAt) > replicatorBackAt;
        return (
          fresh &&
          m.replication.state === "CONTINUOUS" &&
          m.replication.lagSeconds !== null &&
          m.replication.lagSeconds < 2
        );
      },
      120_000,
      200,
    );

    // 3. kill -9 the agent; the restart resumes without re-sending the disk.
    agent.child.kill("SIGKILL");
    await agent.exited;
    await scribbleChunks(disk, 20);
    await record(disk, history);
    const restartedAt = Date.now();
    agent = startLifeboat("agent", agentArgs(token), join(dir, "agent2.log"));
    procs.push(agent);
    const resumed = await waitFor(
      "the restarted agent to catch up",
      async () => {
        const m = await machine();
        // A report from the restarted agent, not the last one of the killed agent.
        const fresh = m !== undefined && Date.parse(m.replication.updatedAt) > restartedAt + 500;
        return fresh &&
          m.replication.state === "CONTINUOUS" &&
          m.replication.lagSeconds !== null &&
          m.replication.lagSeconds < 1.5
          ? m
          : undefined;
      },
      120_000,
      200,
    );
    assert.ok(
      resumed.replication.bytesSent < 32 * MiB,
      `agent restart sent ${resumed.replication.bytesSent} bytes`,
    );
    await new Promise((r) => setTimeout(r, 1500)); // let the last PIT be cut
    await stop(agent);
    await stop(site);

    // Every PIT holds only contents the source had, chunk by chunk; the newest is the source as it is now.
    const m = resumed;
    const store = await openSiteStore(data);
    try {
      const t = store.timeline(m.timelineId);
      const pits = t.pits();
      assert.ok(pits.length >= 3, `only ${pits.length} PITs`);
      for (const pit of pits) {
        for (let at = 0; at < SIZE; at += 4 * MiB) {
          chunkDigests(await t.read(0, at, 4 * MiB, pit.seq)).forEach((d, i) => {
            const chunk = at / CHUNK + i;
            assert.ok(history[chunk]?.has(d), `PIT ${pit.seq}, chunk ${chunk}: bytes the source never had`);
          });
        }
      }
      const h = createHash("sha256");
      for (let at = 0; at < SIZE; at += 4 * MiB) h.update(await t.read(0, at, 4 * MiB, pits.at(-1)!.seq));
      assert.equal(h.digest("hex"), await sha256File(disk), "the newest PIT is not the source as it is");
    } finally {
      await store.close();
    }
    for (const p of procs) await stop(p, "SIGKILL");
    await removeDir(dir);
  } catch (err) {
    for (const p of procs) await stop(p, "SIGKILL");
    for (const p of procs) console.error(`--- ${p.name} ---\n${await tail(p, 30)}`);
    console.error(`Test directory kept for inspection: ${dir}`);
    throw err;
  }
});
