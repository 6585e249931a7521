import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { Agent } from "../../agent/agent.js";
import { UserError } from "../../common/errors.js";
import { DEFAULT_BLUEPRINT, type Blueprint, type Job, type Machine } from "../../common/model.js";
import { waitFor } from "../../common/wait-for.js";
import { LayeredStore } from "../../store/layered/layered-store.js";
import { buildBootableDisk, parseGuestReport, rewriteMarker } from "../../testing/bootable-disk.js";
import {
  createProjectToken,
  machineNamed,
  removeDir,
  sha256File,
  sha256OfPit,
  startSite,
} from "../../testing/site-fixture.js";
import type { LaunchRequest } from "../provider.js";
import { provider } from "../registry.js";
import { LocalProvider, type LaunchRecord } from "./local-provider.js";
import { QemuMachine } from "./qemu-machine.js";

const run = promisify(execFile);
const quiet = (): void => undefined;

/** Live QEMU processes whose command line mentions `text`. */
async function qemuProcessesMentioning(text: string): Promise<string[]> {
  const { stdout } = await run("ps", ["-eo", "pid=,stat=,args="]);
  return stdout
    .split("\n")
    .filter((l) => l.includes("qemu-system") && l.includes(text) && !/^\s*\d+\s+Z/.test(l));
}

test("LocalProvider refuses bad blueprints and a missing QEMU before writing or starting anything", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-local-"));
  const store = await LayeredStore.open(join(dir, "store"));
  try {
    const timeline = await store.createTimeline("t1", [{ id: "disk0", sizeBytes: 1024 * 1024 }]);
    const outDir = join(dir, "out");
    const request = (blueprint: Partial<Blueprint>): LaunchRequest => ({
      machineName: "web-1",
      machineId: "m-1",
      mode: "test",
      timeline,
      seq: timeline.lastSeq(),
      blueprint: { ...DEFAULT_BLUEPRINT, ...blueprint },
      source: { cpus: 1, memoryMiB: 128 },
      outDir,
    });
    const local = new LocalProvider({ limits: { maxCpus: 2, maxMemoryMiB: 1024 } });
    const cases: [Partial<Blueprint>, RegExp][] = [
      [{ cpus: 64 }, /64 CPUs .* at most 2 per machine/],
      [{ instanceType: "local.micro", memoryMiB: 96 }, /96 MiB .* at least 128 MiB/],
      [{ bootMode: "uefi" }, /UEFI machine needs at least 256 MiB/],
      [{ memoryMiB: 4096 }, /at most 1024 MiB/],
      [{ instanceType: "t3.nano" }, /Unknown instance type t3.nano/],
      [{ subnet: "192.168.1.0/24", ipPolicy: "fixed", fixedIp: "10.0.0.9" }, /not a usable host address/],
    ];
    for (const [blueprint, message] of cases)
      await assert.rejects(
        local.launch(request(blueprint)),
        (err: unknown) => err instanceof UserError && message.test(err.message),
      );
    await assert.rejects(
      new LocalProvider({ qemu: "qemu-system-x86_64-missing" }).launch(request({})),
      (err: unknown) =>
        err instanceof UserError && /install the Debian package qemu-system-x86/.test(err.message),
    );
    assert.equal(await stat(outDir).catch(() => null), null, "nothing written");
    assert.ok(provider("local") instanceof LocalProvider);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("lifeboat launch --provider local boots the PIT's disk through BIOS and syslinux with the blueprint applied; cleanup stops it", async (t) => {
  const fx = await startSite();
  let agent: Agent | undefined;
  try {
    const token = await createProjectToken(fx.api);
    const source = join(fx.dir, "source.img");
    const before = `written before the PIT ${Date.now().toString(36)}`;
    const disk = await buildBootableDisk(source, { marker: before });
    agent = await Agent.start({
      token,
      disks: [source],
      name: "web-1",
      stateDir: join(fx.dir, "agent"),
      scanIntervalMs: 300,
      statusIntervalMs: 300,
      log: quiet,
    });
    void agent.run();
    const pitHolding = async (m: Machine, hash: string): Promise<{ seq: number; time: number }> =>
      waitFor(
        "a PIT equal to the source disk",
        async () => {
          const last = (await fx.site.replicator.pits(m.timelineId)).at(-1);
          return last && (await sha256OfPit(fx.site, m.timelineId, 0, last.seq)) === hash ? last : undefined;
        },
        120_000,
      );
    const machine = await waitFor(
      "web-1 to reach CONTINUOUS",
      async () => {
        const m = await machineNamed(fx.api, "web-1");
        return m?.replication.state === "CONTINUOUS" ? m : undefined;
      },
      120_000,
    );
    const pit = await pitHolding(machine, await sha256File(source));
    // Written after the PIT: a launch from that PIT must not see it.
    await rewriteMarker(disk, "written after the PIT");
    await pitHolding(machine, await sha256File(source));
    await agent.stop();
    agent = undefined;

    await fx.api.request("PUT", `/api/machines/${machine.id}/blueprint`, {
      instanceType: "local.micro",
      cpus: 2,
      memoryMiB: 144,
      subnet: "192.168.77.0/24",
      ipPolicy: "fixed",
      fixedIp: "192.168.77.50",
      mac: "52:54:00:4c:42:01",
      tags: { drill: "yes" },
    });
    const submitted = await fx.api.post<Job>("/api/launches", {
      machineIds: [machine.id],
      mode: "test",
      provider: "local",
      format: "qcow2", // an export option: the local provider boots raw images whatever it says
      pit: new Date(pit.time).toISOString(),
    });
    const job = await waitFor(
      "the local launch to finish",
      async () => {
        const j = await fx.api.get<Job>(`/api/jobs/${submitted.id}`);
        return j.status === "COMPLETED" || j.status === "FAILED" ? j : undefined;
      },
      300_000,
      500,
    );
    assert.equal(job.status, "COMPLETED", `${job.error ?? ""} ${JSON.stringify(job.log)}`);
    const result = job.machines[0];
    assert.ok(result?.consoleLog && result.startedAt && result.guestUpAt && result.requestedAt);
    assert.equal(result.pitSeq, pit.seq);
    assert.match(result.disks?.[0] ?? "", /\.img$/);
    const ref = dirname(result.consoleLog);
    const record = JSON.parse(await readFile(join(ref, "launch.json"), "utf8")) as LaunchRecord;
    const ms = (iso: string | null | undefined): number =>
      Date.parse(iso ?? "") - Date.parse(result.requestedAt ?? "");
    t.diagnostic(
      `local launch (${record.accel}): request -> accelerator decided ${ms(record.accelDecidedAt)} ms -> disks hydrated ${ms(record.hydratedAt)} ms -> VM started ${ms(result.startedAt)} ms -> first console output ${ms(record.firstOutputAt)} ms -> guest up ${ms(result.guestUpAt)} ms; RTO ${result.rtoSeconds} s`,
    );
    assert.ok(
      job.log.some((l) => /^web-1: (KVM|TCG): /.test(l.message)),
      "the accelerator and its reason are logged",
    );

    // What the guest saw: the data from before the PIT, and the blueprint applied.
    const report = parseGuestReport(await readFile(result.consoleLog, "latin1"));
    assert.ok(report, "ready line on the console");
    assert.equal(report.marker, before);
    assert.equal(report.firmware, "bios");
    assert.equal(report.rootDevice, "/dev/vda2", "virtio disk");
    assert.equal(report.cpus, 2);
    assert.ok(report.ramKiB > 144 * 1024 - 2048 && report.ramKiB <= 144 * 1024, `RAM ${report.ramKiB} KiB`);
    assert.ok(report.memTotalKiB < report.ramKiB);
    assert.equal(report.mac, "52:54:00:4c:42:01");
    assert.equal(report.ip, "192.168.77.50/24");
    assert.deepEqual(record.spec.nic?.network, {
      kind: "isolated",
      subnet: "192.168.77.0/24",
      fixedIp: "192.168.77.50",
    });
    assert.ok(record.spec.oemStrings?.includes("lifeboat.tag.drill=yes"));
    assert.equal((await qemuProcessesMentioning(ref)).length, 1, "the launched machine runs");

    const cleanup = await fx.api.post<Job>("/api/projects/p1/cleanup", {});
    await waitFor(
      "the cleanup to finish",
      async () => (await fx.api.get<Job>(`/api/jobs/${cleanup.id}`)).status === "COMPLETED",
      60_000,
    );
    assert.deepEqual(await qemuProcessesMentioning(ref), [], "no QEMU left");
    assert.equal(await stat(ref).catch(() => null), null, "machine directory removed");
  } finally {
    await agent?.stop();
    const launched = join(fx.dir, "site", "launched");
    for (const name of await readdir(launched).catch(() => [] as string[]))
      await QemuMachine.stopInDir(join(launched, name)).catch(() => undefined);
    await fx.close();
    await removeDir(fx.dir);
  }
});
