import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { CorruptionError, UserError } from "../../common/errors.js";
import { LocalMasterKeyWrapper, MASTER_KEY_BYTES } from "./local-master-key-wrapper.js";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-master-key-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const CONTEXT = { purpose: "test", project: "p1", keyId: "00112233aabbccdd" };

test("LocalMasterKeyWrapper.open() creates a 32-byte key file with mode 0600 and loads it again", () =>
  withDir(async (dataDir) => {
    const path = LocalMasterKeyWrapper.defaultPath(dataDir);
    assert.equal(path, join(dataDir, "keys", "master.key"));
    const first = await LocalMasterKeyWrapper.open(path);
    const st = await stat(path);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.size, MASTER_KEY_BYTES);
    assert.equal((await stat(join(dataDir, "keys"))).mode & 0o777, 0o700);
    assert.deepEqual(await readdir(join(dataDir, "keys")), ["master.key"]);
    assert.match(first.id, /^local:[0-9a-f]{16}$/);
    const again = await LocalMasterKeyWrapper.open(path, { create: false });
    assert.equal(again.id, first.id);
    const key = randomBytes(32);
    assert.deepEqual(await again.unwrap(await first.wrap(key, CONTEXT), CONTEXT), key);
    // The id is not the key, nor any part of it.
    const raw = await readFile(path);
    assert.ok(!first.id.includes(raw.toString("hex").slice(0, 8)));
  }));

test("LocalMasterKeyWrapper.open() of the same missing file at once settles on one key", () =>
  withDir(async (dir) => {
    const path = join(dir, "master.key");
    const wrappers = await Promise.all(Array.from({ length: 8 }, () => LocalMasterKeyWrapper.open(path)));
    assert.equal(new Set(wrappers.map((w) => w.id)).size, 1);
    assert.deepEqual(await readdir(dir), ["master.key"]);
  }));

test("LocalMasterKeyWrapper.open() with create: false refuses a missing file", () =>
  withDir(async (dir) => {
    await assert.rejects(
      LocalMasterKeyWrapper.open(join(dir, "master.key"), { create: false }),
      (err: unknown) => err instanceof UserError && err.status === 404 && /does not exist/.test(err.message),
    );
  }));

test("LocalMasterKeyWrapper.open() refuses a key file that group or others may access", () =>
  withDir(async (dir) => {
    const path = join(dir, "master.key");
    const key = randomBytes(32);
    await writeFile(path, key, { mode: 0o600 });
    for (const mode of [0o640, 0o604, 0o660, 0o644, 0o601]) {
      await chmod(path, mode);
      await assert.rejects(LocalMasterKeyWrapper.open(path), (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.match(err.message, new RegExp(`mode 0${mode.toString(8)}.*chmod 600`));
        assert.ok(!err.message.includes(key.toString("hex")));
        return true;
      });
    }
    await chmod(path, 0o400);
    await LocalMasterKeyWrapper.open(path);
  }));

test("LocalMasterKeyWrapper.open() refuses a key file of the wrong length, or a directory", () =>
  withDir(async (dir) => {
    for (const size of [0, 31, 33, 64]) {
      const path = join(dir, `k${size}`);
      await writeFile(path, randomBytes(size), { mode: 0o600 });
      await assert.rejects(
        LocalMasterKeyWrapper.open(path),
        (err: unknown) =>
          err instanceof UserError && err.message.includes(`holds ${size} bytes, expected 32`),
      );
    }
    const sub = join(dir, "sub");
    await mkdir(sub, { mode: 0o700 });
    await assert.rejects(LocalMasterKeyWrapper.open(sub), /not a regular file/);
  }));

test("LocalMasterKeyWrapper.unwrap() fails for another context, another master key or a changed byte", () =>
  withDir(async (dir) => {
    const a = await LocalMasterKeyWrapper.open(join(dir, "a.key"));
    const b = await LocalMasterKeyWrapper.open(join(dir, "b.key"));
    assert.notEqual(a.id, b.id);
    const key = randomBytes(32);
    const wrapped = await a.wrap(key, CONTEXT);
    assert.ok(!wrapped.includes(key));
    const isCorruption = (err: unknown): boolean =>
      err instanceof CorruptionError && /failed to authenticate/.test(err.message);
    await assert.rejects(a.unwrap(wrapped, { ...CONTEXT, project: "p2" }), isCorruption);
    await assert.rejects(a.unwrap(wrapped, { ...CONTEXT, keyId: "00112233aabbccde" }), isCorruption);
    await assert.rejects(a.unwrap(wrapped, { purpose: "test", project: "p1" }), isCorruption);
    await assert.rejects(b.unwrap(wrapped, CONTEXT), isCorruption);
    for (let at = 1; at < wrapped.length; at++) {
      const bad = Buffer.from(wrapped);
      bad[at] = (bad[at] ?? 0) ^ 0x04;
      await assert.rejects(a.unwrap(bad, CONTEXT), isCorruption, `byte ${at}`);
    }
    const badVersion = Buffer.from(wrapped);
    badVersion[0] = 2;
    await assert.rejects(a.unwrap(badVersion, CONTEXT), /malformed/);
    await assert.rejects(a.unwrap(wrapped.subarray(0, 20), CONTEXT), /malformed/);
    // Context order does not matter: it is authenticated as sorted pairs.
    const reordered = { keyId: CONTEXT.keyId, project: CONTEXT.project, purpose: CONTEXT.purpose };
    assert.deepEqual(await a.unwrap(wrapped, reordered), key);
  }));
