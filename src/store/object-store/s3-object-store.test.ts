/**
 * The conformance suite against s3rver (an S3 emulator run as a child process, always),
 * and against a real S3 endpoint when LIFEBOAT_TEST_S3_ENDPOINT and LIFEBOAT_TEST_S3_BUCKET
 * (and AWS credentials in the environment) are set.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import { UserError } from "../../common/errors.js";
import type { Emulator } from "./emulator-process.js";
import { startEmulator } from "./emulator-process.js";
import { CONFORMANCE_PAGE_SIZE, objectStoreConformance } from "./object-store-conformance.js";
import type { StoreUnderTest } from "./object-store-conformance.js";
import { objectStoreFromSpec } from "./object-store-from-spec.js";
import type { S3ObjectStoreOptions } from "./s3-object-store.js";
import { S3ObjectStore } from "./s3-object-store.js";

const require = createRequire(import.meta.url);
const BUCKET = "lifeboat-test";
const MiB = 1024 * 1024;
let emulator: Emulator | undefined;
let dataDir = "";

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "lifeboat-s3rver-"));
  emulator = await startEmulator("s3rver", process.execPath, (port) => [
    // s3rver makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has in its legacy provider.
    "--openssl-legacy-provider",
    require.resolve("s3rver/bin/s3rver.js"),
    "--directory",
    dataDir,
    "--address",
    "127.0.0.1",
    "--port",
    String(port),
    "--silent",
    "--no-vhost-buckets",
    "--configure-bucket",
    BUCKET,
  ]);
});
after(async () => {
  await emulator?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

function s3rverOptions(overrides: Partial<S3ObjectStoreOptions> = {}): S3ObjectStoreOptions {
  return {
    bucket: BUCKET,
    prefix: `t-${randomBytes(6).toString("hex")}`,
    region: "us-east-1",
    endpoint: `http://127.0.0.1:${emulator?.port ?? 0}`,
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    pageSize: CONFORMANCE_PAGE_SIZE,
    ...overrides,
  };
}

function withCleanup(store: S3ObjectStore): Promise<StoreUnderTest> {
  return Promise.resolve({
    store,
    cleanup: async () => {
      for (const o of await store.list("")) await store.delete(o.key);
    },
  });
}

objectStoreConformance("s3 (s3rver)", () => withCleanup(new S3ObjectStore(s3rverOptions())), {
  gaps: {
    "atomic-overwrite":
      "s3rver writes an object's file in place, so a GET during a PUT of the same key can read a mix; S3 itself swaps whole objects",
    "concurrent-same-key":
      "s3rver writes concurrent PUTs of one key into the same file and its metadata separately, so the result can mix them; S3 keeps the last PUT whole",
    "list-order":
      "s3rver lists in directory-walk order ('t1/' before 't1-b/') but resumes a page after the last key in byte order, so it drops keys; S3 lists in byte order",
  },
});

describe("S3ObjectStore against s3rver", () => {
  // s3rver does not check SigV4 signatures (a wrong secret passes), but it refuses an
  // unknown access key id, so that is how this test gets refused.
  test("refused credentials: a UserError that names the bucket and holds no secret", async () => {
    const secret = "wrong-secret-Zq8xY7w6V5u4";
    const store = new S3ObjectStore(
      s3rverOptions({
        credentials: { accessKeyId: "NOSUCHKEY", secretAccessKey: secret, sessionToken: "tok-Zq8xY7" },
      }),
    );
    try {
      for (const attempt of [
        () => store.put("a", Buffer.from("x")),
        () => store.head("a"),
        () => store.list(""),
      ]) {
        const err = await attempt().then(
          () => assert.fail("expected the call to be refused"),
          (e: unknown) => e,
        );
        assert.ok(err instanceof UserError, inspect(err));
        assert.match(err.message, /s3:\/\/lifeboat-test\/t-[0-9a-f]+\//);
        assert.match(err.message, /InvalidAccessKeyId|Forbidden \(HTTP 403\)/);
        const everything = inspect(err, { depth: Infinity, showHidden: true });
        assert.ok(!everything.includes(secret), "the secret key appears in the error");
        assert.ok(!everything.includes("tok-Zq8xY7"), "the session token appears in the error");
      }
    } finally {
      await store.close();
    }
  });

  test("a missing bucket is a UserError that says so", async () => {
    const store = new S3ObjectStore(s3rverOptions({ bucket: "no-such-bucket" }));
    try {
      await assert.rejects(store.put("a", Buffer.from("x")), (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.match(err.message, /Bucket no-such-bucket does not exist/);
        return true;
      });
    } finally {
      await store.close();
    }
  });

  test("objectStoreFromSpec() builds a working store from s3:// and the AWS variables in the environment", async () => {
    const prefix = `spec-${randomBytes(4).toString("hex")}`;
    const endpoint = `http://127.0.0.1:${emulator?.port ?? 0}`;
    const store = await objectStoreFromSpec(
      `s3://${BUCKET}/${prefix}?region=us-east-1&endpoint=${endpoint}&pathStyle=1`,
      {
        AWS_ACCESS_KEY_ID: "S3RVER",
        AWS_SECRET_ACCESS_KEY: "S3RVER",
      },
    );
    const whole = new S3ObjectStore(s3rverOptions({ prefix: "" }));
    try {
      assert.equal(store.description, `s3://${BUCKET}/${prefix}/ at ${endpoint}`);
      await store.put("x/y", Buffer.from("hello"));
      assert.deepEqual(await store.list(""), [{ key: "x/y", size: 5 }]);
      assert.deepEqual(await whole.head(`${prefix}/x/y`), { key: `${prefix}/x/y`, size: 5 });
      await store.delete("x/y");
    } finally {
      await store.close();
      await whole.close();
    }
  });

  test("a file above the threshold goes up as a multipart upload", async () => {
    const store = new S3ObjectStore(s3rverOptions({ multipartThreshold: 5 * MiB, partSize: 5 * MiB }));
    const commands: string[] = [];
    store.client.middlewareStack.add(
      (next, context) => async (args) => {
        commands.push(context.commandName ?? "?");
        return next(args);
      },
      { step: "initialize" },
    );
    const dir = await mkdtemp(join(tmpdir(), "lifeboat-s3-mp-"));
    try {
      const data = randomBytes(11 * MiB + 7);
      const file = join(dir, "f");
      await writeFile(file, data);
      await store.put("mp", { file });
      commands.sort((a, b) => order(a) - order(b));
      assert.deepEqual(commands, [
        "CreateMultipartUploadCommand",
        "UploadPartCommand",
        "UploadPartCommand",
        "UploadPartCommand",
        "CompleteMultipartUploadCommand",
      ]);
      assert.ok((await store.read("mp", 0, data.length)).equals(data));
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("an aborted multipart upload is abandoned with AbortMultipartUpload, never completed", async () => {
    const warnings: string[] = [];
    const store = new S3ObjectStore(
      s3rverOptions({ multipartThreshold: 5 * MiB, partSize: 5 * MiB, log: (m) => warnings.push(m) }),
    );
    const controller = new AbortController();
    const reason = new Error("operator stopped the roll");
    const commands: string[] = [];
    store.client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = context.commandName ?? "?";
        commands.push(name);
        if (name === "UploadPartCommand") controller.abort(reason);
        return next(args);
      },
      { step: "initialize" },
    );
    const dir = await mkdtemp(join(tmpdir(), "lifeboat-s3-mp-"));
    try {
      const file = join(dir, "f");
      await writeFile(file, randomBytes(16 * MiB));
      await assert.rejects(store.put("mp-aborted", { file }, controller.signal), (err) => err === reason);
      assert.equal(await store.head("mp-aborted"), undefined);
      assert.ok(commands.includes("AbortMultipartUploadCommand"), commands.join(", "));
      assert.ok(!commands.includes("CompleteMultipartUploadCommand"));
      // s3rver has no AbortMultipartUpload (it answers MethodNotAllowed): the store says
      // so in a warning. S3 itself drops the parts.
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? "", /Could not abort multipart upload .* \(MethodNotAllowed\)/);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("description names bucket, prefix and endpoint host, never credentials", async () => {
    const store = new S3ObjectStore(
      s3rverOptions({ prefix: "site/a", endpoint: "http://user:pw@127.0.0.1:1" }),
    );
    assert.equal(store.description, "s3://lifeboat-test/site/a/ at http://127.0.0.1:1");
    await store.close();
  });
});

const realEndpoint = process.env["LIFEBOAT_TEST_S3_ENDPOINT"];
const realBucket = process.env["LIFEBOAT_TEST_S3_BUCKET"];
if (realEndpoint !== undefined && realBucket !== undefined) {
  objectStoreConformance("s3 (real endpoint)", () =>
    withCleanup(
      new S3ObjectStore({
        bucket: realBucket,
        prefix: `lifeboat-test/t-${randomBytes(6).toString("hex")}`,
        region: process.env["AWS_REGION"] ?? process.env["AWS_DEFAULT_REGION"] ?? "us-east-1",
        ...(realEndpoint === "aws" ? {} : { endpoint: realEndpoint }),
        forcePathStyle: process.env["LIFEBOAT_TEST_S3_PATH_STYLE"] === "1",
        pageSize: CONFORMANCE_PAGE_SIZE,
      }),
    ),
  );
} else {
  test(
    "s3 (real endpoint) conformance",
    {
      skip: "set LIFEBOAT_TEST_S3_ENDPOINT (a URL, or 'aws') and LIFEBOAT_TEST_S3_BUCKET, with AWS credentials, to run it",
    },
    () => {},
  );
}

/** Sorts commands by phase; parts may finish in any order. */
function order(command: string): number {
  return ["CreateMultipartUploadCommand", "UploadPartCommand", "CompleteMultipartUploadCommand"].indexOf(
    command,
  );
}
