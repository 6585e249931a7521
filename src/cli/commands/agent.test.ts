import { test } from "node:test";
import assert from "node:assert/strict";
import { parseArgs } from "../args.js";
import { agent, trackerChoice } from "./agent.js";

const choose = (...argv: string[]) => trackerChoice(parseArgs(argv, agent.flags, "agent"), "/var/lib/lb");

test("lifeboat agent: the scan tracker by default, the intercept tracker's flags only with it", () => {
  assert.deepEqual(choose(), { tracker: "scan", trackerOptions: {}, spoolMiB: 1024 });
  assert.deepEqual(choose("--tracker", "intercept"), {
    tracker: "intercept",
    trackerOptions: { nbdListen: { socketPath: "/var/lib/lb/nbd/nbd.sock" } },
    spoolMiB: 1024,
  });
  assert.deepEqual(
    choose("--tracker", "intercept", "--nbd-listen", "127.0.0.1:10809", "--sync", "--sync-timeout", "30s"),
    {
      tracker: "intercept",
      trackerOptions: { nbdListen: { host: "127.0.0.1", port: 10809 }, sync: true, syncTimeoutMs: 30_000 },
      spoolMiB: 1024,
    },
  );
  assert.throws(() => choose("--tracker", "magic"), /--tracker must be one of scan, intercept/);
  assert.throws(() => choose("--sync"), /--sync needs --tracker intercept/);
  assert.throws(() => choose("--nbd-dir", "/run"), /--nbd-dir needs --tracker intercept/);
  assert.throws(
    () => choose("--tracker", "intercept", "--sync-timeout", "5s"),
    /--sync-timeout needs --sync/,
  );
  assert.throws(
    () => choose("--tracker", "intercept", "--nbd-dir", "/run", "--nbd-listen", "127.0.0.1:1"),
    /not both/,
  );
});
