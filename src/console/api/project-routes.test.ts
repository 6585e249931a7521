import { test } from "node:test";
import assert from "node:assert/strict";
import { startTestConsole, newAgentKey, type TestConsole } from "../testing/test-console.js";
import { parseInstallToken } from "../../common/install-token.js";
import { DEFAULT_RETENTION_POLICY } from "../../store/retention/retention-policy.js";

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

test("projects: the retention policy defaults, is replaced whole, and bad ones change nothing", () =>
  withConsole(async (tc) => {
    const created = await tc.request("POST", "/api/projects", { name: "prod", type: "dr" });
    assert.deepEqual(
      (created.body["settings"] as { retention: unknown }).retention,
      DEFAULT_RETENTION_POLICY,
    );
    const policy = { keepAllSeconds: 7200, tiers: [{ everySeconds: 3600, forSeconds: 14 * 86_400 }] };
    const patched = await tc.request("PATCH", "/api/projects/prod", { settings: { retention: policy } });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual((patched.body["settings"] as { retention: unknown }).retention, policy);

    const bad: { retention: unknown; message: RegExp }[] = [
      {
        retention: {
          keepAllSeconds: 3600,
          tiers: [
            { everySeconds: 600, forSeconds: 86_400 },
            { everySeconds: 900, forSeconds: 7 * 86_400 },
          ],
        },
        message:
          /^Invalid retention policy: \/settings\/retention\/tiers\/1\/everySeconds must be a multiple of 600/,
      },
      {
        retention: { keepAllSeconds: 3600, tiers: [{ everySeconds: 600, forSeconds: 1800 }] },
        message: /\/settings\/retention\/tiers\/0\/forSeconds must be at least 4200/,
      },
      {
        retention: { keepAllSeconds: 30, tiers: [] },
        message: /\/settings\/retention\/keepAllSeconds must be at least 60/,
      },
      {
        retention: { keepAllSeconds: 366 * 86_400, tiers: [] },
        message: /^Invalid request body: \/settings\/retention\/keepAllSeconds must be at most 31536000/,
      },
      {
        retention: { keepAllSeconds: -1, tiers: [] },
        message: /\/settings\/retention\/keepAllSeconds must be at least 0/,
      },
      {
        retention: { keepAllSeconds: 3600.5, tiers: [] },
        message: /\/settings\/retention\/keepAllSeconds must be an integer/,
      },
      { retention: "all:1h,10m:24h", message: /\/settings\/retention must be an object/ },
      { retention: { keepAllSeconds: 3600 }, message: /\/settings\/retention\/tiers is required/ },
      {
        retention: { keepAllSeconds: 3600, tiers: [{ everySeconds: 600, forSeconds: 86_400, keep: true }] },
        message: /\/settings\/retention\/tiers\/0\/keep is not a known field/,
      },
      {
        retention: { keepAllSeconds: 3600, tiers: [], label: "x" },
        message: /\/settings\/retention\/label is not a known field/,
      },
    ];
    for (const c of bad) {
      const res = await tc.request("PATCH", "/api/projects/prod", {
        settings: { retention: c.retention, rpoTargetSeconds: 5 },
      });
      assert.equal(res.status, 400, `${JSON.stringify(c.retention)}: ${res.text}`);
      assert.match(res.body.error?.message ?? "", c.message);
      const create = await tc.request("POST", "/api/projects", {
        name: "other",
        type: "dr",
        settings: { retention: c.retention },
      });
      assert.equal(create.status, 400, create.text);
    }
    const after = await tc.request("GET", "/api/projects/prod");
    const settings = after.body["settings"] as { retention: unknown; rpoTargetSeconds: number };
    assert.deepEqual(settings.retention, policy);
    assert.equal(settings.rpoTargetSeconds, 60);
    assert.equal((await tc.request("GET", "/api/projects")).body.length, 1);
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
