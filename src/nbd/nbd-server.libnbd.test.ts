/** Our server against libnbd's tools: nbdinfo and nbdcopy. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FileBackend } from "./file-backend.js";
import { serveTestFile } from "./testing/serve-test-file.js";
import { haveTools, nbdUnixUri, runTool } from "./testing/run-tool.js";

const MiB = 1024 * 1024;
const skip = haveTools("nbdinfo", "nbdcopy", "qemu-io")
  ? false
  : "nbdinfo, nbdcopy (libnbd-bin) or qemu-io (qemu-utils) missing";

interface MapEntry {
  offset: number;
  length: number;
  type: number;
  description: string;
}

test("nbdinfo lists our exports and maps base:allocation and lifeboat:dirty", { skip }, async () => {
  const fx = await serveTestFile({ sizeBytes: 8 * MiB, content: Buffer.alloc(MiB, 0x11) });
  const second = await FileBackend.open(fx.file, { readOnly: true, description: "the same disk, read-only" });
  fx.server.addExport("ro", second);
  try {
    const list = JSON.parse((await runTool("nbdinfo", ["--json", "--list", fx.uri])).stdout) as {
      exports: { "export-name": string; is_read_only: boolean; contexts: string[]; description?: string }[];
    };
    const byName = new Map(list.exports.map((e) => [e["export-name"], e]));
    assert.deepEqual([...byName.keys()].sort(), ["disk", "ro"]);
    assert.equal(byName.get("ro")!.is_read_only, true);
    assert.equal(byName.get("ro")!.description, "the same disk, read-only");
    assert.deepEqual(byName.get("disk")!.contexts, ["base:allocation", "lifeboat:dirty"]);

    // Written through NBD: 64 KiB at 4 MiB (dirty); the first MiB was there before (not dirty).
    await runTool("qemu-io", ["-f", "raw", "-c", "write -P 0x22 4M 64k", fx.uri]);

    const alloc = JSON.parse((await runTool("nbdinfo", ["--json", "--map", fx.uri])).stdout) as MapEntry[];
    assert.deepEqual(
      alloc.map((e) => [e.offset, e.length, e.type]),
      [
        [0, MiB, 0],
        [MiB, 3 * MiB, 3],
        [4 * MiB, 65536, 0],
        [4 * MiB + 65536, 4 * MiB - 65536, 3],
      ],
    );
    const dirty = JSON.parse(
      (await runTool("nbdinfo", ["--json", "--map=lifeboat:dirty", fx.uri])).stdout,
    ) as MapEntry[];
    assert.deepEqual(
      dirty.map((e) => [e.offset, e.length, e.type]),
      [
        [0, 4 * MiB, 0],
        [4 * MiB, 65536, 1],
        [4 * MiB + 65536, 4 * MiB - 65536, 0],
      ],
    );
  } finally {
    fx.server.removeExport("ro");
    await fx.close();
    await second.close();
  }
});

test("nbdcopy copies into our export and out of it", { skip }, async () => {
  const fx = await serveTestFile({ sizeBytes: 16 * MiB });
  try {
    const src = join(fx.dir, "src.raw");
    const content = Buffer.alloc(16 * MiB);
    randomBytes(3 * MiB).copy(content, 2 * MiB);
    randomBytes(100_000).copy(content, 15 * MiB);
    await writeFile(src, content);
    await runTool("nbdcopy", [src, fx.uri]);
    assert.ok((await readFile(fx.file)).equals(content), "nbdcopy wrote the source into the export");

    const back = join(fx.dir, "back.raw");
    await runTool("nbdcopy", [fx.uri, back]);
    assert.ok((await readFile(back)).equals(content), "nbdcopy read the export back");

    const ro = nbdUnixUri(fx.exportName, fx.socketPath);
    await runTool("nbdcopy", ["--request-size=65536", "--requests=32", ro, back]);
    assert.ok((await readFile(back)).equals(content));
  } finally {
    await fx.close();
  }
});
