import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm, stat, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NbdErrno } from "./export-backend.js";
import { FileBackend } from "./file-backend.js";
import { runTool } from "./testing/run-tool.js";
import { CONTEXT_BASE_ALLOCATION, NBD_ENOTSUP, STATE_HOLE, STATE_ZERO } from "./protocol.js";

const MiB = 1024 * 1024;

async function withFile(sizeBytes: number, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-fb-"));
  const path = join(dir, "disk.img");
  try {
    await (await open(path, "w")).close();
    await truncate(path, sizeBytes);
    await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("FileBackend.flush() leaves completed writes in the file, as read through a separate fd", async () => {
  await withFile(4 * MiB, async (path) => {
    const b = await FileBackend.open(path);
    try {
      await b.write(MiB + 512, Buffer.alloc(3000, 0x5a), false);
      await b.write(3 * MiB, Buffer.alloc(4096, 0x6b), true); // FUA
      await b.flush();
      const other = await open(path, "r");
      const got = Buffer.alloc(3000);
      await other.read(got, 0, 3000, MiB + 512);
      const fua = Buffer.alloc(4096);
      await other.read(fua, 0, 4096, 3 * MiB);
      await other.close();
      assert.ok(got.equals(Buffer.alloc(3000, 0x5a)));
      assert.ok(fua.equals(Buffer.alloc(4096, 0x6b)));
    } finally {
      await b.close();
    }
  });
});

test("FileBackend.trim() punches a hole in a regular file; small ranges get zeros written", async () => {
  await withFile(8 * MiB, async (path) => {
    const b = await FileBackend.open(path);
    try {
      await b.write(0, Buffer.alloc(4 * MiB, 0xee), false);
      await b.flush();
      const before = (await stat(path)).blocks;
      await b.trim(MiB, 2 * MiB, false);
      await b.trim(3 * MiB, 4096, false);
      const after = (await stat(path)).blocks;
      assert.ok(after < before, `allocated blocks went from ${before} to ${after}`);
      const data = await readFile(path);
      assert.ok(data.subarray(MiB, 3 * MiB + 4096).equals(Buffer.alloc(2 * MiB + 4096)));
      assert.equal(data[3 * MiB + 4096], 0xee);
      assert.equal(data[MiB - 1], 0xee);
    } finally {
      await b.close();
    }
  });
});

test("FileBackend.writeZeroes() fails fast with ENOTSUP when zeroing is not faster, and zeroes otherwise", async () => {
  await withFile(4 * MiB, async (path) => {
    const b = await FileBackend.open(path);
    try {
      await b.write(0, Buffer.alloc(4 * MiB, 1), false);
      await assert.rejects(
        b.writeZeroes(0, 4096, { fua: false, noHole: false, fast: true }),
        (err: unknown) => err instanceof NbdErrno && err.errno === NBD_ENOTSUP,
      );
      assert.equal((await readFile(path))[0], 1, "a refused fast zero changes nothing");
      await b.writeZeroes(0, 4096, { fua: true, noHole: true, fast: false });
      await b.writeZeroes(2 * MiB, 2 * MiB, { fua: false, noHole: true, fast: false });
      const data = await readFile(path);
      assert.ok(data.subarray(0, 4096).equals(Buffer.alloc(4096)));
      assert.ok(data.subarray(2 * MiB).equals(Buffer.alloc(2 * MiB)));
      assert.equal(data[4096], 1);
    } finally {
      await b.close();
    }
  });
});

test("FileBackend.blockStatus() reports zero blocks as holes and the rest as data", async () => {
  await withFile(2 * MiB, async (path) => {
    const b = await FileBackend.open(path);
    try {
      assert.deepEqual(await b.blockStatus(0, 2 * MiB, CONTEXT_BASE_ALLOCATION), [
        { length: 2 * MiB, flags: STATE_HOLE | STATE_ZERO },
      ]);
      await b.write(8192, Buffer.alloc(100, 3), false);
      assert.deepEqual(await b.blockStatus(0, 2 * MiB, CONTEXT_BASE_ALLOCATION), [
        { length: 8192, flags: STATE_HOLE | STATE_ZERO },
        { length: 4096, flags: 0 },
        { length: 2 * MiB - 12288, flags: STATE_HOLE | STATE_ZERO },
      ]);
      const into = Buffer.alloc(MiB);
      const zeros = await b.read(0, into);
      assert.deepEqual(zeros, [{ offset: 12288, length: MiB - 12288 }]);
    } finally {
      await b.close();
    }
  });
});

test("FileBackend serves a block device (a loop device) with its size from sysfs", async (t) => {
  if (process.getuid?.() !== 0) return t.skip("needs root for losetup");
  await withFile(3 * MiB, async (path) => {
    let loop: string;
    try {
      loop = (await runTool("losetup", ["--find", "--show", path])).stdout.trim();
    } catch {
      return t.skip("losetup cannot attach a loop device here");
    }
    try {
      const b = await FileBackend.open(loop);
      try {
        assert.equal(b.size, 3 * MiB);
        await b.write(MiB, Buffer.alloc(4096, 0x42), true);
        await b.trim(2 * MiB, 4096, false); // zeros written: no fallocate on a device
        const back = Buffer.alloc(4096);
        await b.read(MiB, back);
        assert.ok(back.equals(Buffer.alloc(4096, 0x42)));
      } finally {
        await b.close();
      }
    } finally {
      await runTool("losetup", ["-d", loop]);
    }
    assert.equal((await readFile(path))[MiB], 0x42);
  });
});
