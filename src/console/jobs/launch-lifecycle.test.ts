import { test } from "node:test";
import assert from "node:assert/strict";
import { launchLifecycle } from "./launch-lifecycle.js";

test("launchLifecycle() maps project type, direction and mode to lifecycles", () => {
  const dr = { type: "dr", direction: "FAILOVER" } as const;
  assert.deepEqual(launchLifecycle(dr, "test"), {
    during: "TEST_IN_PROGRESS",
    after: "TESTED_RECENTLY",
    setsLastTestAt: true,
  });
  assert.equal(launchLifecycle(dr, "recovery").after, "FAILED_OVER");
  assert.equal(launchLifecycle({ type: "dr", direction: "FAILBACK" }, "recovery").after, "FAILED_BACK");
  assert.equal(
    launchLifecycle({ type: "dr", direction: "FAILBACK" }, "test").after,
    "READY_FOR_FAILBACK_LAUNCH",
  );
  const mig = { type: "migration", direction: "FAILOVER" } as const;
  assert.equal(launchLifecycle(mig, "test").after, "READY_FOR_CUTOVER");
  assert.equal(launchLifecycle(mig, "cutover").after, "CUTOVER_COMPLETE");
});
