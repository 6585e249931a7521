import { test } from "node:test";
import assert from "node:assert/strict";
import { sampleMachine } from "../../console/state/state-store.case.js";
import { renderMachines } from "./machines.js";

test("renderMachines() prints the table and every machine's reason, CONTINUOUS or not", () => {
  const base = sampleMachine("m-1", "p-1", "web-1");
  const busy = {
    ...base,
    rpoBreached: false,
    replication: {
      ...base.replication,
      state: "CONTINUOUS" as const,
      progressPercent: 100,
      lagSeconds: 0.4,
      reason:
        "Disks change during every scan pass since 2026-01-01T00:00:00.000Z: no new PIT until a pass sees them still",
    },
  };
  const quiet = { ...sampleMachine("m-2", "p-1", "db-1"), rpoBreached: true };
  const behind = {
    ...sampleMachine("m-3", "p-1", "app-1"),
    rpoBreached: false,
    replication: {
      ...base.replication,
      state: "BACKLOG" as const,
      etaSeconds: 75,
      disks: [
        {
          id: "disk0",
          totalBytes: 1 << 30,
          replicatedBytes: 1 << 30,
          backlogBytes: 12 << 20,
          rescannedBytes: 0,
        },
      ],
    },
  };
  const text = renderMachines([busy, quiet, behind]);
  assert.match(text, /^NAME\s+ID\s+REPLICATION\s+PROGRESS\s+LAG\s+LIFECYCLE\n/);
  assert.match(text, /web-1\s+m-1\s+CONTINUOUS\s+100%/);
  assert.match(text, /\nweb-1: Disks change during every scan pass since/);
  assert.match(text, /db-1\s+m-2\s+INITIATING \(AUTHENTICATE\)\s+0%.*\(RPO!\)/);
  assert.doesNotMatch(text, /\ndb-1: /);
  assert.match(text, /app-1\s+m-3\s+BACKLOG \(12 MiB, ETA 1m 15s\)/);
});
