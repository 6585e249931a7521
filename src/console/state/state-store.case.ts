/**
 * The StateStore conformance suite, written once and run against every implementation
 * (SQLite today, PostgreSQL later): `runStateStoreCases("sqlite", () => new SqliteStateStore(...))`.
 * It checks the contract in state-store.ts: not-found shapes, uniqueness, idempotency,
 * ordering and the per-field behaviour of updates.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError } from "../../common/errors.js";
import { DEFAULT_BLUEPRINT, DEFAULT_PROJECT_SETTINGS } from "../../common/model.js";
import type { Job, LaunchedMachine, Project } from "../../common/model.js";
import type { MachineRecord, StateStore } from "./state-store.js";

export type StateStoreFactory = () => Promise<StateStore> | StateStore;

const T0 = "2026-01-01T00:00:00.000Z";

export function sampleProject(id: string, name: string): Project {
  return {
    id,
    name,
    type: "dr",
    settings: DEFAULT_PROJECT_SETTINGS,
    direction: "FAILOVER",
    createdAt: T0,
  };
}

export function sampleMachine(id: string, projectId: string, name: string): MachineRecord {
  return {
    id,
    projectId,
    name,
    hostname: `${name}.example`,
    cpus: 2,
    memoryMiB: 2048,
    disks: [{ id: "disk0", path: "/dev/sda", sizeBytes: 1 << 20 }],
    replicatorId: "r1",
    timelineId: `tl-${id}-1`,
    lifecycle: "NOT_TESTED",
    lastTestAt: null,
    replication: {
      state: "INITIATING",
      step: "AUTHENTICATE",
      progressPercent: 0,
      lagSeconds: null,
      etaSeconds: null,
      disks: [],
      bytesSent: 0,
      updatedAt: T0,
    },
    createdAt: T0,
    publicKeyFingerprint: "ab".repeat(32),
    lastSeenAt: null,
    maxLagSeconds: null,
    replicatorConnected: null,
    newestPitTime: null,
    failbackBranchId: null,
    failbackConnected: null,
    failback: null,
  };
}

export function sampleJob(id: string, projectId: string): Job {
  return {
    id,
    kind: "LAUNCH",
    projectId,
    status: "PENDING",
    params: { mode: "test" },
    machines: [],
    log: [],
    createdAt: T0,
    startedAt: null,
    endedAt: null,
    error: null,
  };
}

async function rejectsWith(promise: Promise<unknown>, status: number): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof UserError && err.status === status);
}

export function runStateStoreCases(name: string, factory: StateStoreFactory): void {
  async function withStore(fn: (store: StateStore) => Promise<void>): Promise<void> {
    const store = await factory();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  }

  test(`${name}: projects are found by id or name, names are unique, updates merge`, () =>
    withStore(async (s) => {
      assert.equal(await s.getProject("p1"), undefined);
      await s.createProject(sampleProject("p1", "alpha"));
      await rejectsWith(s.createProject(sampleProject("p2", "alpha")), 409);
      await rejectsWith(s.createProject(sampleProject("p1", "beta")), 409);
      assert.equal((await s.getProject("alpha"))?.id, "p1");
      assert.equal((await s.getProject("p1"))?.name, "alpha");
      await s.createProject(sampleProject("p2", "beta"));
      assert.deepEqual(
        (await s.listProjects()).map((p) => p.id),
        ["p1", "p2"],
      );
      const updated = await s.updateProject("p1", { direction: "FAILBACK" });
      assert.equal(updated.direction, "FAILBACK");
      assert.equal((await s.getProject("p1"))?.direction, "FAILBACK");
      assert.equal((await s.getProject("p1"))?.settings.rpoTargetSeconds, 60);
      await rejectsWith(s.updateProject("nope", { direction: "FAILBACK" }), 404);
    }));

  test(`${name}: install tokens are found by secret hash and revoked once`, () =>
    withStore(async (s) => {
      await s.createProject(sampleProject("p1", "alpha"));
      const token = { id: "t1", projectId: "p1", expiresAt: T0, revokedAt: null, createdAt: T0 };
      await s.createInstallToken(token, "hash1");
      assert.deepEqual(await s.findInstallTokenByHash("hash1"), token);
      assert.equal(await s.findInstallTokenByHash("other"), undefined);
      assert.equal(await s.getInstallToken("missing"), undefined);
      const revoked = await s.revokeInstallToken("t1", "2026-01-02T00:00:00.000Z");
      const again = await s.revokeInstallToken("t1", "2026-01-03T00:00:00.000Z");
      assert.equal(revoked.revokedAt, "2026-01-02T00:00:00.000Z");
      assert.equal(again.revokedAt, "2026-01-02T00:00:00.000Z");
      assert.equal((await s.listInstallTokens("p1")).length, 1);
      await rejectsWith(s.revokeInstallToken("missing", T0), 404);
    }));

  test(`${name}: API keys keep only hashes`, () =>
    withStore(async (s) => {
      await s.createApiKey({ id: "k1", name: "admin", hash: "h".repeat(64), createdAt: T0 });
      await rejectsWith(s.createApiKey({ id: "k1", name: "x", hash: "x", createdAt: T0 }), 409);
      assert.deepEqual(await s.listApiKeys(), [
        { id: "k1", name: "admin", hash: "h".repeat(64), createdAt: T0 },
      ]);
    }));

  test(`${name}: machines are unique by name per project and updates merge fields`, () =>
    withStore(async (s) => {
      await s.createProject(sampleProject("p1", "alpha"));
      await s.createProject(sampleProject("p2", "beta"));
      await s.createMachine(sampleMachine("m1", "p1", "web-1"));
      await rejectsWith(s.createMachine(sampleMachine("m2", "p1", "web-1")), 409);
      await s.createMachine(sampleMachine("m3", "p2", "web-1"));
      assert.equal((await s.findMachinesByName("web-1")).length, 2);
      assert.equal((await s.findMachinesByName("web-1", "p2"))[0]?.id, "m3");
      assert.deepEqual(
        (await s.listMachines("p1")).map((m) => m.id),
        ["m1"],
      );
      assert.equal((await s.listMachines()).length, 2);
      assert.equal(await s.getMachine("missing"), undefined);
      await Promise.all([
        s.updateMachine("m1", { lifecycle: "FAILED_OVER" }),
        s.updateMachine("m1", { maxLagSeconds: 7 }),
      ]);
      const m = await s.getMachine("m1");
      assert.equal(m?.lifecycle, "FAILED_OVER");
      assert.equal(m?.maxLagSeconds, 7);
      assert.equal(m?.disks[0]?.sizeBytes, 1 << 20);
      await rejectsWith(s.updateMachine("missing", { lifecycle: "NORMAL" }), 404);
    }));

  test(`${name}: blueprints are undefined until stored, then replaced`, () =>
    withStore(async (s) => {
      assert.equal(await s.getBlueprint("m1"), undefined);
      await s.putBlueprint("m1", DEFAULT_BLUEPRINT);
      await s.putBlueprint("m1", { ...DEFAULT_BLUEPRINT, cpus: 4 });
      assert.equal((await s.getBlueprint("m1"))?.cpus, 4);
    }));

  test(`${name}: jobs keep status, per-machine results and ordered log lines`, () =>
    withStore(async (s) => {
      await s.createJob(sampleJob("j1", "p1"));
      await s.createJob(sampleJob("j2", "p2"));
      await rejectsWith(s.createJob(sampleJob("j1", "p1")), 409);
      assert.equal(await s.getJob("missing"), undefined);
      assert.deepEqual(
        (await s.listJobs()).map((j) => j.id),
        ["j2", "j1"],
      );
      assert.deepEqual(
        (await s.listJobs({ projectId: "p1" })).map((j) => j.id),
        ["j1"],
      );
      await s.updateJob("j1", { status: "STARTED", startedAt: T0 });
      assert.deepEqual(
        (await s.listJobs({ status: "STARTED" })).map((j) => j.id),
        ["j1"],
      );
      await s.setJobMachine("j1", { machineId: "m1", status: "STARTED" });
      await s.setJobMachine("j1", { machineId: "m2", status: "STARTED" });
      await s.setJobMachine("j1", { machineId: "m1", status: "COMPLETED", rtoSeconds: 12 });
      for (let i = 0; i < 5; i++) await s.appendJobLog("j1", T0, `line ${i}`);
      const job = await s.getJob("j1");
      assert.equal(job?.status, "STARTED");
      assert.deepEqual(
        job?.machines.map((m) => [m.machineId, m.status]),
        [
          ["m1", "COMPLETED"],
          ["m2", "STARTED"],
        ],
      );
      assert.deepEqual(
        job?.log.map((l) => l.message),
        ["line 0", "line 1", "line 2", "line 3", "line 4"],
      );
      await rejectsWith(s.appendJobLog("missing", T0, "x"), 404);
      await rejectsWith(s.updateJob("missing", { status: "FAILED" }), 404);
    }));

  test(`${name}: launched machines are listed until terminated; terminate is idempotent`, () =>
    withStore(async (s) => {
      await s.createProject(sampleProject("p1", "alpha"));
      await s.createMachine(sampleMachine("m1", "p1", "web-1"));
      const launched: LaunchedMachine = {
        id: "l1",
        machineId: "m1",
        jobId: "j1",
        mode: "test",
        provider: "export",
        branchId: "b1",
        ref: "/launched/web-1-test",
        pitSeq: 5,
        disks: ["/tmp/x.raw"],
        createdAt: T0,
        terminatedAt: null,
      };
      await s.createLaunchedMachine(launched);
      assert.deepEqual(await s.listLaunchedMachines({ projectId: "p1" }), [launched]);
      assert.deepEqual(await s.listLaunchedMachines({ projectId: "p2" }), []);
      await s.terminateLaunchedMachine("l1", "2026-01-02T00:00:00.000Z");
      await s.terminateLaunchedMachine("l1", "2026-01-03T00:00:00.000Z");
      assert.deepEqual(await s.listLaunchedMachines({ machineId: "m1" }), []);
      const all = await s.listLaunchedMachines({ machineId: "m1", includeTerminated: true });
      assert.equal(all[0]?.terminatedAt, "2026-01-02T00:00:00.000Z");
      assert.equal((await s.getLaunchedMachine("l1"))?.pitSeq, 5);
      await rejectsWith(s.terminateLaunchedMachine("missing", T0), 404);
    }));

  test(`${name}: the audit log is append-only, newest first, filtered by project`, () =>
    withStore(async (s) => {
      const a = await s.appendAudit({
        time: T0,
        projectId: "p1",
        actor: "admin",
        action: "project.create",
        target: "p1",
        details: { name: "alpha" },
      });
      const b = await s.appendAudit({
        time: T0,
        projectId: null,
        actor: "admin",
        action: "token.revoke",
        target: "t1",
        details: {},
      });
      assert.ok(b.id > a.id);
      assert.deepEqual(
        (await s.listAudit()).map((e) => e.id),
        [b.id, a.id],
      );
      const p1 = await s.listAudit({ projectId: "p1" });
      assert.equal(p1.length, 1);
      assert.deepEqual(p1[0]?.details, { name: "alpha" });
    }));

  test(`${name}: close is idempotent`, async () => {
    const store = await factory();
    await store.close();
    await store.close();
  });
}
