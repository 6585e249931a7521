/**
 * The conformance suite against Azurite (Microsoft's Azure Storage emulator), started here
 * as a child process with a temporary workspace on a free loopback port.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { after, before, describe, test } from "node:test";
import { BlobServiceClient } from "@azure/storage-blob";
import { UserError } from "../../common/errors.js";
import { AzureBlobObjectStore } from "./azure-blob-object-store.js";
import type { Emulator } from "./emulator-process.js";
import { startEmulator } from "./emulator-process.js";
import { CONFORMANCE_PAGE_SIZE, objectStoreConformance } from "./object-store-conformance.js";
import { objectStoreFromSpec } from "./object-store-from-spec.js";

const require = createRequire(import.meta.url);
const MiB = 1024 * 1024;
// Azurite's fixed development account: public, documented, good for nothing but the emulator.
const ACCOUNT = "devstoreaccount1";
const KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

let emulator: Emulator | undefined;
let workspace = "";

function connectionString(key = KEY): string {
  const endpoint = `http://127.0.0.1:${emulator?.port ?? 0}/${ACCOUNT}`;
  return `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${key};BlobEndpoint=${endpoint};`;
}

async function newContainer(): Promise<string> {
  const name = `t-${randomBytes(6).toString("hex")}`;
  await BlobServiceClient.fromConnectionString(connectionString()).getContainerClient(name).create();
  return name;
}

async function dropContainer(name: string): Promise<void> {
  await BlobServiceClient.fromConnectionString(connectionString()).getContainerClient(name).deleteIfExists();
}

before(async () => {
  workspace = await mkdtemp(join(tmpdir(), "lifeboat-azurite-"));
  emulator = await startEmulator("Azurite", process.execPath, (port) => [
    require.resolve("azurite/dist/src/blob/main.js"),
    "--location",
    workspace,
    "--blobHost",
    "127.0.0.1",
    "--blobPort",
    String(port),
    "--silent",
    "--skipApiVersionCheck",
    "--loose",
    "--disableTelemetry",
  ]);
});
after(async () => {
  await emulator?.stop();
  await rm(workspace, { recursive: true, force: true });
});

objectStoreConformance("azure (Azurite)", async () => {
  const container = await newContainer();
  const store = new AzureBlobObjectStore({
    connectionString: connectionString(),
    container,
    prefix: "store/a",
    pageSize: CONFORMANCE_PAGE_SIZE,
  });
  return { store, cleanup: () => dropContainer(container) };
});

describe("AzureBlobObjectStore against Azurite", () => {
  test("a wrong account key: a UserError that names the container and holds no key", async () => {
    const container = await newContainer();
    const wrongKey = Buffer.from("not-the-key-Zq8xY7w6V5u4-not-the-key").toString("base64");
    const store = new AzureBlobObjectStore({ connectionString: connectionString(wrongKey), container });
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
        assert.match(err.message, new RegExp(`azure://${ACCOUNT}/${container}/`));
        assert.match(err.message, /AuthorizationFailure|AuthenticationFailed|Forbidden|HTTP 403/);
        const everything = inspect(err, { depth: Infinity, showHidden: true });
        assert.ok(!everything.includes(wrongKey), "the key appears in the error");
      }
    } finally {
      await store.close();
      await dropContainer(container);
    }
  });

  test("a put bigger than a block is staged as blocks and committed as one blob", async () => {
    const container = await newContainer();
    const store = new AzureBlobObjectStore({
      connectionString: connectionString(),
      container,
      blockSize: MiB,
    });
    try {
      const data = randomBytes(3 * MiB + 512);
      await store.put("staged", data);
      const raw = BlobServiceClient.fromConnectionString(connectionString())
        .getContainerClient(container)
        .getBlockBlobClient("staged");
      const blocks = await raw.getBlockList("all");
      assert.equal(blocks.committedBlocks?.length, 4);
      assert.equal(blocks.uncommittedBlocks?.length ?? 0, 0);
      assert.ok((await store.read("staged", 0, data.length)).equals(data));
    } finally {
      await store.close();
      await dropContainer(container);
    }
  });

  // A commit discards the blob's other uncommitted blocks, so concurrent staged puts of one
  // key knock each other's blocks out; each must stage again rather than fail.
  test("concurrent staged puts of one key all resolve and leave one of them whole", async () => {
    const container = await newContainer();
    const store = new AzureBlobObjectStore({
      connectionString: connectionString(),
      container,
      blockSize: MiB,
    });
    try {
      const data = Array.from({ length: 3 }, (_, i) => randomBytes(2 * MiB + 100 + i));
      await Promise.all(data.map((d) => store.put("same", d)));
      const size = (await store.head("same"))?.size;
      const winner = data.find((d) => d.length === size);
      assert.ok(winner !== undefined);
      assert.ok((await store.read("same", 0, winner.length)).equals(winner));
    } finally {
      await store.close();
      await dropContainer(container);
    }
  });

  test("a missing container is a UserError that says so", async () => {
    const store = new AzureBlobObjectStore({
      connectionString: connectionString(),
      container: "no-such-container",
    });
    await assert.rejects(store.put("a", Buffer.from("x")), /Container no-such-container does not exist/);
    await assert.rejects(store.list(""), UserError);
  });

  test("a bad connection string is a UserError that does not quote it", () => {
    const secret = "AccountKey=c2VjcmV0LXNlY3JldA==";
    assert.throws(
      () => new AzureBlobObjectStore({ connectionString: `nonsense;${secret}`, container: "c1c" }),
      (err: unknown) => err instanceof UserError && !err.message.includes("c2VjcmV0"),
    );
  });

  test("objectStoreFromSpec() builds a working store from azure:// and the connection string in the environment", async () => {
    const container = await newContainer();
    const store = await objectStoreFromSpec(`azure://${container}/site-a`, {
      AZURE_STORAGE_CONNECTION_STRING: connectionString(),
    });
    try {
      assert.equal(store.description, `azure://${ACCOUNT}/${container}/site-a/`);
      await store.put("x/y", Buffer.from("hello"));
      assert.deepEqual(await store.list(""), [{ key: "x/y", size: 5 }]);
      const raw = BlobServiceClient.fromConnectionString(connectionString()).getContainerClient(container);
      const names: string[] = [];
      for await (const b of raw.listBlobsFlat()) names.push(b.name);
      assert.deepEqual(names, ["site-a/x/y"]);
    } finally {
      await store.close();
      await dropContainer(container);
    }
  });

  test("objectStoreFromSpec() takes AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY with ?endpoint=", async () => {
    const container = await newContainer();
    const endpoint = `http://127.0.0.1:${emulator?.port ?? 0}/${ACCOUNT}`;
    const store = await objectStoreFromSpec(`azure://${container}?endpoint=${encodeURIComponent(endpoint)}`, {
      AZURE_STORAGE_ACCOUNT: ACCOUNT,
      AZURE_STORAGE_KEY: KEY,
    });
    try {
      await store.put("k", Buffer.from("v"));
      assert.ok((await store.read("k", 0, 1)).equals(Buffer.from("v")));
    } finally {
      await store.close();
      await dropContainer(container);
    }
  });
});
