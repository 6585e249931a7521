import { test } from "node:test";
import assert from "node:assert/strict";
import { registerAgent, reportStatus, startTestConsole } from "../testing/test-console.js";

test("blueprint: defaults, partial merge, fixed IP rules; pits listed as ISO times", async () => {
  const tc = await startTestConsole();
  try {
    await tc.request("POST", "/api/projects", { name: "prod", type: "dr" });
    const agent = await registerAgent(tc, "prod", "web-1");
    const path = `/api/machines/${agent.machineId}/blueprint`;
    assert.equal((await tc.request("GET", path)).body["instanceType"], "copy-of-source");
    const merged = await tc.request("PUT", path, { cpus: 4, tags: { env: "prod" } });
    assert.equal(merged.status, 200);
    assert.deepEqual([merged.body["cpus"], merged.body["subnet"]], [4, "default"]);
    const missingIp = await tc.request("PUT", path, { ipPolicy: "fixed" });
    assert.equal(missingIp.status, 400);
    assert.match(missingIp.body.error?.message ?? "", /fixedIp is required when ipPolicy is fixed/);
    const badIp = await tc.request("PUT", path, { ipPolicy: "fixed", fixedIp: "10.0.0.300" });
    assert.equal(badIp.status, 400);
    assert.match(badIp.body.error?.message ?? "", /must be an IPv4 address/);
    const fixed = await tc.request("PUT", path, { ipPolicy: "fixed", fixedIp: "10.0.0.30" });
    assert.equal(fixed.body["fixedIp"], "10.0.0.30");
    const back = await tc.request("PUT", path, { ipPolicy: "copy-source" });
    assert.equal(back.body["fixedIp"], null);
    const stray = await tc.request("PUT", path, { fixedIp: "10.0.0.1" });
    assert.equal(stray.status, 400);
    assert.equal((await tc.request("GET", path)).body["cpus"], 4);

    // What the launched machine looks like to its OS: MAC, disk bus, firmware.
    const initial = (await tc.request("GET", path)).body;
    assert.deepEqual([initial["mac"], initial["diskBus"], initial["bootMode"]], [null, "virtio", "bios"]);
    const hw = await tc.request("PUT", path, { mac: "52:54:00:aa:bb:cc", diskBus: "scsi", bootMode: "uefi" });
    assert.deepEqual(
      [hw.body["mac"], hw.body["diskBus"], hw.body["bootMode"]],
      ["52:54:00:aa:bb:cc", "scsi", "uefi"],
    );
    const multicast = await tc.request("PUT", path, { mac: "01:00:5e:00:00:01" });
    assert.equal(multicast.status, 400);
    assert.match(multicast.body.error?.message ?? "", /must be a unicast address/);
    assert.equal((await tc.request("PUT", path, { diskBus: "nvme" })).status, 400);
    assert.equal((await tc.request("PUT", path, { mac: "52:54:00" })).status, 400);

    tc.replicator.pitsByTimeline.set(agent.timelineId, [
      { seq: 3, time: Date.parse("2026-01-01T00:00:00Z") },
    ]);
    const pits = await tc.request("GET", `/api/machines/web-1/pits`);
    assert.deepEqual(pits.body, [{ seq: 3, time: "2026-01-01T00:00:00.000Z", name: null, keep: false }]);
    assert.equal((await tc.request("GET", "/api/machines/nope/pits")).status, 404);
  } finally {
    await tc.close();
  }
});

test("GET /metrics exposes replication state, lag and job counts (admin key)", async () => {
  const tc = await startTestConsole();
  try {
    await tc.request("POST", "/api/projects", { name: "prod", type: "dr" });
    const agent = await registerAgent(tc, "prod", "web-1");
    await reportStatus(tc, agent, { lagSeconds: 120 });
    assert.equal((await tc.request("GET", "/metrics", undefined, { apiKey: null })).status, 401);
    const res = await tc.request("GET", "/metrics");
    assert.equal(res.status, 200);
    assert.match(res.headers["content-type"] as string, /^text\/plain; version=0.0.4/);
    const labels = `project="prod",machine="web-1",machine_id="${agent.machineId}"`;
    assert.ok(
      res.text.includes(`lifeboat_machine_replication_state{${labels},state="CONTINUOUS"} 1`),
      res.text,
    );
    assert.ok(res.text.includes(`lifeboat_machine_lag_seconds{${labels}} 120`));
    assert.ok(res.text.includes(`lifeboat_machine_rpo_breached{${labels}} 1`));
  } finally {
    await tc.close();
  }
});

test("snapshots: name the newest PIT or one by seq, list it as kept, delete it; bad input changes nothing", async () => {
  const tc = await startTestConsole();
  try {
    await tc.request("POST", "/api/projects", { name: "prod", type: "dr" });
    const agent = await registerAgent(tc, "prod", "web-1");
    const path = `/api/machines/${agent.machineId}/snapshots`;
    tc.replicator.pitsByTimeline.set(agent.timelineId, [
      { seq: 3, time: Date.parse("2026-01-01T00:00:00Z") },
      { seq: 7, time: Date.parse("2026-01-01T00:00:01Z") },
    ]);
    const newest = await tc.request("POST", path, { name: "before upgrade" });
    assert.equal(newest.status, 200);
    assert.deepEqual(newest.body, {
      seq: 7,
      time: "2026-01-01T00:00:01.000Z",
      name: "before upgrade",
      keep: true,
    });
    const older = await tc.request("POST", path, { name: "month end", seq: 3 });
    assert.equal(older.body["seq"], 3);
    const listed = await tc.request("GET", `/api/machines/web-1/pits`);
    assert.deepEqual(
      (listed.body as unknown as { name: string | null; keep: boolean }[]).map((p) => [p.name, p.keep]),
      [
        ["month end", true],
        ["before upgrade", true],
      ],
    );
    for (const bad of [{}, { name: "" }, { name: "x", seq: -1 }, { name: "x", extra: 1 }, { name: 5 }]) {
      assert.equal((await tc.request("POST", path, bad)).status, 400, JSON.stringify(bad));
    }
    assert.equal((await tc.request("POST", path, { name: "x", seq: 99 })).status, 404);
    assert.equal((await tc.request("DELETE", `${path}/abc`)).status, 400);
    const deleted = await tc.request("DELETE", `${path}/3`);
    assert.deepEqual([deleted.status, deleted.body["keep"], deleted.body["name"]], [200, false, null]);
    assert.ok(tc.replicator.calls.includes(`deleteSnapshot ${agent.timelineId} 3`));
    const audit = await tc.request("GET", "/api/audit");
    const actions = (audit.body as unknown as { action: string }[]).map((a) => a.action);
    assert.ok(actions.includes("snapshot.create") && actions.includes("snapshot.delete"), actions.join());
  } finally {
    await tc.close();
  }
});

test("the retention sweeper applies each project's policy to each of its machines", async () => {
  const tc = await startTestConsole();
  try {
    await tc.request("POST", "/api/projects", { name: "prod", type: "dr" });
    const agent = await registerAgent(tc, "prod", "web-1");
    await tc.request("PATCH", "/api/projects/prod", {
      settings: { retention: { keepAllSeconds: 7200, tiers: [] } },
    });
    await tc.console.retention.sweep();
    assert.ok(
      tc.replicator.calls.some((c) => c.startsWith(`applyRetention ${agent.timelineId} 7200 `)),
      tc.replicator.calls.join("\n"),
    );
  } finally {
    await tc.close();
  }
});
