/**
 * LocalObjectStore: the conformance suite (hard-linking and copying file bodies), plus
 * what only a local directory shows: crash leftovers cleaned at open, hard links really
 * used on one file system and copies across two, and the key shapes a directory tree
 * cannot hold.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { access, mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { UserError } from "../../common/errors.js";
import { LocalObjectStore } from "./local-object-store.js";
import { objectStoreConformance } from "./object-store-conformance.js";
import { objectStoreFromSpec } from "./object-store-from-spec.js";

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "lifeboat-local-objstore-"));
}

for (const linkFiles of [true, false]) {
  objectStoreConformance(linkFiles ? "local (links)" : "local (copies)", async () => {
    const dir = await tempDir();
    const store = await LocalObjectStore.open(join(dir, "store"), { linkFiles });
    return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
  });
}

async function withStore(fn: (store: LocalObjectStore, dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir();
  try {
    const store = await LocalObjectStore.open(join(dir, "store"));
    try {
      await fn(store, dir);
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("LocalObjectStore", () => {
  test("a crash between the temp write and the rename leaves no object, and open() removes the temp", async () => {
    await withStore(async (store, dir) => {
      await store.put("layers/a", Buffer.from("committed"));
      // What a put leaves when the process dies after writing and syncing its temp file.
      const stray = join(store.root, ".tmp", "put-0123456789abcdef");
      await writeFile(stray, "half a layer");
      assert.deepEqual(await store.list(""), [{ key: "layers/a", size: 9 }]);
      assert.equal(await store.head("layers/b"), undefined);

      const reopened = await LocalObjectStore.open(join(dir, "store"));
      await assert.rejects(access(stray), { code: "ENOENT" });
      assert.deepEqual(await readdir(join(store.root, ".tmp")), []);
      assert.deepEqual(await reopened.list(""), [{ key: "layers/a", size: 9 }]);
      assert.ok((await reopened.read("layers/a", 0, 9)).equals(Buffer.from("committed")));
    });
  });

  test("put() of a {file} on the same file system hard-links it (same inode); linkFiles: false copies", async () => {
    await withStore(async (store, dir) => {
      const segment = join(dir, "journal-0000000000000001.log");
      await writeFile(segment, randomBytes(100_000));
      await store.put("timelines/t1/layer-1", { file: segment });
      const source = await stat(segment);
      const object = await stat(join(store.root, "timelines", "t1", "layer-1"));
      assert.equal(object.ino, source.ino);
      assert.equal(source.nlink, 2);
      assert.deepEqual(await readdir(join(store.root, ".tmp")), [], "no temp link left");

      const copying = await LocalObjectStore.open(join(dir, "copies"), { linkFiles: false });
      await copying.put("timelines/t1/layer-1", { file: segment });
      const copied = await stat(join(copying.root, "timelines", "t1", "layer-1"));
      assert.notEqual(copied.ino, source.ino);
      assert.equal(copied.size, source.size);
    });
  });

  test("put() of the same linked file twice keeps one object and no temp link", async () => {
    await withStore(async (store, dir) => {
      const file = join(dir, "f");
      await writeFile(file, "same inode");
      await store.put("k", { file });
      await store.put("k", { file });
      assert.deepEqual(await readdir(join(store.root, ".tmp")), []);
      assert.equal((await stat(file)).nlink, 2);
      assert.ok((await store.read("k", 0, 10)).equals(Buffer.from("same inode")));
    });
  });

  test("put() of a {file} on another file system copies it", async (t) => {
    const shm = "/dev/shm";
    const other = await stat(shm).catch(() => undefined);
    if (other === undefined || other.dev === (await stat(tmpdir())).dev) {
      t.skip("needs /dev/shm on a file system other than the temp directory's");
      return;
    }
    await withStore(async (store) => {
      const file = join(shm, `lifeboat-test-${randomBytes(4).toString("hex")}`);
      const data = randomBytes(300_000);
      await writeFile(file, data);
      try {
        await store.put("x", { file });
        const object = await stat(join(store.root, "x"));
        assert.notEqual(object.dev, other.dev);
        assert.ok((await store.read("x", 0, data.length)).equals(data));
      } finally {
        await rm(file, { force: true });
      }
    });
  });

  test("a key cannot be both an object and a directory of objects here: UserError 409", async () => {
    await withStore(async (store) => {
      await store.put("a", Buffer.from("file"));
      await assert.rejects(store.put("a/b", Buffer.from("x")), (err: unknown) => {
        return err instanceof UserError && err.status === 409;
      });
      await store.put("c/d", Buffer.from("x"));
      await assert.rejects(store.put("c", Buffer.from("x")), (err: unknown) => {
        return err instanceof UserError && err.status === 409;
      });
      assert.deepEqual(
        (await store.list("")).map((o) => o.key),
        ["a", "c/d"],
      );
    });
  });

  test("delete() removes directories it leaves empty, and a put after it recreates them", async () => {
    await withStore(async (store) => {
      await store.put("timelines/t1/layer-1", Buffer.from("1"));
      await store.put("timelines/t2/layer-1", Buffer.from("2"));
      await store.delete("timelines/t1/layer-1");
      assert.deepEqual(await readdir(join(store.root, "timelines")), ["t2"]);
      await store.delete("timelines/t2/layer-1");
      assert.deepEqual((await readdir(store.root)).sort(), [".tmp"]);
      await store.put("timelines/t1/layer-2", Buffer.from("x"));
      assert.deepEqual(await store.list(""), [{ key: "timelines/t1/layer-2", size: 1 }]);
    });
  });

  test("list() skips names no key can have", async () => {
    await withStore(async (store) => {
      await store.put("ok/a", Buffer.from("a"));
      await writeFile(join(store.root, "ok", ".swp"), "editor");
      await mkdir(join(store.root, "ok", "bad name"));
      await writeFile(join(store.root, "ok", "bad name", "x"), "x");
      assert.deepEqual(await store.list(""), [{ key: "ok/a", size: 1 }]);
    });
  });

  test("open() rejects a relative path; objectStoreFromSpec() opens local: and bare paths", async () => {
    await assert.rejects(LocalObjectStore.open("relative/dir"), UserError);
    const dir = await tempDir();
    try {
      const a = await objectStoreFromSpec(`local:${join(dir, "a")}`, {});
      const b = await objectStoreFromSpec(join(dir, "b"), {});
      assert.equal(a.description, `local:${join(dir, "a")}`);
      assert.equal(b.description, `local:${join(dir, "b")}`);
      await a.put("k", Buffer.from("v"));
      assert.deepEqual(await a.list(""), [{ key: "k", size: 1 }]);
      assert.deepEqual(await b.list(""), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
