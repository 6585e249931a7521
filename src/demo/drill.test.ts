import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { LIFEBOAT_BIN } from "./processes.js";

test("lifeboat demo --small runs the whole DR cycle and every check passes", async () => {
  const child = spawn(process.execPath, [LIFEBOAT_BIN, "demo", "--small"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  assert.equal(code, 0, out.slice(-4000));
  assert.match(out, /VERDICT: PASSED: all \d+ checks passed/);
  for (const step of ["== 4. Test launch", "== 6. Failback", "== 7. Return to normal", "== 8. Summary"])
    assert.ok(out.includes(step), step);
  assert.doesNotMatch(out, /\bFAIL\b/);
});
