import { test } from "node:test";
import assert from "node:assert/strict";
import { BACKLOG_BYTES, etaSeconds, replicationState, type LinkObservation } from "./replication-state.js";

const streaming: LinkObservation = {
  connected: true,
  everConnected: true,
  paused: false,
  stalled: undefined,
  phase: "continuous",
  unackedBytes: 0,
  drainSeconds: 0,
  resending: false,
};

test("replicationState() follows a link through an outage: DISCONNECTED, RESCAN, BACKLOG, CONTINUOUS", () => {
  const states = [
    { ...streaming, connected: false },
    { ...streaming, phase: "rescan" as const, unackedBytes: 5_000_000 },
    { ...streaming, phase: "drain" as const, unackedBytes: 5_000_000 },
    { ...streaming, phase: "drain" as const, unackedBytes: 0 },
    streaming,
  ].map(replicationState);
  assert.deepEqual(states, ["DISCONNECTED", "RESCAN", "BACKLOG", "CONTINUOUS", "CONTINUOUS"]);
});

test("replicationState() says BACKLOG while re-sending the spool or far behind, STALLED above all while the standby refuses", () => {
  assert.equal(replicationState({ ...streaming, resending: true, unackedBytes: 1 }), "BACKLOG");
  // In CDP, a burst that takes a moment to send is no backlog; one that takes long is.
  assert.equal(replicationState({ ...streaming, unackedBytes: 8_000_000, drainSeconds: 2 }), "CONTINUOUS");
  assert.equal(replicationState({ ...streaming, unackedBytes: 8_000_000, drainSeconds: 9 }), "BACKLOG");
  assert.equal(replicationState({ ...streaming, unackedBytes: 8_000_000, drainSeconds: null }), "CONTINUOUS");
  assert.equal(replicationState({ ...streaming, unackedBytes: BACKLOG_BYTES }), "CONTINUOUS");
  assert.equal(replicationState({ ...streaming, unackedBytes: BACKLOG_BYTES + 1 }), "BACKLOG");
  const full = "The standby is out of space";
  assert.equal(replicationState({ ...streaming, stalled: full }), "STALLED");
  assert.equal(replicationState({ ...streaming, connected: false, stalled: full }), "STALLED");
});

test("replicationState() before the first WELCOME, while refused and during sync", () => {
  assert.equal(replicationState({ ...streaming, connected: false, everConnected: false }), "INITIATING");
  assert.equal(replicationState({ ...streaming, connected: false, phase: undefined }), "INITIATING");
  assert.equal(replicationState({ ...streaming, connected: false, paused: true }), "PAUSED");
  assert.equal(replicationState({ ...streaming, phase: "idle" }), "INITIATING");
  assert.equal(replicationState({ ...streaming, phase: "compare" }), "RESCAN");
  assert.equal(replicationState({ ...streaming, phase: "initial" }), "INITIAL_SYNC");
});

test("etaSeconds() is what is left over its recent rate, null when not catching up or no rate is known", () => {
  const base = { syncedFraction: 0, syncSeconds: 0, toRead: 0, readRate: 0, drainSeconds: 0 };
  assert.equal(etaSeconds({ ...base, state: "BACKLOG", drainSeconds: 5 }), 5);
  assert.equal(etaSeconds({ ...base, state: "BACKLOG", drainSeconds: null }), null);
  assert.equal(
    etaSeconds({ ...base, state: "RESCAN", toRead: 300_000_000, readRate: 100_000_000, drainSeconds: 2 }),
    5,
  );
  assert.equal(etaSeconds({ ...base, state: "RESCAN", toRead: 300_000_000 }), null);
  assert.equal(etaSeconds({ ...base, state: "INITIAL_SYNC", syncedFraction: 0.25, syncSeconds: 10 }), 30);
  assert.equal(etaSeconds({ ...base, state: "CONTINUOUS", drainSeconds: 1 }), null);
  assert.equal(etaSeconds({ ...base, state: "STALLED", drainSeconds: 1 }), null);
});

test("replicationState() says BACKLOG while the intercept tracker keeps writes it could not spool as dirty regions", () => {
  assert.equal(replicationState({ ...streaming, phase: "backlog", unackedBytes: 0 }), "BACKLOG");
  assert.equal(replicationState({ ...streaming, phase: "backlog", connected: false }), "DISCONNECTED");
});
