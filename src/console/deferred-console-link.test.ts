import { test } from "node:test";
import assert from "node:assert/strict";
import type { ConsoleLink } from "./replicator-control.js";
import { DeferredConsoleLink } from "./deferred-console-link.js";

test("DeferredConsoleLink buffers reports until attached, then forwards", () => {
  const seen: string[] = [];
  const target: ConsoleLink = {
    connectionChanged: (id, role, connected) => seen.push(`conn ${id} ${role} ${String(connected)}`),
    pitCut: (id, tl, pit) => seen.push(`pit ${id} ${tl} ${pit.seq}`),
    failbackProgress: (id, p) => seen.push(`fb ${id} ${p.sentBytes}`),
  };
  const link = new DeferredConsoleLink();
  link.connectionChanged("m1", "source", true);
  link.pitCut("m1", "tl", { seq: 1, time: 0 });
  assert.deepEqual(seen, []);
  link.attach(target);
  link.failbackProgress("m1", { sentBytes: 3, totalBytes: 4, caughtUp: false });
  assert.deepEqual(seen, ["conn m1 source true", "pit m1 tl 1", "fb m1 3"]);
});
