import { test } from "node:test";
import assert from "node:assert/strict";
import type { JobHandlers } from "../jobs/job-handlers.js";
import {
  registerAgent,
  reportStatus,
  startTestConsole,
  type TestAgent,
  type TestConsole,
} from "../testing/test-console.js";

const T = (s: string) => Date.parse(`2026-03-01T10:00:${s}Z`);

async function withConsole(
  fn: (tc: TestConsole, web1: TestAgent, web2: TestAgent) => Promise<void>,
  handlers: JobHandlers = {},
): Promise<void> {
  const tc = await startTestConsole(handlers);
  try {
    await tc.request("POST", "/api/projects", { name: "prod", type: "dr" });
    const web1 = await registerAgent(tc, "prod", "web-1");
    const web2 = await registerAgent(tc, "prod", "web-2");
    await reportStatus(tc, web1);
    await reportStatus(tc, web2);
    for (const agent of [web1, web2]) {
      tc.replicator.pitsByTimeline.set(agent.timelineId, [
        { seq: 10, time: T("10") },
        { seq: 20, time: T("20") },
        { seq: 30, time: T("30") },
      ]);
    }
    await fn(tc, web1, web2);
  } finally {
    await tc.close();
  }
}

async function jobCount(tc: TestConsole): Promise<number> {
  return (await tc.request("GET", "/api/jobs")).body.length as number;
}

test("launch: resolves latest and an ISO time per machine into the job params", () =>
  withConsole(async (tc, web1, web2) => {
    const latest = await tc.request("POST", "/api/launches", {
      machineIds: [web1.machineId, "web-2"],
      mode: "test",
    });
    assert.equal(latest.status, 202);
    assert.equal(latest.body["kind"], "LAUNCH");
    const params = latest.body["params"] as {
      pits: Record<string, number>;
      provider: string;
      mode: string;
      format: string;
    };
    assert.deepEqual(params.pits, { [web1.machineId]: 30, [web2.machineId]: 30 });
    assert.deepEqual([params.provider, params.mode, params.format], ["export", "test", "raw"]);

    const at = await tc.request("POST", "/api/launches", {
      machineIds: [web1.machineId],
      mode: "recovery",
      pit: "2026-03-01T10:00:25Z",
      outDir: "/tmp/out",
      format: "vhd",
    });
    assert.equal(at.status, 202);
    const atParams = at.body["params"] as { pits: Record<string, number>; outDir: string; format: string };
    assert.deepEqual(atParams.pits, { [web1.machineId]: 20 });
    assert.equal(atParams.outDir, "/tmp/out");
    assert.equal(atParams.format, "vhd");
    const machines = at.body["machines"] as { pitSeq: number; pitTime: string }[];
    assert.deepEqual([machines[0]?.pitSeq, machines[0]?.pitTime], [20, "2026-03-01T10:00:20.000Z"]);
  }));

test("launch: snapshot:NAME picks each machine's named snapshot, and names what exists when one lacks it", () =>
  withConsole(async (tc, web1, web2) => {
    await tc.request("POST", `/api/machines/${web1.machineId}/snapshots`, {
      name: "before upgrade",
      seq: 10,
    });
    await tc.request("POST", `/api/machines/${web2.machineId}/snapshots`, {
      name: "before upgrade",
      seq: 20,
    });
    const named = await tc.request("POST", "/api/launches", {
      machineIds: [web1.machineId, web2.machineId],
      mode: "test",
      pit: "snapshot:before upgrade",
    });
    assert.equal(named.status, 202);
    assert.deepEqual((named.body["params"] as { pits: Record<string, number> }).pits, {
      [web1.machineId]: 10,
      [web2.machineId]: 20,
    });
    const before = await jobCount(tc);
    const missing = await tc.request("POST", "/api/launches", {
      machineIds: [web1.machineId],
      mode: "test",
      pit: "snapshot:month end",
    });
    assert.equal(missing.status, 404);
    assert.match(missing.body.error?.message ?? "", /no snapshot named "month end": it has "before upgrade"/);
    assert.equal(await jobCount(tc), before);
  }));

test("launch: every validation failure is a clear 4xx and creates no job", () =>
  withConsole(async (tc, web1) => {
    await tc.request("POST", "/api/projects", { name: "mig", type: "migration" });
    const other = await registerAgent(tc, "mig", "db-1");
    await reportStatus(tc, other);
    const syncing = await registerAgent(tc, "prod", "web-3");
    await reportStatus(tc, syncing, { state: "INITIAL_SYNC", progressPercent: 42.7 });
    const silent = await registerAgent(tc, "prod", "web-4");
    tc.replicator.pitsByTimeline.set(other.timelineId, [{ seq: 1, time: T("10") }]);

    const cases: { body: Record<string, unknown>; status: number; message: RegExp }[] = [
      {
        body: { machineIds: ["m-000000000000"], mode: "test" },
        status: 404,
        message: /Machine not found: m-000000000000/,
      },
      {
        body: { machineIds: [web1.machineId, other.machineId], mode: "test" },
        status: 400,
        message: /web-1 and db-1 are in different projects/,
      },
      {
        body: { machineIds: [web1.machineId], mode: "cutover" },
        status: 400,
        message: /cutover is for migration projects/,
      },
      {
        body: { machineIds: [other.machineId], mode: "recovery" },
        status: 400,
        message: /migration project/,
      },
      {
        body: { machineIds: [syncing.machineId], mode: "test" },
        status: 409,
        message: /^Machine web-3 is still in initial sync \(42%\): launch when it reaches CONTINUOUS$/,
      },
      {
        body: { machineIds: [silent.machineId], mode: "test" },
        status: 409,
        message: /web-4 has not reported/,
      },
      {
        body: { machineIds: [web1.machineId], mode: "test", pit: "2026-03-01T09:00:00Z" },
        status: 404,
        message:
          /^No PIT at or before 2026-03-01T09:00:00.000Z: the oldest PIT of web-1 is 2026-03-01T10:00:10.000Z$/,
      },
      {
        body: { machineIds: [web1.machineId], mode: "test", pit: "yesterday" },
        status: 400,
        message: /Invalid PIT yesterday/,
      },
      {
        body: { machineIds: [web1.machineId], mode: "test", pit: "2026-13-45" },
        status: 400,
        message: /Invalid PIT/,
      },
      { body: { machineIds: [], mode: "test" }, status: 400, message: /\/machineIds must have at least 1/ },
      {
        body: { machineIds: [web1.machineId], mode: "test", provider: "vmware" },
        status: 400,
        message: /^Unknown provider vmware: choose one of export, local$/,
      },
      {
        body: { machineIds: [web1.machineId], mode: "drill" },
        status: 400,
        message: /\/mode must be one of test, recovery, cutover/,
      },
      {
        body: { machineIds: [web1.machineId], mode: "test", format: "iso" },
        status: 400,
        message: /^Invalid request body: \/format must be one of raw, qcow2, vhd, vhd-dynamic, vmdk$/,
      },
    ];
    for (const c of cases) {
      const res = await tc.request("POST", "/api/launches", c.body);
      assert.equal(res.status, c.status, `${JSON.stringify(c.body)}: ${res.text}`);
      assert.match(res.body.error?.message ?? "", c.message);
    }
    tc.replicator.pitsByTimeline.set(web1.timelineId, []);
    const noPit = await tc.request("POST", "/api/launches", { machineIds: [web1.machineId], mode: "test" });
    assert.equal(noPit.status, 404);
    assert.match(noPit.body.error?.message ?? "", /web-1 has no PIT yet/);
    assert.equal(await jobCount(tc), 0);
    const migrationOk = await tc.request("POST", "/api/launches", { machineIds: ["db-1"], mode: "cutover" });
    assert.equal(migrationOk.status, 202);
  }));

test("launch: the job runs its handler, which sees the resolved params", async () => {
  const seen: unknown[] = [];
  const handlers: JobHandlers = {
    LAUNCH: async (ctx) => {
      seen.push(ctx.job.params["pits"]);
      await ctx.log("launching");
      for (const id of ctx.job.params["machineIds"] as string[]) {
        await ctx.setMachine({ machineId: id, status: "COMPLETED", rtoSeconds: 3 });
      }
    },
  };
  await withConsole(async (tc, web1) => {
    const res = await tc.request("POST", "/api/launches", { machineIds: [web1.machineId], mode: "test" });
    await tc.console.jobs.idle();
    const job = await tc.request("GET", `/api/jobs/${String(res.body["id"])}`);
    assert.equal(job.body["status"], "COMPLETED");
    assert.deepEqual(seen, [{ [web1.machineId]: 30 }]);
    assert.deepEqual(
      (job.body["log"] as { message: string }[]).map((l) => l.message),
      ["launching"],
    );
    assert.equal((job.body["machines"] as { rtoSeconds: number }[])[0]?.rtoSeconds, 3);
    const audit = await tc.request("GET", "/api/audit?project=prod");
    assert.ok((audit.body as unknown as { action: string }[]).some((e) => e.action === "launch"));
  }, handlers);
});

test("failback prepare and return-to-normal need the right lifecycle; cleanup always starts", () =>
  withConsole(async (tc, web1, web2) => {
    const early = await tc.request("POST", "/api/projects/prod/failback/prepare", {});
    assert.equal(early.status, 409);
    assert.match(early.body.error?.message ?? "", /Machines must be FAILED_OVER: web-1 is NOT_TESTED/);
    await tc.console.state.updateMachine(web1.machineId, { lifecycle: "FAILED_OVER" });
    const selected = await tc.request("POST", "/api/projects/prod/failback/prepare", {
      machineIds: ["web-1"],
    });
    assert.equal(selected.status, 202);
    assert.equal(selected.body["kind"], "FAILBACK_PREPARE");
    assert.deepEqual((selected.body["params"] as { machineIds: string[] }).machineIds, [web1.machineId]);
    const rtn = await tc.request("POST", "/api/projects/prod/return-to-normal", {
      machineIds: [web2.machineId],
    });
    assert.equal(rtn.status, 409);
    assert.match(rtn.body.error?.message ?? "", /FAILED_BACK/);
    const cleanup = await tc.request("POST", "/api/projects/prod/cleanup");
    assert.equal(cleanup.status, 202);
    await tc.console.jobs.idle();
    const jobs = (await tc.request("GET", "/api/jobs?project=prod")).body as unknown as {
      status: string;
      error: string;
    }[];
    assert.equal(jobs.length, 2);
    assert.ok(jobs.every((j) => j.status === "FAILED" && /No handler for job kind/.test(j.error)));
  }));
