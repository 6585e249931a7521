import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { CorruptionError, UserError } from "../../common/errors.js";
import { KeyRing } from "./key-ring.js";
import { LocalMasterKeyWrapper } from "./local-master-key-wrapper.js";

async function withDataDir(fn: (dataDir: string, keysDir: string) => Promise<void>): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), "lifeboat-key-ring-"));
  try {
    await fn(dataDir, join(dataDir, "keys"));
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function openRing(dataDir: string, keysDir: string, masterFile = "master.key"): Promise<KeyRing> {
  return KeyRing.open(keysDir, await LocalMasterKeyWrapper.open(join(dataDir, "keys", masterFile)));
}

interface KeyFileJson {
  project: string;
  keys: { id: string; wrapperId: string; wrapped: string; createdAt: string }[];
}

async function readKeyFile(keysDir: string, project: string): Promise<KeyFileJson> {
  return JSON.parse(await readFile(join(keysDir, "projects", `${project}.json`), "utf8")) as KeyFileJson;
}

test("KeyRing.dataKey() creates a project's key once, stores it wrapped, and finds it after reopening", () =>
  withDataDir(async (dataDir, keysDir) => {
    const ring = await openRing(dataDir, keysDir);
    const key = await ring.dataKey("p1");
    assert.match(key.id, /^[0-9a-f]{16}$/);
    assert.equal(key.key.length, 32);
    assert.deepEqual(await ring.dataKey("p1"), key);
    const path = join(keysDir, "projects", "p1.json");
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const file = await readKeyFile(keysDir, "p1");
    assert.equal(file.project, "p1");
    assert.equal(file.keys.length, 1);
    assert.equal(file.keys[0]?.id, key.id);
    assert.equal(file.keys[0]?.wrapperId, ring.wrapperId);
    assert.ok(!Number.isNaN(Date.parse(file.keys[0]?.createdAt ?? "")));
    const text = await readFile(path, "utf8");
    for (const encoding of ["hex", "base64"] as const) assert.ok(!text.includes(key.key.toString(encoding)));

    const reopened = await openRing(dataDir, keysDir);
    const again = await reopened.dataKey("p1");
    assert.equal(again.id, key.id);
    assert.deepEqual(again.key, key.key);
    const other = await reopened.dataKey("p2");
    assert.notEqual(other.id, key.id);
    assert.notDeepEqual(other.key, key.key);
    assert.deepEqual((await readdir(join(keysDir, "projects"))).sort(), ["p1.json", "p2.json"]);
  }));

test("KeyRing.dataKey() called concurrently for a new project creates one key", () =>
  withDataDir(async (dataDir, keysDir) => {
    const ring = await openRing(dataDir, keysDir);
    const keys = await Promise.all(Array.from({ length: 10 }, () => ring.dataKey("p1")));
    assert.equal(new Set(keys.map((k) => k.id)).size, 1);
    assert.equal((await readKeyFile(keysDir, "p1")).keys.length, 1);
  }));

test("KeyRing.rotate() makes a new current key; keyById() still finds the old one, also after reopening", () =>
  withDataDir(async (dataDir, keysDir) => {
    const ring = await openRing(dataDir, keysDir);
    const first = await ring.dataKey("p1");
    const second = await ring.rotate("p1");
    assert.notEqual(second.id, first.id);
    assert.equal((await ring.dataKey("p1")).id, second.id);
    assert.deepEqual(
      ring.keys("p1").map((k) => [k.id, k.current]),
      [
        [first.id, false],
        [second.id, true],
      ],
    );
    const reopened = await openRing(dataDir, keysDir);
    assert.equal((await reopened.dataKey("p1")).id, second.id);
    assert.deepEqual((await reopened.keyById(first.id)).key, first.key);
    assert.deepEqual((await reopened.keyById(second.id)).key, second.key);
    const third = await reopened.rotate("p1");
    assert.equal((await readKeyFile(keysDir, "p1")).keys.length, 3);
    assert.equal((await reopened.dataKey("p1")).id, third.id);
    // rotate() on a project with no key yet creates its first one.
    assert.equal((await reopened.rotate("p9")).id, (await reopened.dataKey("p9")).id);
    assert.deepEqual(reopened.keys("p0"), []);
  }));

test("KeyRing.keyById() refuses an id it does not hold", () =>
  withDataDir(async (dataDir, keysDir) => {
    const ring = await openRing(dataDir, keysDir);
    await ring.dataKey("p1");
    await assert.rejects(ring.keyById("0000000000000000"), (err: unknown) => {
      return err instanceof CorruptionError && /is not in the key ring/.test(err.message);
    });
  }));

test("KeyRing with another master key fails clearly, naming both master key ids", () =>
  withDataDir(async (dataDir, keysDir) => {
    const ring = await openRing(dataDir, keysDir);
    const key = await ring.dataKey("p1");
    const other = await openRing(dataDir, keysDir, "other.key");
    assert.notEqual(other.wrapperId, ring.wrapperId);
    for (const attempt of [() => other.dataKey("p1"), () => other.keyById(key.id)]) {
      await assert.rejects(attempt(), (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.equal(err.status, 409);
        assert.ok(err.message.includes(`wrapped by master key ${ring.wrapperId}`));
        assert.ok(err.message.includes(`the master key loaded is ${other.wrapperId}`));
        return true;
      });
    }
  }));

test("KeyRing refuses a key file with a flipped byte in the wrapped key or an edited key id", () =>
  withDataDir(async (dataDir, keysDir) => {
    const ring = await openRing(dataDir, keysDir);
    const key = await ring.dataKey("p1");
    const path = join(keysDir, "projects", "p1.json");
    const original = await readKeyFile(keysDir, "p1");
    const record = original.keys[0];
    assert.ok(record !== undefined);
    const wrapped = Buffer.from(record.wrapped, "base64");
    for (const at of [0, 5, 20, wrapped.length - 1]) {
      const bad = Buffer.from(wrapped);
      bad[at] = (bad[at] ?? 0) ^ 0x20;
      await writeFile(
        path,
        JSON.stringify({ ...original, keys: [{ ...record, wrapped: bad.toString("base64") }] }),
      );
      const reopened = await openRing(dataDir, keysDir);
      await assert.rejects(reopened.dataKey("p1"), (err: unknown) => {
        assert.ok(err instanceof CorruptionError, String(err));
        assert.match(err.message, new RegExp(`Data key ${key.id} in .*p1\\.json failed to unwrap`));
        assert.ok(!err.message.includes(key.key.toString("hex")));
        return true;
      });
    }
    const editedId = "ffffffffffffffff";
    await writeFile(path, JSON.stringify({ ...original, keys: [{ ...record, id: editedId }] }));
    await assert.rejects((await openRing(dataDir, keysDir)).keyById(editedId), CorruptionError);
    await writeFile(path, "{ not json");
    await assert.rejects(openRing(dataDir, keysDir), /not valid JSON/);
  }));

test("KeyRing refuses a key file copied to another project", () =>
  withDataDir(async (dataDir, keysDir) => {
    const ring = await openRing(dataDir, keysDir);
    await ring.dataKey("p1");
    const original = await readKeyFile(keysDir, "p1");
    const p2 = join(keysDir, "projects", "p2.json");
    // Copied as is: the file says whose it is.
    await writeFile(p2, JSON.stringify(original));
    await assert.rejects(openRing(dataDir, keysDir), /belongs to project "p1", not "p2"/);
    // Copied with its project edited (and the original gone, so the id is not a duplicate):
    // the key was wrapped for p1, so it does not unwrap for p2.
    await writeFile(p2, JSON.stringify({ ...original, project: "p2" }));
    await assert.rejects(openRing(dataDir, keysDir), /appears in/);
    await rm(join(keysDir, "projects", "p1.json"));
    const reopened = await openRing(dataDir, keysDir);
    await assert.rejects(
      reopened.dataKey("p2"),
      (err: unknown) => err instanceof CorruptionError && /failed to unwrap/.test(err.message),
    );
  }));

test("KeyRing validates project names: no path traversal", () =>
  withDataDir(async (dataDir, keysDir) => {
    const ring = await openRing(dataDir, keysDir);
    for (const bad of [
      "",
      ".",
      "..",
      "../p1",
      "a/b",
      "a\\b",
      ".hidden",
      "-p",
      "p\0",
      "p 1",
      "x".repeat(129),
    ]) {
      await assert.rejects(
        async () => ring.dataKey(bad),
        (err: unknown) => err instanceof UserError && /Invalid project name/.test(err.message),
        JSON.stringify(bad),
      );
      await assert.rejects(async () => ring.rotate(bad), UserError);
      assert.throws(() => ring.keys(bad), UserError);
    }
    for (const good of ["p", "P-1", "proj_2.x", "x".repeat(128)]) await ring.dataKey(good);
    assert.equal((await readdir(join(keysDir, "projects"))).length, 4);
    assert.deepEqual((await readdir(dataDir)).sort(), ["keys"]);
  }));

test("KeyRing data keys do not show their key when logged", () =>
  withDataDir(async (dataDir, keysDir) => {
    const key = await (await openRing(dataDir, keysDir)).dataKey("p1");
    for (const text of [inspect(key, { depth: 5 }), JSON.stringify(key), String(Object.keys(key))]) {
      assert.ok(!text.includes(key.key.toString("hex").slice(0, 8)), text);
      assert.ok(!text.includes("key: <Buffer"), text);
    }
  }));
