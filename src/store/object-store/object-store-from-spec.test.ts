/** parseObjectStoreSpec() and objectStoreFromSpec()'s checks that need no service. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { UserError } from "../../common/errors.js";
import { objectStoreFromSpec, parseObjectStoreSpec } from "./object-store-from-spec.js";

test("parseObjectStoreSpec() reads local:, bare absolute paths, s3:// and azure://", () => {
  assert.deepEqual(parseObjectStoreSpec("local:/var/lib/lifeboat/layers"), {
    kind: "local",
    root: "/var/lib/lifeboat/layers",
  });
  assert.deepEqual(parseObjectStoreSpec("/srv/store"), { kind: "local", root: "/srv/store" });
  assert.deepEqual(parseObjectStoreSpec("s3://my-bucket/site-a/store?region=eu-west-1"), {
    kind: "s3",
    bucket: "my-bucket",
    prefix: "site-a/store",
    region: "eu-west-1",
    endpoint: undefined,
    forcePathStyle: false,
  });
  assert.deepEqual(parseObjectStoreSpec("s3://b.example?endpoint=http://127.0.0.1:9000&pathStyle=1"), {
    kind: "s3",
    bucket: "b.example",
    prefix: "",
    region: undefined,
    endpoint: "http://127.0.0.1:9000",
    forcePathStyle: true,
  });
  assert.deepEqual(parseObjectStoreSpec("azure://layers/site-a/"), {
    kind: "azure",
    container: "layers",
    prefix: "site-a",
    endpoint: undefined,
  });
});

test("parseObjectStoreSpec() rejects bad specs with a UserError naming the problem", () => {
  const cases: Array<[string, RegExp]> = [
    ["relative/path", /Unknown object store spec/],
    ["local:relative", /absolute path/],
    ["local:", /absolute path/],
    ["ftp://host/x", /Unknown object store spec/],
    ["s3://", /not a valid URL|Invalid S3 bucket/],
    ["s3://Bad_Bucket/x", /Invalid S3 bucket name "Bad_Bucket"/],
    ["s3://b1b/../x", /Invalid prefix "\.\.\/x"/],
    ["azure://layers/a/./b", /Invalid prefix "a\/\.\/b"/],
    ["s3://b1b/a//b", /Invalid prefix "a\/\/b"/],
    ["s3://b1b/x?regoin=eu-west-1", /Unknown parameter "regoin"/],
    ["s3://b1b/x?region=a&region=b", /appears twice/],
    ["s3://b1b/x?pathStyle=yes", /pathStyle=yes/],
    ["s3://b1b/x?endpoint=ftp://h", /http:\/\/ or https:\/\//],
    ["s3://b1b/x?endpoint=nonsense", /is not a URL/],
    ["s3://b1b:9000/x", /not host:port/],
    ["azure://a--b/x", /Invalid Azure container name/],
    ["azure://Layers/x", /Invalid Azure container name/],
    ["azure://layers/x?region=eu", /Unknown parameter "region"/],
  ];
  for (const [spec, message] of cases) {
    assert.throws(
      () => parseObjectStoreSpec(spec),
      (err: unknown) => {
        assert.ok(err instanceof UserError, `${spec}: ${String(err)}`);
        assert.match(err.message, message, spec);
        return true;
      },
    );
  }
});

test("parseObjectStoreSpec() refuses credentials in a spec without repeating them", () => {
  for (const spec of [
    "s3://AKIAEXAMPLE:SuperSecret123@bucket/x",
    "azure://acct:SuperSecret123@layers/x",
    "s3://b1b/x?endpoint=https://user:SuperSecret123@minio:9000",
  ]) {
    assert.throws(
      () => parseObjectStoreSpec(spec),
      (err: unknown) => {
        assert.ok(err instanceof UserError, spec);
        assert.ok(!err.message.includes("SuperSecret123"), err.message);
        assert.match(err.message, /credentials/);
        return true;
      },
    );
  }
});

test("objectStoreFromSpec() says which credentials or region are missing", async () => {
  await assert.rejects(objectStoreFromSpec("azure://layers/x", {}), /AZURE_STORAGE_CONNECTION_STRING/);
  await assert.rejects(
    objectStoreFromSpec("azure://layers/x", { AZURE_STORAGE_ACCOUNT: "a" }),
    /AZURE_STORAGE_KEY/,
  );
  await assert.rejects(
    objectStoreFromSpec("azure://layers/x", {
      AZURE_STORAGE_ACCOUNT: "Not_An_Account",
      AZURE_STORAGE_KEY: "a2V5",
    }),
    /not a storage account name/,
  );
  await assert.rejects(
    objectStoreFromSpec("azure://layers/x", { AZURE_STORAGE_ACCOUNT: "acct", AZURE_STORAGE_KEY: "%%%" }),
    (err: unknown) => err instanceof UserError && !err.message.includes("%%%"),
  );
  await assert.rejects(objectStoreFromSpec("s3://b1b/x", {}), /No AWS region.*AWS_REGION/);
  await assert.rejects(
    objectStoreFromSpec("s3://b1b/x?region=eu-west-1", { AWS_ACCESS_KEY_ID: "AKIAEXAMPLE" }),
    /both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
  );
  const store = await objectStoreFromSpec("s3://b1b/x", { AWS_REGION: "eu-west-1" });
  assert.equal(store.description, "s3://b1b/x/");
  await store.close();
});
