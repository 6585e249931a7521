import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runStateStoreCases, sampleProject } from "../state-store.case.js";
import { SqliteStateStore } from "./sqlite-state-store.js";

runStateStoreCases("SqliteStateStore", () => new SqliteStateStore(":memory:"));

test("SqliteStateStore persists across reopen and migrates once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-state-"));
  try {
    const file = join(dir, "state.db");
    const first = new SqliteStateStore(file);
    await first.createProject(sampleProject("p1", "alpha"));
    assert.equal(first.schemaVersion, 1);
    await first.close();
    const second = new SqliteStateStore(file);
    assert.equal(second.schemaVersion, 1);
    assert.equal((await second.getProject("alpha"))?.id, "p1");
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
