import { test } from "node:test";
import assert from "node:assert/strict";
import { startTestConsole, newAgentKey, type TestConsole } from "../testing/test-console.js";
import { parseInstallToken } from "../../common/install-token.js";

async function withConsole(fn: (tc: TestConsole) => Promise<void>): Promise<void> {
  const tc = await startTestConsole();
  try {
    await fn(tc);
  } finally {
    await tc.close();
  }
}

function registerBody(token: unknown, name = "web-1"): Record<string, unknown> {
  return {
    token,
    name,
    hostname: "web-1.local",
    cpus: 2,
    memoryMiB: 1024,
    disks: [{ path: "/dev/sda", sizeBytes: 1 << 20 }],
    publicKeyPem: newAgentKey().publicKeyPem,
  };
}

test("projects: create, duplicate 409, get by name, patch settings", () =>
  withConsole(async (tc) => {
    const created = await tc.request("POST", "/api/projects", {
      name: "prod",
      type: "dr",
      settings: { rpoTargetSeconds: 30 },
    });
    assert.equal(created.status, 201);
    assert.equal((created.body["settings"] as { rpoTargetSeconds: number }).rpoTargetSeconds, 30);
    assert.equal(created.body["direction"], "FAILOVER");
    const dup = await tc.request("POST", "/api/projects", { name: "prod", type: "migration" });
    assert.equal(dup.status, 409);
    assert.match(dup.body.error?.message ?? "", /Project prod already exists/);
    const byName = await tc.request("GET", "/api/projects/prod");
    assert.equal(byName.body["id"], created.body["id"]);
    const patched = await tc.request("PATCH", "/api/projects/prod", { settings: { testedRecentlyDays: 7 } });
    assert.equal(patched.status, 200);
    const settings = patched.body["settings"] as { testedRecentlyDays: number; rpoTargetSeconds: number };
    assert.deepEqual([settings.testedRecentlyDays, settings.rpoTargetSeconds], [7, 30]);
    assert.equal((await tc.request("GET", "/api/projects/nope")).status, 404);
  }));

test("install tokens: format carries URL and CA fingerprint; revoked and expired tokens register nothing", () =>
  withConsole(async (tc) => {
    await tc.request("POST", "/api/projects", { name: "prod", type: "dr" });
    const created = await tc.request("POST", "/api/projects/prod/tokens", { ttlSeconds: 3600 });
    assert.equal(created.status, 201);
    const text = String(created.body["token"]);
    const parsed = parseInstallToken(text);
    assert.equal(parsed.consoleUrl, tc.console.url);
    assert.equal(parsed.caFingerprint, tc.console.ca.fingerprint());
    const listed = await tc.request("GET", "/api/projects/prod/tokens");
    assert.equal(listed.text.includes(parsed.secret), false, "secrets are never listed");

    // Revoked.
    const revoked = await tc.request("DELETE", `/api/tokens/${String(created.body["id"])}`);
    assert.equal(revoked.status, 200);
    const refused = await tc.request("POST", "/api/agent/register", registerBody(text), { apiKey: null });
    assert.equal(refused.status, 401);
    assert.match(refused.body.error?.message ?? "", /was revoked at .*lifeboat token create/);

    // Expired.
    const short = await tc.request("POST", "/api/projects/prod/tokens", { ttlSeconds: 60 });
    tc.clock.now += 61_000;
    const expired = await tc.request("POST", "/api/agent/register", registerBody(short.body["token"]), {
      apiKey: null,
    });
    assert.equal(expired.status, 401);
    assert.match(
      expired.body.error?.message ?? "",
      /^Install token expired at .*: create a new one with `lifeboat token create`/,
    );

    // Unknown and malformed.
    const forged = `lbt1.${Buffer.from(JSON.stringify({ c: parsed.consoleUrl, f: parsed.caFingerprint, s: "x" })).toString("base64url")}`;
    assert.equal(
      (await tc.request("POST", "/api/agent/register", registerBody(forged), { apiKey: null })).status,
      401,
    );
    assert.equal(
      (await tc.request("POST", "/api/agent/register", registerBody("nonsense"), { apiKey: null })).status,
      401,
    );

    assert.equal((await tc.request("GET", "/api/machines")).body.length, 0);
    assert.equal(tc.replicator.assigned.size, 0);
    assert.equal((await tc.request("DELETE", "/api/tokens/t-missing")).status, 404);
  }));

test("the audit log records operator actions and registrations without secrets", () =>
  withConsole(async (tc) => {
    await tc.request("POST", "/api/projects", { name: "prod", type: "dr" });
    const token = await tc.request("POST", "/api/projects/prod/tokens", {});
    const reg = await tc.request("POST", "/api/agent/register", registerBody(token.body["token"]), {
      apiKey: null,
    });
    assert.equal(reg.status, 201);
    await tc.request("PUT", `/api/machines/${String(reg.body["machineId"])}/blueprint`, { cpus: 4 });
    await tc.request("DELETE", `/api/tokens/${String(token.body["id"])}`);
    const audit = await tc.request("GET", "/api/audit?project=prod");
    const entries = audit.body as unknown as { actor: string; action: string }[];
    assert.deepEqual(entries.map((e) => `${e.actor} ${e.action}`).reverse(), [
      "admin project.create",
      "admin token.create",
      `agent:${String(reg.body["machineId"])} machine.register`,
      "admin blueprint.update",
      "admin token.revoke",
    ]);
    const secret = parseInstallToken(String(token.body["token"])).secret;
    assert.equal(audit.text.includes(secret), false);
    assert.equal(audit.text.includes(tc.console.adminApiKey ?? "none"), false);
    assert.equal((await tc.request("GET", "/api/audit?limit=0")).status, 400);
  }));
