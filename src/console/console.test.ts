import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { connect } from "node:tls";
import { startTestConsole, type TestConsole } from "./testing/test-console.js";

async function withConsole(fn: (tc: TestConsole) => Promise<void>): Promise<void> {
  const tc = await startTestConsole();
  try {
    await fn(tc);
  } finally {
    await tc.close();
  }
}

function handshake(tc: TestConsole, options: { maxVersion?: "TLSv1.2"; ciphers?: string }): Promise<string> {
  const url = new URL(tc.console.url);
  return new Promise((resolve) => {
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      ca: tc.console.ca.certPem,
      servername: "localhost",
      ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
      ...(options.ciphers === undefined ? {} : { ciphers: options.ciphers }),
    });
    socket.once("secureConnect", () => {
      const cipher = socket.getCipher().standardName;
      socket.end();
      resolve(`ok ${cipher}`);
    });
    socket.once("error", (err: Error) => resolve(`refused: ${err.message}`));
  });
}

test("startConsole() speaks TLS 1.3 with TLS_AES_256_GCM_SHA384 only", () =>
  withConsole(async (tc) => {
    assert.equal(await handshake(tc, {}), "ok TLS_AES_256_GCM_SHA384");
    assert.match(await handshake(tc, { maxVersion: "TLSv1.2" }), /^refused/);
    assert.match(await handshake(tc, { ciphers: "TLS_AES_128_GCM_SHA256" }), /^refused/);
    assert.match(await handshake(tc, { ciphers: "TLS_CHACHA20_POLY1305_SHA256" }), /^refused/);
  }));

test("startConsole() returns the admin key on the first start only", async () => {
  const tc = await startTestConsole();
  try {
    assert.match(tc.console.adminApiKey ?? "", /^lbk1_/);
    const { startConsole } = await import("./console.js");
    await tc.console.close();
    const again = await startConsole({
      dataDir: tc.dataDir,
      port: 0,
      replicator: tc.replicator,
      jobHandlers: {},
    });
    assert.equal(again.adminApiKey, null);
    await again.close();
  } finally {
    await tc.close();
  }
});

test("admin routes need a valid API key (401 with a clear message)", () =>
  withConsole(async (tc) => {
    const missing = await tc.request("GET", "/api/projects", undefined, { apiKey: null });
    assert.equal(missing.status, 401);
    assert.match(missing.body.error?.message ?? "", /Missing API key/);
    const wrong = await tc.request("GET", "/api/projects", undefined, { apiKey: "lbk1_wrong" });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.error?.message ?? "", /Invalid API key/);
    assert.equal((await tc.request("GET", "/api/projects")).status, 200);
    assert.equal((await tc.request("GET", "/api/health", undefined, { apiKey: null })).body["status"], "ok");
    const ca = await tc.request("GET", "/api/ca", undefined, { apiKey: null });
    assert.equal(ca.text, tc.console.ca.certPem);
  }));

test("unknown routes are 404 and wrong methods 405", () =>
  withConsole(async (tc) => {
    const missing = await tc.request("GET", "/api/nothing");
    assert.equal(missing.status, 404);
    assert.match(missing.body.error?.message ?? "", /No such route: GET \/api\/nothing/);
    const wrong = await tc.request("DELETE", "/api/projects");
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers["allow"], "POST, GET");
    assert.equal((await tc.request("GET", "/api/projects/%E0%A4%A")).status, 404);
  }));

test("bad bodies are 400 naming the field, never 5xx", () =>
  withConsole(async (tc) => {
    const cases: { raw: string | Buffer; status: number; message: RegExp }[] = [
      { raw: "{not json", status: 400, message: /not valid JSON/ },
      {
        raw: JSON.stringify({ name: "a", type: "backup" }),
        status: 400,
        message: /\/type must be one of dr, migration/,
      },
      { raw: JSON.stringify({ name: 42, type: "dr" }), status: 400, message: /\/name must be a string/ },
      { raw: JSON.stringify({ type: "dr" }), status: 400, message: /\/name is required/ },
      { raw: "", status: 400, message: /\/name is required/ },
      { raw: "[]", status: 400, message: /\/ must be an object/ },
      { raw: "null", status: 400, message: /must be an object/ },
      {
        raw: JSON.stringify({ name: "a", type: "dr", admin: true }),
        status: 400,
        message: /\/admin is not a known field/,
      },
      {
        raw: JSON.stringify({ name: "a", type: "dr", settings: { rpoTargetSeconds: "x" } }),
        status: 400,
        message: /\/settings\/rpoTargetSeconds must be an integer/,
      },
      {
        raw: JSON.stringify({
          name: "a",
          type: "dr",
          settings: { retention: { keepAllSeconds: 60, tiers: [7] } },
        }),
        status: 400,
        message: /\/settings\/retention\/tiers\/0 must be an object/,
      },
      { raw: "[".repeat(100_000) + "]".repeat(100_000), status: 400, message: /Invalid request body/ },
      { raw: JSON.stringify({ name: "a".repeat(2 * 1024 * 1024) }), status: 413, message: /too large/ },
      { raw: Buffer.from([0xff, 0xfe, 0x00, 0x7b]), status: 400, message: /not valid JSON/ },
      { raw: '{"__proto__": {"type": "dr"}, "name": "x"}', status: 400, message: /\/(type|__proto__) / },
    ];
    for (const c of cases) {
      const res = await tc.request("POST", "/api/projects", undefined, { raw: c.raw });
      assert.equal(res.status, c.status, `${String(c.raw).slice(0, 40)}: ${res.text}`);
      assert.match(res.body.error?.message ?? "", c.message);
      assert.match(res.body.error?.message ?? "", c.status === 400 ? /^Invalid request body: / : /./);
    }
    const blueprint = await tc.request("PUT", "/api/machines/nope/blueprint", { ipPolicy: "dhcp" });
    assert.equal(blueprint.status, 400);
    assert.match(
      blueprint.body.error?.message ?? "",
      /\/ipPolicy must be one of copy-source, new-from-subnet, fixed/,
    );
    assert.equal((await tc.request("GET", "/api/projects")).body.length, 0);
  }));

test("GET /api/openapi.json lists every route with its body schema", () =>
  withConsole(async (tc) => {
    const res = await tc.request("GET", "/api/openapi.json", undefined, { apiKey: null });
    assert.equal(res.status, 200);
    assert.equal(res.body["openapi"], "3.1.0");
    const paths = res.body["paths"] as Record<string, Record<string, { requestBody?: unknown }>>;
    for (const route of tc.console.routes) {
      const path = route.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
      const operation = paths[path]?.[route.method.toLowerCase()];
      assert.ok(operation !== undefined, `${route.method} ${route.path} missing`);
      assert.equal(
        operation.requestBody !== undefined,
        route.body !== undefined,
        `${route.method} ${route.path}`,
      );
    }
    for (const expected of [
      "POST /api/projects",
      "POST /api/launches",
      "POST /api/agent/register",
      "POST /api/failback/status",
      "DELETE /api/tokens/{id}",
      "PUT /api/machines/{id}/blueprint",
      "GET /api/audit",
    ]) {
      const [method = "", path = ""] = expected.split(" ");
      assert.ok(paths[path]?.[method.toLowerCase()] !== undefined, expected);
    }
  }));

test("a malformed request target is a 400, not a 500", () =>
  withConsole(async (tc) => {
    const url = new URL(tc.console.url);
    const statusLine = await new Promise<string>((resolve, reject) => {
      const socket = connect(
        { host: url.hostname, port: Number(url.port), ca: tc.console.ca.certPem, servername: "localhost" },
        () => socket.write("GET http://[::1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      );
      let data = "";
      socket.on("data", (c: Buffer) => (data += c.toString()));
      socket.on("end", () => resolve(data.split("\r\n")[0] ?? ""));
      socket.on("error", reject);
    });
    assert.equal(statusLine, "HTTP/1.1 400 Bad Request");
  }));

test("startConsole() rejects a port in use and leaves nothing open", () =>
  withConsole(async (tc) => {
    const { startConsole } = await import("./console.js");
    const dataDir = `${tc.dataDir}-second`;
    try {
      await assert.rejects(
        startConsole({
          dataDir,
          port: Number(new URL(tc.console.url).port),
          replicator: tc.replicator,
          jobHandlers: {},
        }),
        /EADDRINUSE/,
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }));
