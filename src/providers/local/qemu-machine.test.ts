import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { UserError } from "../../common/errors.js";
import { waitFor } from "../../common/wait-for.js";
import {
  buildBootableDisk,
  GUEST_FAILED_PATTERN,
  GUEST_READY_LINE,
  parseGuestReport,
} from "../../testing/bootable-disk.js";
import { accelVerdict } from "./kvm-probe.js";
import { checkSpec, qemuArgs, QemuMachine, type QemuMachineSpec } from "./qemu-machine.js";

const run = promisify(execFile);

const spec = (patch: Partial<QemuMachineSpec> = {}): QemuMachineSpec => ({
  name: "web-1",
  cpus: 2,
  memoryMiB: 256,
  disks: [{ source: "/d/disk0.img", format: "raw", bus: "virtio" }],
  nic: {
    mac: "52:54:00:12:34:56",
    network: { kind: "isolated", subnet: "192.168.77.0/24", fixedIp: "192.168.77.50" },
  },
  bootMode: "bios",
  ...patch,
});
const where = { accel: "tcg" as const, dir: "/m", qmpSocket: "/m/qmp.sock" };
const joined = (args: string[]): string => args.join(" ");

test("qemuArgs() applies CPUs, memory, disks on each bus, firmware, network and tags", () => {
  const base = joined(qemuArgs(spec(), where));
  for (const part of [
    "-accel tcg -cpu max -smp 2 -m 256",
    "-serial file:/m/console.log",
    "-qmp unix:/m/qmp.sock,server=on,wait=off",
    "-drive file=/d/disk0.img,format=raw,if=none,id=disk0,discard=unmap -device virtio-blk-pci,drive=disk0,bootindex=0",
    "-netdev user,id=net0,restrict=on,net=192.168.77.0/24,dhcpstart=192.168.77.50",
    "-device virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56",
  ])
    assert.ok(base.includes(part), `${part} in ${base}`);
  assert.ok(!base.includes("pflash"));

  const disks = joined(
    qemuArgs(
      spec({
        bootMode: "uefi",
        disks: [
          { source: "nbd+unix:///disk?socket=/s,1", format: "raw", bus: "scsi" },
          { source: "/d/a.img", format: "raw", bus: "ide" },
          { source: "/d/b.img", format: "qcow2", bus: "ide" },
          { source: "/d/c.img", format: "raw", bus: "ide" },
        ],
        nic: { mac: "52:54:00:00:00:01", network: { kind: "user", subnet: "10.0.2.0/24", fixedIp: null } },
        oemStrings: ["lifeboat.tag.env=a,b"],
      }),
      { ...where, accel: "kvm" },
    ),
  );
  for (const part of [
    "-accel kvm -cpu host",
    "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
    "if=pflash,format=raw,unit=1,file=/m/OVMF_VARS.fd",
    "-device virtio-scsi-pci,id=scsi0",
    "file=nbd+unix:///disk?socket=/s,,1,format=raw",
    "-device scsi-hd,drive=disk0,bus=scsi0.0,scsi-id=0,bootindex=0",
    "-device ide-hd,drive=disk1,bus=ide.0,unit=0 ",
    "-device ide-hd,drive=disk2,bus=ide.0,unit=1 ",
    "-device ide-hd,drive=disk3,bus=ide.1,unit=0 ",
    "format=qcow2",
    "-netdev user,id=net0,net=10.0.2.0/24 ",
    "-smbios type=11,value=lifeboat.tag.env=a,,b",
  ])
    assert.ok(disks.includes(part), `${part} in ${disks}`);
  assert.ok(!joined(qemuArgs(spec({ nic: null }), where)).includes("-netdev"));
  assert.ok(
    joined(
      qemuArgs(
        spec({ nic: { mac: "52:54:00:00:00:02", network: { kind: "bridge", bridge: "br0" } } }),
        where,
      ),
    ).includes("-netdev bridge,id=net0,br=br0"),
  );
});

test("checkSpec() refuses what QEMU would refuse, with what to change", () => {
  const refused = (s: QemuMachineSpec, pattern: RegExp): void =>
    assert.throws(
      () => checkSpec(s),
      (err: unknown) => err instanceof UserError && pattern.test(err.message),
    );
  refused(spec({ cpus: 0 }), /0 CPUs/);
  refused(spec({ memoryMiB: 8 }), /8 MiB/);
  refused(spec({ disks: [] }), /no disks/);
  refused(
    spec({ disks: Array.from({ length: 5 }, () => ({ source: "/x", format: "raw", bus: "ide" as const })) }),
    /5 IDE disks/,
  );
  refused(spec({ nic: { mac: "nope", network: { kind: "bridge", bridge: "br0" } } }), /MAC nope/);
});

test("QemuMachine.start() reports QEMU's own error and leaves nothing running", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-qm-"));
  try {
    await assert.rejects(
      QemuMachine.start(
        spec({ disks: [{ source: join(dir, "missing.img"), format: "raw", bus: "virtio" }] }),
        {
          dir,
          accel: "tcg",
        },
      ),
      /QEMU exited at once for machine web-1: .*missing\.img/,
    );
    assert.equal(await QemuMachine.stopInDir(dir), false, "nothing recorded, nothing running");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Live QEMU processes whose command line mentions `text`. */
async function qemuProcessesMentioning(text: string): Promise<number[]> {
  const { stdout } = await run("ps", ["-eo", "pid=,stat=,args="]);
  return stdout
    .split("\n")
    .filter((l) => l.includes("qemu-system") && l.includes(text) && !/^\s*\d+\s+Z/.test(l))
    .map((l) => Number.parseInt(l.trim(), 10));
}

test("QemuMachine boots a UEFI machine from a disk served over NBD, on SCSI, and stops it", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-qm-"));
  const socket = join(dir, "nbd.sock");
  let nbd: ReturnType<typeof spawn> | undefined;
  let machine: QemuMachine | undefined;
  try {
    const disk = await buildBootableDisk(join(dir, "disk.img"), { marker: "served over NBD" });
    // qemu-nbd stands in for the replicator's NBD server (a PIT's branch): the VM reads and writes through it.
    nbd = spawn(
      "qemu-nbd",
      ["--format=raw", "--export-name=disk", `--socket=${socket}`, "--persistent", disk.path],
      {
        stdio: "ignore",
      },
    );
    await waitFor("qemu-nbd to listen", async () => stat(socket).then((st) => st.isSocket()), 10_000);
    const { accel } = await accelVerdict();
    const requested = Date.now();
    machine = await QemuMachine.start(
      {
        name: "nbd-uefi",
        cpus: 1,
        memoryMiB: 256,
        disks: [{ source: `nbd+unix:///disk?socket=${socket}`, format: "raw", bus: "scsi" }],
        nic: { mac: "52:54:00:0b:00:01", network: { kind: "user", subnet: "10.0.2.0/24", fixedIp: null } },
        bootMode: "uefi",
      },
      { dir: join(dir, "vm"), accel },
    );
    const up = await machine.waitForConsole(new RegExp(GUEST_READY_LINE), {
      timeoutMs: 300_000,
      failPattern: GUEST_FAILED_PATTERN,
    });
    t.diagnostic(
      `UEFI over NBD (${accel}): started ${machine.startedAt.getTime() - requested} ms, first output ${(machine.firstOutputAt?.getTime() ?? NaN) - requested} ms, ready ${up.at.getTime() - requested} ms`,
    );
    const report = parseGuestReport(await machine.consoleOutput());
    assert.ok(report);
    assert.equal(report.marker, "served over NBD");
    assert.equal(report.firmware, "uefi");
    assert.equal(report.rootDevice, "/dev/sda2", "SCSI disk");
    assert.equal(report.cpus, 1);
    assert.ok(
      report.memTotalKiB <= 256 * 1024 && report.memTotalKiB > 128 * 1024,
      `MemTotal ${report.memTotalKiB} KiB`,
    );
    assert.equal(report.mac, "52:54:00:0b:00:01");
    assert.equal(report.ip, "10.0.2.15/24");
    await machine.stop();
    assert.equal(await machine.running(), false);
    assert.deepEqual(await qemuProcessesMentioning(dir), []);
    // The guest's write went through NBD into the served image.
    const { stdout } = await run("debugfs", [
      "-R",
      "cat /var/lib/lifeboat/boots",
      `${disk.path}?offset=${disk.rootPartition.offset}`,
    ]);
    assert.equal(stdout.trim(), "boot");
  } finally {
    await machine?.stop().catch(() => undefined);
    if (nbd && nbd.exitCode === null && nbd.signalCode === null) {
      const gone = new Promise((resolve) => nbd?.once("exit", resolve));
      nbd.kill("SIGKILL");
      await gone;
    }
    await rm(dir, { recursive: true, force: true });
  }
});
