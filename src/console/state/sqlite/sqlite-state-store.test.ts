import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runStateStoreCases, sampleProject } from "../state-store.case.js";
import Database from "better-sqlite3";
import { retentionFromPitRetentionSeconds } from "../upgrade-project-settings.js";
import { MIGRATIONS, SqliteStateStore } from "./sqlite-state-store.js";

runStateStoreCases("SqliteStateStore", () => new SqliteStateStore(":memory:"));

test("SqliteStateStore persists across reopen and migrates once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-state-"));
  try {
    const file = join(dir, "state.db");
    const first = new SqliteStateStore(file);
    await first.createProject(sampleProject("p1", "alpha"));
    assert.equal(first.schemaVersion, MIGRATIONS.length);
    await first.close();
    const second = new SqliteStateStore(file);
    assert.equal(second.schemaVersion, MIGRATIONS.length);
    assert.equal((await second.getProject("alpha"))?.id, "p1");
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("SqliteStateStore upgrades version 1 projects: pitRetentionSeconds becomes a retention policy", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-state-"));
  try {
    const file = join(dir, "state.db");
    // A database as a version 1 console left it.
    const v1 = new Database(file);
    v1.exec("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1)");
    const first = MIGRATIONS[0];
    assert.equal(typeof first, "string");
    v1.exec(first as string);
    const settings = {
      bandwidthLimitMbps: 0,
      pitRetentionSeconds: 7200,
      stagingLocation: "local",
      testedRecentlyDays: 30,
      rpoTargetSeconds: 60,
    };
    const old = { ...sampleProject("p1", "alpha"), settings };
    v1.prepare("INSERT INTO projects (id, name, data) VALUES (?, ?, ?)").run(
      "p1",
      "alpha",
      JSON.stringify(old),
    );
    v1.close();

    const store = new SqliteStateStore(file);
    assert.equal(store.schemaVersion, 2);
    const project = await store.getProject("alpha");
    assert.deepEqual(project?.settings.retention, retentionFromPitRetentionSeconds(7200));
    assert.equal("pitRetentionSeconds" in (project?.settings ?? {}), false);
    assert.deepEqual({ ...project, settings: undefined }, { ...old, settings: undefined });
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
