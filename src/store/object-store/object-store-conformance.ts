/**
 * The one test suite every ObjectStore backend runs (local, S3, Azure Blob): each case
 * checks one promise of the contract in object-store.ts. A backend's test file calls
 * `objectStoreConformance(name, make)`; `make` returns a fresh, empty store (its own
 * directory, bucket prefix or container) and a cleanup for it. Makers should configure the
 * backend's list page size to CONFORMANCE_PAGE_SIZE so that listing crosses pages.
 *
 * An emulator that cannot do what the real service does names the case in `gaps` with
 * the reason: the case is then reported as skipped, with that reason, never as passed.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { UserError } from "../../common/errors.js";
import type { ObjectStore } from "./object-store.js";
import { ObjectNotFoundError } from "./object-store.js";

export const CONFORMANCE_PAGE_SIZE = 5;
const MiB = 1024 * 1024;
const BIG_FILE_BYTES = 40 * MiB;

export type ConformanceCase =
  | "round-trip"
  | "edges"
  | "past-end"
  | "missing"
  | "overwrite"
  | "atomic-overwrite"
  | "file-body"
  | "big-file-body"
  | "list"
  | "list-order"
  | "delete"
  | "hostile-keys"
  | "pre-aborted"
  | "abort-while-running"
  | "concurrent-keys"
  | "concurrent-same-key";

export interface ConformanceOptions {
  /** Cases this backend's emulator cannot pass, with the reason (reported as skipped). */
  readonly gaps?: { readonly [C in ConformanceCase]?: string };
}

export interface StoreUnderTest {
  store: ObjectStore;
  cleanup(): Promise<void>;
}

export function objectStoreConformance(
  name: string,
  make: () => Promise<StoreUnderTest>,
  options: ConformanceOptions = {},
): void {
  describe(`${name} object store conformance`, () => {
    let dir = "";
    let bigFile = "";
    let bigHash = "";

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "lifeboat-objstore-"));
      bigFile = join(dir, "big.bin");
      bigHash = await writeRandomFile(bigFile, BIG_FILE_BYTES);
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    function check(id: ConformanceCase, title: string, fn: (store: ObjectStore) => Promise<void>): void {
      const gap = options.gaps?.[id];
      const opts = gap === undefined ? {} : { skip: `${name} cannot: ${gap}` };
      test(`${name}: ${title}`, opts, async () => {
        const under = await make();
        try {
          await fn(under.store);
        } finally {
          try {
            await under.cleanup();
          } finally {
            await under.store.close();
          }
        }
      });
    }

    check("round-trip", "put() then read() and head() return the same bytes and size", async (store) => {
      for (const size of [0, 1, 4096, MiB + 3]) {
        const key = `rt/obj-${size}.bin`;
        const data = randomBytes(size);
        await store.put(key, data);
        assert.deepEqual(await store.head(key), { key, size });
        assert.ok((await store.read(key, 0, size)).equals(data), `whole read of ${size} bytes`);
      }
    });

    check(
      "edges",
      "read() returns exact ranges at the start, the end and across the middle",
      async (store) => {
        const data = randomBytes(10_000);
        await store.put("edges/a", data);
        const cases: Array<[number, number]> = [
          [0, 1],
          [0, 10_000],
          [9_999, 1],
          [1, 9_999],
          [4_095, 2],
          [5_000, 0],
          [10_000, 0],
          [0, 0],
        ];
        for (const [offset, length] of cases) {
          const got = await store.read("edges/a", offset, length);
          assert.equal(got.length, length, `length at ${offset}+${length}`);
          assert.ok(got.equals(data.subarray(offset, offset + length)), `bytes at ${offset}+${length}`);
        }
      },
    );

    check(
      "past-end",
      "read() past the end rejects with a UserError and returns nothing partial",
      async (store) => {
        await store.put("end/a", randomBytes(1000));
        for (const [offset, length] of [
          [0, 1001],
          [999, 2],
          [1000, 1],
          [1001, 0],
          [5000, 10],
        ] as const) {
          await assert.rejects(store.read("end/a", offset, length), UserError, `read at ${offset}+${length}`);
        }
        await assert.rejects(store.read("end/a", -1, 1), UserError);
        await assert.rejects(store.read("end/a", 0.5, 1), UserError);
      },
    );

    check(
      "missing",
      "read() of a missing key rejects with ObjectNotFoundError; head() is undefined",
      async (store) => {
        await store.put("there/a", Buffer.from("x"));
        for (const key of ["there/b", "nowhere/a", "there/a/deeper", "there"]) {
          await assert.rejects(store.read(key, 0, 1), ObjectNotFoundError, key);
          await assert.rejects(store.read(key, 0, 0), ObjectNotFoundError, `${key} (length 0)`);
          assert.equal(await store.head(key), undefined, key);
        }
      },
    );

    check("overwrite", "put() over an existing key replaces it whole", async (store) => {
      const big = randomBytes(300_000);
      const small = randomBytes(1234);
      await store.put("ow/a", big);
      await store.put("ow/a", small);
      assert.deepEqual(await store.head("ow/a"), { key: "ow/a", size: 1234 });
      assert.ok((await store.read("ow/a", 0, 1234)).equals(small));
      await assert.rejects(store.read("ow/a", 0, 300_000), UserError);
      await store.put("ow/a", big);
      assert.ok((await store.read("ow/a", 0, big.length)).equals(big));
      assert.equal((await store.list("ow/")).length, 1);
    });

    check(
      "atomic-overwrite",
      "readers during overwrites see the old or the new object, never a mix",
      async (store) => {
        const size = 2 * MiB;
        const versions = [Buffer.alloc(size, 0xaa), Buffer.alloc(size, 0x55), randomBytes(size)];
        const hashes = new Set(versions.map(sha256));
        await store.put("atomic/a", versions[0] ?? Buffer.alloc(0));
        let writing = true;
        const writer = (async () => {
          try {
            for (let i = 1; i <= 12; i++)
              await store.put("atomic/a", versions[i % versions.length] ?? Buffer.alloc(0));
          } finally {
            writing = false;
          }
        })();
        let reads = 0;
        while (writing) {
          const got = await store.read("atomic/a", 0, size);
          assert.ok(hashes.has(sha256(got)), "a read returned bytes of no single version");
          reads++;
        }
        await writer;
        assert.ok(reads > 0);
      },
    );

    check(
      "file-body",
      "put() of a {file} body stores the file's bytes and leaves the file as it was",
      async (store) => {
        const path = join(dir, "small.bin");
        const data = randomBytes(70_000);
        await writeFile(path, data);
        await store.put("files/small", { file: path });
        assert.ok((await store.read("files/small", 0, data.length)).equals(data));
        assert.ok((await readFile(path)).equals(data), "the source file is unchanged");
        const empty = join(dir, "empty.bin");
        await writeFile(empty, "");
        await store.put("files/empty", { file: empty });
        assert.deepEqual(await store.head("files/empty"), { key: "files/empty", size: 0 });
        await assert.rejects(store.put("files/none", { file: join(dir, "does-not-exist") }));
        assert.equal(await store.head("files/none"), undefined);
      },
    );

    check("big-file-body", "put() of a 40 MiB {file} body round-trips by sha256", async (store) => {
      await store.put("files/big", { file: bigFile });
      assert.deepEqual(await store.head("files/big"), { key: "files/big", size: BIG_FILE_BYTES });
      assert.equal(await hashObject(store, "files/big", BIG_FILE_BYTES), bigHash);
    });

    check("list", "list() returns every key under a prefix, sorted, across several pages", async (store) => {
      const keys: string[] = [];
      for (let i = 0; i < 4 * CONFORMANCE_PAGE_SIZE + 3; i++)
        keys.push(`pages/k${String(i).padStart(3, "0")}`);
      keys.push("pages/sub/deep/x", "pages/sub/y");
      const decoys = ["pagesx", "other/pages/a", "pag"];
      // Put out of order, so a sorted result is not an accident of insertion order.
      const shuffled = [...keys, ...decoys].sort((a, b) =>
        sha256(Buffer.from(a)).localeCompare(sha256(Buffer.from(b))),
      );
      await Promise.all(shuffled.map((key, i) => store.put(key, Buffer.alloc(i + 1, 7))));
      const sizeOf = (key: string): number => shuffled.indexOf(key) + 1;

      const all = await store.list("pages/");
      assert.deepEqual(
        all.map((o) => o.key),
        [...keys].sort(),
      );
      for (const o of all) assert.equal(o.size, sizeOf(o.key), o.key);
      assert.deepEqual(
        (await store.list("pages/k01")).map((o) => o.key),
        keys.filter((k) => k.startsWith("pages/k01")),
      );
      assert.deepEqual(
        (await store.list("pages/sub/")).map((o) => o.key),
        ["pages/sub/deep/x", "pages/sub/y"],
      );
      assert.deepEqual(
        (await store.list("pages")).map((o) => o.key),
        [...keys, "pagesx"].sort(),
      );
      assert.deepEqual(
        (await store.list("")).map((o) => o.key),
        [...keys, ...decoys].sort(),
      );
      assert.deepEqual(await store.list("nothing/"), []);
    });

    // Byte order puts "t1-b/x" before "t1/x" ('-' sorts before '/'), while a walk of a
    // directory tree meets "t1/" first: pages cut by "start after" must follow byte order.
    check(
      "list-order",
      "list() pages in byte order when a name sorts before its sibling's slash",
      async (store) => {
        const keys: string[] = [];
        for (let i = 0; i < 2 * CONFORMANCE_PAGE_SIZE; i++) keys.push(`tl/t1/k${i}`);
        keys.push("tl/t1-b/k", "tl/t1.c/k", "tl/t10/k", "tl/t1-b/z");
        await Promise.all(keys.map((key) => store.put(key, Buffer.from(key))));
        const expected = [...keys].sort();
        assert.equal(expected[0], "tl/t1-b/k");
        assert.deepEqual(
          (await store.list("tl/")).map((o) => o.key),
          expected,
        );
        assert.deepEqual(
          (await store.list("tl/t1")).map((o) => o.key),
          expected,
        );
      },
    );

    check("delete", "delete() removes an object and is idempotent", async (store) => {
      await store.put("del/a", Buffer.from("a"));
      await store.put("del/b", Buffer.from("b"));
      await store.delete("del/a");
      assert.equal(await store.head("del/a"), undefined);
      await assert.rejects(store.read("del/a", 0, 1), ObjectNotFoundError);
      await store.delete("del/a");
      await store.delete("never/there");
      assert.deepEqual(
        (await store.list("")).map((o) => o.key),
        ["del/b"],
      );
      await store.put("del/a", Buffer.from("again"));
      assert.ok((await store.read("del/a", 0, 5)).equals(Buffer.from("again")));
    });

    check(
      "hostile-keys",
      "hostile keys and prefixes are rejected with a UserError before any I/O",
      async (store) => {
        const hostile = [
          "",
          "/etc/passwd",
          "../escape",
          "a/../../escape",
          "a//b",
          "a/",
          "./a",
          ".hidden",
          "a/.tmp",
          "a\\b",
          "a b",
          "a\0b",
          "é",
          "a/b?c",
          "x".repeat(129),
          Array.from({ length: 17 }, () => "s").join("/"),
        ];
        // An already-aborted signal: a key check that came after the first await would see it first.
        const aborted = AbortSignal.abort();
        for (const key of hostile) {
          const why = JSON.stringify(key);
          await assert.rejects(store.put(key, Buffer.from("x"), aborted), UserError, `put ${why}`);
          await assert.rejects(store.put(key, Buffer.from("x")), UserError, `put ${why}`);
          await assert.rejects(store.read(key, 0, 1), UserError, `read ${why}`);
          await assert.rejects(store.head(key), UserError, `head ${why}`);
          await assert.rejects(store.delete(key), UserError, `delete ${why}`);
        }
        for (const prefix of ["/", "../", "a//", ".tmp/", "a/../", "/etc"]) {
          await assert.rejects(store.list(prefix), UserError, `list ${JSON.stringify(prefix)}`);
        }
        assert.deepEqual(await store.list(""), [], "nothing was written");
        // The limits themselves are fine: 16 segments, one of 128 characters (S3 and Azure
        // cap a whole name at 1024 bytes, so not all 16 can be that long there).
        const longest = [
          "x".repeat(128),
          ...Array.from({ length: 15 }, (_, i) => `s${i}-`.padEnd(40, "y")),
        ].join("/");
        await store.put(longest, Buffer.from("ok"));
        assert.deepEqual(await store.head(longest), { key: longest, size: 2 });
      },
    );

    check(
      "pre-aborted",
      "an aborted signal rejects every method with its reason and a put leaves nothing",
      async (store) => {
        await store.put("ab/existing", Buffer.from("old"));
        const reason = new Error("stop now");
        const signal = AbortSignal.abort(reason);
        await assert.rejects(store.put("ab/new", Buffer.from("x"), signal), (err) => err === reason);
        await assert.rejects(store.put("ab/existing", { file: bigFile }, signal), (err) => err === reason);
        await assert.rejects(store.read("ab/existing", 0, 1, signal), (err) => err === reason);
        await assert.rejects(store.head("ab/existing", signal), (err) => err === reason);
        await assert.rejects(store.list("ab/", signal), (err) => err === reason);
        await assert.rejects(store.delete("ab/existing", signal), (err) => err === reason);
        assert.equal(await store.head("ab/new"), undefined);
        assert.ok((await store.read("ab/existing", 0, 3)).equals(Buffer.from("old")));

        // Aborted right after the call returned: the put is under way when it sees the signal.
        const controller = new AbortController();
        const running = store.put("ab/new", { file: bigFile }, controller.signal);
        controller.abort(reason);
        await assert.rejects(running, (err) => err === reason);
        assert.equal(await store.head("ab/new"), undefined);
      },
    );

    check(
      "abort-while-running",
      "a put aborted mid-way leaves the old object or the whole new one",
      async (store) => {
        const old = Buffer.from("the old object");
        for (const delayMs of [5, 40, 150]) {
          await store.put("ab/big", old);
          const controller = new AbortController();
          const reason = new Error("abort test");
          const running = store.put("ab/big", { file: bigFile }, controller.signal);
          await sleep(delayMs);
          controller.abort(reason);
          let rejected = false;
          try {
            await running;
          } catch (err) {
            assert.equal(err, reason, `the rejection is the abort reason (after ${delayMs} ms)`);
            rejected = true;
          }
          const info = await store.head("ab/big");
          if (info?.size === old.length) {
            assert.ok(rejected, "the put resolved, so the new object must be there");
            assert.ok((await store.read("ab/big", 0, old.length)).equals(old));
          } else {
            assert.equal(info?.size, BIG_FILE_BYTES, `after ${delayMs} ms: old or whole new object`);
            assert.equal(await hashObject(store, "ab/big", BIG_FILE_BYTES), bigHash);
          }
        }
      },
    );

    check("concurrent-keys", "concurrent puts of different keys all land whole", async (store) => {
      const data = Array.from({ length: 16 }, (_, i) => randomBytes(10_000 + i * 3_001));
      await Promise.all(data.map((d, i) => store.put(`conc/${i}/obj`, d)));
      for (const [i, d] of data.entries()) {
        assert.ok((await store.read(`conc/${i}/obj`, 0, d.length)).equals(d), `conc/${i}/obj`);
      }
      assert.equal((await store.list("conc/")).length, data.length);
    });

    check(
      "concurrent-same-key",
      "concurrent puts of one key leave exactly one of them, whole",
      async (store) => {
        const data = Array.from({ length: 8 }, (_, i) => randomBytes(200_000 + i));
        await Promise.all(data.map((d) => store.put("same/key", d)));
        const info = await store.head("same/key");
        const winner = data.find((d) => d.length === info?.size);
        assert.ok(winner !== undefined, "the object has the size of one of the puts");
        assert.ok((await store.read("same/key", 0, winner.length)).equals(winner));
      },
    );
  });
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Writes `size` random bytes to `path` in 1 MiB pieces; returns their sha256. */
async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const handle = await open(path, "w");
  try {
    for (let done = 0; done < size; done += MiB) {
      const piece = randomBytes(Math.min(MiB, size - done));
      hash.update(piece);
      await handle.write(piece, 0, piece.length, done);
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}

/** sha256 of an object read back in 8 MiB ranges. */
async function hashObject(store: ObjectStore, key: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  for (let offset = 0; offset < size; offset += 8 * MiB) {
    hash.update(await store.read(key, offset, Math.min(8 * MiB, size - offset)));
  }
  return hash.digest("hex");
}
