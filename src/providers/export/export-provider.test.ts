import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_BLUEPRINT } from "../../common/model.js";
import { LayeredStore } from "../../store/layered/layered-store.js";
import type { Timeline } from "../../store/staging-store.js";
import type { ImageFormat } from "../image-format.js";
import { ExportProvider } from "./export-provider.js";
import { randomData, textLike } from "./formats/sample-data.js";
import { NO_QEMU_IMG, qemuFormat, qemuImg, withTempDir } from "./formats/test-support.js";

const MIB = 1024 * 1024;

/** A timeline with two small disks holding random, text-like and zero ranges; returns their bytes. */
async function sampleTimeline(store: LayeredStore): Promise<{ timeline: Timeline; disks: Buffer[] }> {
  const sizes = [8 * MIB + 4096, 4 * MIB];
  const timeline = await store.createTimeline("t1", [
    { id: "disk0", sizeBytes: sizes[0] ?? 0 },
    { id: "disk1", sizeBytes: sizes[1] ?? 0 },
  ]);
  const disks = sizes.map((s) => Buffer.alloc(s));
  const a = randomData(MIB);
  const b = textLike(2 * MIB, 3);
  const c = randomData(4096);
  await timeline.append([
    { disk: 0, offset: 0, length: a.length, kind: "data", data: a },
    { disk: 0, offset: 8 * MIB, length: c.length, kind: "data", data: c },
    { disk: 1, offset: MIB, length: b.length, kind: "data", data: b },
  ]);
  a.copy(disks[0] as Buffer, 0);
  c.copy(disks[0] as Buffer, 8 * MIB);
  b.copy(disks[1] as Buffer, MIB);
  return { timeline, disks };
}

function launch(timeline: Timeline, outDir: string, format?: ImageFormat, signal?: AbortSignal) {
  return new ExportProvider().launch({
    machineName: "web-1",
    machineId: "m-1",
    mode: "test",
    timeline,
    seq: timeline.lastSeq(),
    blueprint: DEFAULT_BLUEPRINT,
    outDir,
    ...(format === undefined ? {} : { format }),
    ...(signal === undefined ? {} : { signal }),
  });
}

test(
  "ExportProvider.launch() writes raw .img disks by default and the requested format otherwise",
  {
    skip: NO_QEMU_IMG,
  },
  () =>
    withTempDir(async (dir) => {
      const store = await LayeredStore.open(join(dir, "store"));
      try {
        const { timeline, disks } = await sampleTimeline(store);
        const raw = await launch(timeline, join(dir, "out"));
        assert.deepEqual(
          raw.disks.map((p) => p.slice(raw.ref.length)),
          ["/disk0.img", "/disk1.img"],
        );
        for (const [i, path] of raw.disks.entries())
          assert.ok((await readFile(path)).equals(disks[i] as Buffer));

        for (const format of ["qcow2", "vhd"] as const) {
          const target = await launch(timeline, join(dir, "out"), format);
          assert.match(target.disks[0] ?? "", new RegExp(`disk0\\.${format}$`));
          for (const [i, path] of target.disks.entries()) {
            const reference = join(dir, `ref${i}.raw`);
            await writeFile(reference, disks[i] as Buffer);
            const compare = await qemuImg("compare", "-f", "raw", reference, "-F", qemuFormat(format), path);
            assert.equal(compare.code, 0, compare.stdout + compare.stderr);
          }
        }
      } finally {
        await store.close();
      }
    }),
);

test("ExportProvider.launch() aborted mid-export removes the machine's directory", () =>
  withTempDir(async (dir) => {
    const store = await LayeredStore.open(join(dir, "store"));
    try {
      const { timeline } = await sampleTimeline(store);
      const controller = new AbortController();
      // The same timeline, except that reading the second disk aborts the launch.
      const reading = Object.assign(Object.create(timeline) as Timeline, {
        read: (disk: number, offset: number, length: number, seq?: number, signal?: AbortSignal) => {
          if (disk === 1) controller.abort();
          return timeline.read(disk, offset, length, seq, signal);
        },
      });
      await assert.rejects(launch(reading, join(dir, "out"), "vmdk", controller.signal), {
        name: "AbortError",
      });
      assert.deepEqual(await readdir(join(dir, "out")), []);
    } finally {
      await store.close();
    }
  }));
