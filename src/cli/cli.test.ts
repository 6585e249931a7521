import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeClientConfig } from "./client/client-config.js";
import { registerAgent, reportStatus, startTestConsole } from "../console/testing/test-console.js";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function lifeboat(config: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, LIFEBOAT_CONFIG: config, LIFEBOAT_POLL_MS: "50" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

test("the compiled CLI drives a console end to end", async () => {
  const formats: unknown[] = [];
  const tc = await startTestConsole({
    LAUNCH: async (ctx) => {
      formats.push(ctx.job.params["format"]);
      await ctx.log("exporting");
      for (const id of ctx.job.params["machineIds"] as string[]) {
        await ctx.setMachine({
          machineId: id,
          status: "COMPLETED",
          rtoSeconds: 4.2,
          disks: ["/tmp/disk0.raw"],
        });
      }
    },
  });
  try {
    const config = join(tc.dataDir, "client.json");
    writeClientConfig(config, {
      consoleUrl: tc.console.url,
      caPem: tc.console.ca.certPem,
      apiKey: tc.console.adminApiKey ?? "",
    });
    assert.equal(statSync(config).mode & 0o777, 0o600);

    const created = await lifeboat(config, "project", "create", "prod", "--type", "dr", "--json");
    assert.equal(created.code, 0, created.stderr);
    assert.equal((JSON.parse(created.stdout) as { name: string }).name, "prod");

    const settings = await lifeboat(
      config,
      "project",
      "settings",
      "--project",
      "prod",
      "--set",
      "bandwidthLimitMbps=100",
      "--set",
      "rpoTargetSeconds=30",
      "--json",
    );
    assert.equal(settings.code, 0, settings.stderr);
    const saved = JSON.parse(settings.stdout) as { bandwidthLimitMbps: number; rpoTargetSeconds: number };
    assert.equal(saved.bandwidthLimitMbps, 100);
    assert.equal(saved.rpoTargetSeconds, 30);
    const badSetting = await lifeboat(config, "project", "settings", "--project", "prod", "--set", "speed=9");
    assert.equal(badSetting.code, 2);
    assert.match(badSetting.stderr, /Unknown project setting speed/);

    const retention = await lifeboat(
      config,
      "project",
      "settings",
      "--project",
      "prod",
      "--set",
      "retention=all:2h,10m:24h,1d:90d",
    );
    assert.equal(retention.code, 0, retention.stderr);
    assert.match(retention.stdout, /retention\s+all:2h,10m:1d,1d:90d\n/);
    assert.match(retention.stdout, /rpoTargetSeconds\s+30\n/);
    const badRetention = await lifeboat(
      config,
      "project",
      "settings",
      "--project",
      "prod",
      "--set",
      "retention=all:1h,10m:24h,15m:7d",
    );
    assert.equal(badRetention.code, 2);
    assert.match(
      badRetention.stderr,
      /Invalid retention policy: the interval of tier 2 "15m:7d" must be a multiple of 10m/,
    );
    const projects = await lifeboat(config, "project", "list");
    assert.match(projects.stdout, /RPO TARGET\s+RETENTION\s+CREATED\n/);
    assert.match(projects.stdout, /prod\s+p-\S+\s+dr\s+FAILOVER\s+30s\s+all:2h,10m:1d,1d:90d\s/);

    const token = await lifeboat(config, "token", "create", "--project", "prod", "--ttl", "2h");
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stdout, /^lbt1\.[A-Za-z0-9_-]+\n$/);

    const agent = await registerAgent(tc, "prod", "web-1");
    await reportStatus(tc, agent, { lagSeconds: 3 });
    tc.replicator.pitsByTimeline.set(agent.timelineId, [
      { seq: 7, time: Date.parse("2026-02-01T00:00:00Z") },
    ]);

    const list = await lifeboat(config, "machines", "--project", "prod");
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME\s+ID\s+REPLICATION\s+PROGRESS\s+LAG\s+LIFECYCLE\n/);
    assert.match(list.stdout, /web-1\s+m-[0-9a-f]{12}\s+CONTINUOUS\s+100%\s+3s\s+NOT_TESTED/);

    const pits = await lifeboat(config, "pits", "web-1", "--json");
    assert.deepEqual(JSON.parse(pits.stdout), [
      { seq: 7, time: "2026-02-01T00:00:00.000Z", name: null, keep: false },
    ]);
    const named = await lifeboat(config, "snapshot", "create", "web-1", "--name", "before upgrade");
    assert.equal(named.code, 0, named.stderr);
    assert.match(named.stdout, /7\s+2026-02-01T00:00:00.000Z\s+before upgrade\s+until deleted/);
    const table = await lifeboat(config, "pits", "web-1");
    assert.match(table.stdout, /SEQ\s+TIME\s+SNAPSHOT\n\s*7\s+\S+\s+before upgrade \(kept until deleted\)/);
    const badSeq = await lifeboat(config, "snapshot", "delete", "web-1", "--seq", "x");
    assert.equal(badSeq.code, 2);
    const unnamed = await lifeboat(config, "snapshot", "delete", "web-1", "--seq", "7", "--json");
    assert.equal(unnamed.code, 0, unnamed.stderr);
    assert.equal((JSON.parse(unnamed.stdout) as { keep: boolean }).keep, false);

    const bp = await lifeboat(
      config,
      "blueprint",
      "web-1",
      "--set",
      "cpus=4",
      "--set",
      "tags.env=prod",
      "--json",
    );
    assert.equal(bp.code, 0, bp.stderr);
    assert.deepEqual((JSON.parse(bp.stdout) as { cpus: number; tags: unknown }).cpus, 4);

    const launched = await lifeboat(
      config,
      "launch",
      "web-1",
      "--mode",
      "test",
      "--format",
      "vmdk",
      "--wait",
      "--json",
    );
    assert.equal(launched.code, 0, launched.stderr);
    const job = JSON.parse(launched.stdout) as { id: string; status: string };
    assert.equal(job.status, "COMPLETED");
    assert.deepEqual(formats, ["vmdk"]);

    const shown = await lifeboat(config, "job", job.id);
    assert.match(shown.stdout, /LAUNCH COMPLETED/);
    assert.match(shown.stdout, /COMPLETED\s+2026-02-01T00:00:00.000Z\s+4.2s\s+\/tmp\/disk0.raw/);
    assert.match(shown.stdout, /exporting/);

    const refused = await lifeboat(config, "launch", "web-1", "--mode", "cutover");
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /Console refused the request \(400\): Mode cutover is for migration projects/,
    );

    const usage = await lifeboat(config, "launch", "web-1", "--mode", "drill");
    assert.equal(usage.code, 2);
    const badFormat = await lifeboat(config, "launch", "web-1", "--mode", "test", "--format", "iso");
    assert.equal(badFormat.code, 2);
    assert.match(badFormat.stderr, /Invalid --format iso: use raw, qcow2, vhd, vhd-dynamic, vmdk/);

    const failed = await lifeboat(config, "cleanup", "--project", "prod", "--wait");
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /failed: No handler for job kind CLEANUP/);

    const jobs = await lifeboat(config, "jobs", "--project", "prod", "--json");
    assert.equal((JSON.parse(jobs.stdout) as unknown[]).length, 2);

    const audit = await lifeboat(config, "audit", "--project", "prod");
    assert.match(audit.stdout, /admin\s+launch/);
    assert.match(audit.stdout, /agent:m-[0-9a-f]{12}\s+machine.register/);

    const badKey = join(tc.dataDir, "bad.json");
    writeFileSync(
      badKey,
      JSON.stringify({ consoleUrl: tc.console.url, caPem: tc.console.ca.certPem, apiKey: "x" }),
    );
    const unauthorized = await lifeboat(badKey, "project", "list");
    assert.equal(unauthorized.code, 1);
    assert.match(unauthorized.stderr, /Console refused the request \(401\): Invalid API key/);
  } finally {
    await tc.close();
  }
});
