/**
 * Test fixture: a real embedded site (console + replicator + layered store) in a temp dir
 * on ephemeral ports, an API client for it, and helpers to make source disk images and to
 * read a PIT back from the store. Tests use real TLS, files and fsync through it.
 */
import { mkdtemp, open, rm } from "node:fs/promises";
import { createHash, randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Machine } from "../common/model.js";
import { waitFor } from "../common/wait-for.js";
import { ApiClient } from "../cli/client/api-client.js";
import { startEmbedded, type EmbeddedSite } from "../embedded/embedded-site.js";

export interface SiteFixture {
  readonly dir: string;
  readonly site: EmbeddedSite;
  readonly api: ApiClient;
  close(): Promise<void>;
}

export async function startSite(
  opts: { apiPort?: number; replicationPort?: number; dir?: string } = {},
): Promise<SiteFixture> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "lifeboat-test-")));
  const site = await startEmbedded({
    dataDir: join(dir, "site"),
    apiPort: opts.apiPort ?? 0,
    replicationPort: opts.replicationPort ?? 0,
    log: () => undefined,
  });
  return {
    dir,
    site,
    api: new ApiClient(site.config),
    async close() {
      await site.close();
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A sparse image of `sizeMiB` with `dataMiB` of random data at the front and a few scattered blocks. */
export async function makeImage(path: string, sizeMiB: number, dataMiB: number): Promise<void> {
  const fh = await open(path, "w");
  try {
    await fh.truncate(sizeMiB * 1024 * 1024);
    for (let i = 0; i < dataMiB; i++)
      await fh.write(randomBytes(1024 * 1024), 0, 1024 * 1024, i * 1024 * 1024);
    for (let i = 1; i <= 4; i++)
      await fh.write(randomBytes(4096), 0, 4096, Math.floor((sizeMiB * i) / 5) * 1024 * 1024);
  } finally {
    await fh.close();
  }
}

/** Overwrites `blocks` random 4 KiB blocks of the image; returns nothing (hash the file to know its state). */
export async function scribble(path: string, sizeBytes: number, blocks: number): Promise<void> {
  const fh = await open(path, "r+");
  try {
    for (let i = 0; i < blocks; i++) {
      const block = Math.floor(Math.random() * (sizeBytes / 4096));
      await fh.write(randomBytes(4096), 0, 4096, block * 4096);
    }
  } finally {
    await fh.close();
  }
}

export { sha256File } from "../demo/source-disks.js";

/** sha256 of disk `disk` of a timeline at `seq`, read through the store. */
export async function sha256OfPit(
  site: EmbeddedSite,
  timelineId: string,
  disk: number,
  seq: number,
): Promise<string> {
  const t = site.replicator.openTimeline(timelineId);
  const size = t.info.disks[disk]!.sizeBytes;
  const h = createHash("sha256");
  for (let at = 0; at < size; at += 4 * 1024 * 1024)
    h.update(await t.read(disk, at, Math.min(4 * 1024 * 1024, size - at), seq));
  return h.digest("hex");
}

/** Waits until the newest PIT of the timeline holds disk 0 with this sha256; resolves with its seq. */
export async function newestPitEquals(
  site: EmbeddedSite,
  timelineId: string,
  expected: string,
  timeoutMs: number,
): Promise<number> {
  return await waitFor(
    "the newest PIT to equal the source",
    async () => {
      const last = (await site.replicator.pits(timelineId)).at(-1);
      return last !== undefined && (await sha256OfPit(site, timelineId, 0, last.seq)) === expected
        ? last.seq
        : undefined;
    },
    timeoutMs,
    250,
  );
}

export async function createProjectToken(api: ApiClient, name = "p1"): Promise<string> {
  await api.post("/api/projects", { name, type: "dr" });
  const { token } = await api.post<{ token: string }>(`/api/projects/${name}/tokens`, { ttlSeconds: 3600 });
  return token;
}

export async function machineNamed(api: ApiClient, name: string): Promise<Machine | undefined> {
  return (await api.get<Machine[]>("/api/machines")).find((m) => m.name === name);
}
