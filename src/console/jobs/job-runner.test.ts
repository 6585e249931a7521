import { test } from "node:test";
import assert from "node:assert/strict";
import { sampleJob } from "../state/state-store.case.js";
import { SqliteStateStore } from "../state/sqlite/sqlite-state-store.js";
import { FakeReplicator } from "../testing/fake-replicator.js";
import { JobRunner } from "./job-runner.js";

test("JobRunner runs a job to COMPLETED with timings, log and machine results", async () => {
  const state = new SqliteStateStore(":memory:");
  const runner = new JobRunner({
    state,
    replicator: new FakeReplicator(),
    handlers: {
      LAUNCH: async (ctx) => {
        await ctx.log(`mode ${String(ctx.job.params["mode"])}`);
        await ctx.setMachine({ machineId: "m1", status: "COMPLETED", rtoSeconds: 1.5 });
      },
    },
  });
  await runner.start();
  await state.createJob(sampleJob("j1", "p1"));
  runner.wake();
  await runner.idle();
  const job = await state.getJob("j1");
  assert.equal(job?.status, "COMPLETED");
  assert.ok(job?.startedAt !== null && job?.endedAt !== null);
  assert.deepEqual(
    job?.log.map((l) => l.message),
    ["mode test"],
  );
  assert.equal(job?.machines[0]?.rtoSeconds, 1.5);
  await runner.close();
  await state.close();
});

test("JobRunner marks a throwing handler FAILED with its message, and a missing handler too", async () => {
  const state = new SqliteStateStore(":memory:");
  const runner = new JobRunner({
    state,
    replicator: new FakeReplicator(),
    handlers: {
      LAUNCH: () => Promise.reject(new Error("Provider export: disk full")),
    },
  });
  await runner.start();
  await state.createJob(sampleJob("j1", "p1"));
  await state.createJob({ ...sampleJob("j2", "p1"), kind: "CLEANUP" });
  runner.wake();
  await runner.idle();
  const j1 = await state.getJob("j1");
  assert.deepEqual([j1?.status, j1?.error], ["FAILED", "Provider export: disk full"]);
  assert.equal(j1?.log.at(-1)?.message, "Failed: Provider export: disk full");
  const j2 = await state.getJob("j2");
  assert.equal(j2?.status, "FAILED");
  assert.match(j2?.error ?? "", /No handler for job kind CLEANUP/);
  await runner.close();
  await state.close();
});

test("JobRunner fails jobs left STARTED by a previous process and aborts handlers on close", async () => {
  const state = new SqliteStateStore(":memory:");
  await state.createJob({ ...sampleJob("old", "p1"), status: "STARTED" });
  let aborted = false;
  const runner = new JobRunner({
    state,
    replicator: new FakeReplicator(),
    pollMs: 5,
    handlers: {
      LAUNCH: (ctx) =>
        new Promise<void>((_resolve, reject) => {
          ctx.signal.addEventListener("abort", () => {
            aborted = true;
            reject(new Error("aborted"));
          });
        }),
    },
  });
  await runner.start();
  assert.equal((await state.getJob("old"))?.status, "FAILED");
  await state.createJob(sampleJob("j1", "p1"));
  // Found by polling, without wake().
  for (let i = 0; i < 200 && (await state.getJob("j1"))?.status !== "STARTED"; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  await runner.close();
  assert.equal(aborted, true);
  assert.equal((await state.getJob("j1"))?.status, "FAILED");
  await state.close();
});
