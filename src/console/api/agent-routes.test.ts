import { test } from "node:test";
import assert from "node:assert/strict";
import { parseClientIdentity } from "../ca/parse-client-identity.js";
import {
  newAgentKey,
  registerAgent,
  reportStatus,
  startTestConsole,
  type TestConsole,
} from "../testing/test-console.js";

async function withConsole(fn: (tc: TestConsole) => Promise<void>): Promise<void> {
  const tc = await startTestConsole();
  try {
    await tc.request("POST", "/api/projects", { name: "prod", type: "dr" });
    await fn(tc);
  } finally {
    await tc.close();
  }
}

test("agent register: creates the machine, assigns it to the replicator, returns a certificate", () =>
  withConsole(async (tc) => {
    const agent = await registerAgent(tc, "prod", "web-1", [
      { path: "/dev/sda", sizeBytes: 8192 },
      { path: "/dev/sdb", sizeBytes: 4096 },
    ]);
    assert.match(agent.machineId, /^m-[0-9a-f]{12}$/);
    assert.equal(agent.timelineId, `tl-${agent.machineId}-1`);
    assert.deepEqual(parseClientIdentity(agent.certPem), { machineId: agent.machineId, role: "source" });
    assert.deepEqual(tc.replicator.assigned.get(agent.machineId), {
      timelineId: agent.timelineId,
      disks: [
        { id: "disk0", sizeBytes: 8192 },
        { id: "disk1", sizeBytes: 4096 },
      ],
    });
    const machine = await tc.request("GET", `/api/machines/${agent.machineId}`);
    assert.equal(machine.body["lifecycle"], "NOT_TESTED");
    assert.deepEqual(
      [
        (machine.body["replication"] as { state: string }).state,
        (machine.body["replication"] as { step: string }).step,
      ],
      ["INITIATING", "AUTHENTICATE"],
    );
    assert.equal((await tc.request("GET", "/api/machines/web-1")).body["id"], agent.machineId);
    assert.equal(String(machine.body["publicKeyFingerprint"]).length, 64);
  }));

test("agent register: duplicate name 409, unaligned disk 400, bad key 400, nothing registered", () =>
  withConsole(async (tc) => {
    await registerAgent(tc, "prod", "web-1");
    const token = await tc.request("POST", "/api/projects/prod/tokens", {});
    const body = {
      token: token.body["token"],
      name: "web-1",
      hostname: "h",
      cpus: 1,
      memoryMiB: 512,
      disks: [{ path: "/dev/sda", sizeBytes: 4096 }],
      publicKeyPem: newAgentKey().publicKeyPem,
    };
    const dup = await tc.request("POST", "/api/agent/register", body, { apiKey: null });
    assert.equal(dup.status, 409);
    assert.match(dup.body.error?.message ?? "", /web-1 is already registered in project prod/);
    const unaligned = await tc.request(
      "POST",
      "/api/agent/register",
      { ...body, name: "web-2", disks: [{ path: "/dev/sdb", sizeBytes: 1000 }] },
      { apiKey: null },
    );
    assert.equal(unaligned.status, 400);
    assert.match(
      unaligned.body.error?.message ?? "",
      /\/dev\/sdb: size 1000 is not a positive multiple of 4096/,
    );
    const badKey = await tc.request(
      "POST",
      "/api/agent/register",
      { ...body, name: "web-3", publicKeyPem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" },
      { apiKey: null },
    );
    assert.equal(badKey.status, 400);
    const list = await tc.request("GET", "/api/machines?project=prod");
    assert.equal(list.body.length, 1);
    assert.equal(tc.replicator.assigned.size, 1);
  }));

test("agent status: needs a source certificate; stores the report and the max lag", () =>
  withConsole(async (tc) => {
    const agent = await registerAgent(tc, "prod", "web-1");
    const body = {
      state: "CONTINUOUS",
      progressPercent: 100,
      lagSeconds: 1,
      etaSeconds: null,
      disks: [],
      bytesSent: 0,
    };
    const noCert = await tc.request("POST", "/api/agent/status", body, { apiKey: null });
    assert.equal(noCert.status, 401);
    assert.match(noCert.body.error?.message ?? "", /agent certificate/);
    const adminOnly = await tc.request("POST", "/api/agent/status", body);
    assert.equal(adminOnly.status, 401);

    const first = await reportStatus(tc, agent, { lagSeconds: 9 });
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, {
      timelineId: agent.timelineId,
      direction: "FAILOVER",
      paused: false,
      bandwidthLimitMbps: 0,
    });
    await reportStatus(tc, agent, { lagSeconds: 3 });
    const machine = await tc.request("GET", `/api/machines/${agent.machineId}`);
    const replication = machine.body["replication"] as { state: string; lagSeconds: number };
    assert.deepEqual(
      [replication.state, replication.lagSeconds, machine.body["maxLagSeconds"]],
      ["CONTINUOUS", 3, 9],
    );

    const bad = await reportStatus(tc, agent, { state: "HAPPY" });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error?.message ?? "", /\/state must be one of STOPPED, INITIATING/);
  }));

test("agent status: the tracker and each disk's NBD URI are kept when an agent sends them, checked when present", () =>
  withConsole(async (tc) => {
    const agent = await registerAgent(tc, "prod", "web-1");
    const disk = { id: "disk0", totalBytes: 4096, replicatedBytes: 4096, backlogBytes: 0, rescannedBytes: 0 };
    const uri = "nbd+unix:///disk0?socket=/run/lifeboat/nbd.sock";
    const ok = await reportStatus(tc, agent, {
      tracker: "intercept",
      lagSeconds: 0.004,
      disks: [{ ...disk, nbdUri: uri }],
    });
    assert.equal(ok.status, 200);
    const machine = await tc.request("GET", `/api/machines/${agent.machineId}`);
    const replication = machine.body["replication"] as {
      tracker: string;
      lagSeconds: number;
      disks: { nbdUri?: string }[];
    };
    assert.deepEqual(
      [replication.tracker, replication.lagSeconds, replication.disks[0]?.nbdUri],
      ["intercept", 0.004, uri],
    );
    // An older agent sends neither: still valid, and nothing stale is kept.
    assert.equal((await reportStatus(tc, agent, { disks: [disk] })).status, 200);
    const older = (await tc.request("GET", `/api/machines/${agent.machineId}`)).body["replication"] as Record<
      string,
      unknown
    >;
    assert.equal(older["tracker"], undefined);
    assert.deepEqual(older["disks"], [disk]);
    const bad = await reportStatus(tc, agent, { disks: [{ ...disk, nbdUri: "file:///etc/passwd" }] });
    assert.equal(bad.status, 400);
    assert.equal((await reportStatus(tc, agent, { tracker: "Bad Name!" })).status, 400);
  }));

test("machine view: DISCONNECTED after 15 s without a report or when the replicator lost the agent (an agent's STALLED stands); TESTED_RECENTLY expires", () =>
  withConsole(async (tc) => {
    const agent = await registerAgent(tc, "prod", "web-1");
    await reportStatus(tc, agent);
    tc.clock.now += 16_000;
    const stale = await tc.request("GET", `/api/machines/${agent.machineId}`);
    const replication = stale.body["replication"] as { state: string; reason: string };
    assert.equal(replication.state, "DISCONNECTED");
    assert.match(replication.reason, /has not reported since/);
    await reportStatus(tc, agent);
    const fresh = await tc.request("GET", `/api/machines/${agent.machineId}`);
    assert.equal((fresh.body["replication"] as { state: string }).state, "CONTINUOUS");

    tc.console.link.connectionChanged(agent.machineId, "source", false);
    await tc.console.link.idle();
    const dropped = await tc.request("GET", `/api/machines/${agent.machineId}`);
    assert.equal((dropped.body["replication"] as { state: string }).state, "DISCONNECTED");
    // The agent knows better why it is not streaming: its STALLED report and reason stand.
    const full = "The standby is out of space: free space on the replicator";
    await reportStatus(tc, agent, { state: "STALLED", reason: full });
    const stalled = await tc.request("GET", `/api/machines/${agent.machineId}`);
    assert.deepEqual(
      [
        (stalled.body["replication"] as { state: string }).state,
        (stalled.body["replication"] as { reason: string }).reason,
      ],
      ["STALLED", full],
    );
    tc.console.link.connectionChanged(agent.machineId, "source", true);

    await tc.console.state.updateMachine(agent.machineId, {
      lifecycle: "TESTED_RECENTLY",
      lastTestAt: new Date(tc.clock.now).toISOString(),
    });
    assert.equal(
      (await tc.request("GET", `/api/machines/${agent.machineId}`)).body["lifecycle"],
      "TESTED_RECENTLY",
    );
    tc.clock.now += 31 * 86_400_000;
    await reportStatus(tc, agent);
    assert.equal(
      (await tc.request("GET", `/api/machines/${agent.machineId}`)).body["lifecycle"],
      "NOT_TESTED",
    );
  }));

test("ConsoleLink: pitCut keeps the newest PIT time; failbackProgress is stored", () =>
  withConsole(async (tc) => {
    const agent = await registerAgent(tc, "prod", "web-1");
    const link = tc.console.link;
    link.pitCut(agent.machineId, agent.timelineId, { seq: 2, time: Date.parse("2026-01-01T00:00:02Z") });
    link.pitCut(agent.machineId, agent.timelineId, { seq: 1, time: Date.parse("2026-01-01T00:00:01Z") });
    link.pitCut(agent.machineId, "tl-other", { seq: 9, time: Date.parse("2026-01-01T00:00:09Z") });
    link.failbackProgress(agent.machineId, { sentBytes: 5, totalBytes: 10, caughtUp: false });
    link.pitCut("m-unknown", "tl-x", { seq: 1, time: 0 });
    await link.idle();
    const machine = await tc.console.state.getMachine(agent.machineId);
    assert.equal(machine?.newestPitTime, "2026-01-01T00:00:02.000Z");
    assert.equal(machine?.failback?.sentBytes, 5);
  }));

test("failback register: 409 until prepared, disk checks, then a failback certificate", () =>
  withConsole(async (tc) => {
    const agent = await registerAgent(tc, "prod", "web-1", [{ path: "/dev/sda", sizeBytes: 8192 }]);
    const token = await tc.request("POST", "/api/projects/prod/tokens", {});
    const key = newAgentKey();
    const body = {
      token: token.body["token"],
      machineId: agent.machineId,
      publicKeyPem: key.publicKeyPem,
      disks: [{ path: "/dev/sda", sizeBytes: 8192 }],
    };
    const early = await tc.request("POST", "/api/failback/register", body, { apiKey: null });
    assert.equal(early.status, 409);
    assert.match(early.body.error?.message ?? "", /run `lifeboat failback prepare --project prod` first/);

    const project = await tc.console.state.getProject("prod");
    await tc.console.state.updateProject(project?.id ?? "", { direction: "FAILBACK" });
    await tc.console.state.updateMachine(agent.machineId, {
      lifecycle: "PREPARING_FOR_FAILBACK",
      failbackBranchId: "fb-1",
    });
    const wrongCount = await tc.request(
      "POST",
      "/api/failback/register",
      { ...body, disks: [] },
      { apiKey: null },
    );
    assert.equal(wrongCount.status, 400);
    const wrongSize = await tc.request(
      "POST",
      "/api/failback/register",
      { ...body, disks: [{ path: "/dev/sda", sizeBytes: 4096 }] },
      { apiKey: null },
    );
    assert.equal(wrongSize.status, 400);
    assert.match(wrongSize.body.error?.message ?? "", /Disk size mismatch/);

    const ok = await tc.request("POST", "/api/failback/register", body, { apiKey: null });
    assert.equal(ok.status, 201);
    assert.equal(ok.body["branchId"], "fb-1");
    const certPem = String(ok.body["certPem"]);
    assert.deepEqual(parseClientIdentity(certPem), { machineId: agent.machineId, role: "failback" });

    const status = { sentBytes: 1, totalBytes: 2, caughtUp: false };
    const asSource = await tc.request("POST", "/api/failback/status", status, {
      apiKey: null,
      clientCert: agent,
    });
    assert.equal(asSource.status, 401);
    const asFailback = await tc.request("POST", "/api/failback/status", status, {
      apiKey: null,
      clientCert: { certPem, keyPem: key.keyPem },
    });
    assert.equal(asFailback.status, 200);
    assert.equal((await tc.console.state.getMachine(agent.machineId))?.failback?.totalBytes, 2);
  }));
