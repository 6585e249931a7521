import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { UserError } from "../common/errors.js";
import { buildBootableDisk, parseGuestReport, readMarker, rewriteMarker } from "./bootable-disk.js";
import { cpioDir, cpioFile, cpioNewc, moduleLoadOrder } from "./bootable-disk-initramfs.js";

const run = promisify(execFile);

test("buildBootableDisk() writes an MBR disk with a syslinux/systemd-boot FAT partition and an ext4 root", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-disk-test-"));
  try {
    const disk = await buildBootableDisk(join(dir, "disk.img"), { marker: "before the PIT" });
    const fh = await open(disk.path, "r");
    const mbr = Buffer.alloc(512);
    try {
      await fh.read(mbr, 0, 512, 0);
    } finally {
      await fh.close();
    }
    assert.equal(mbr.readUInt16LE(510), 0xaa55);
    assert.equal(mbr[446], 0x80, "partition 1 is bootable");
    assert.equal(mbr[446 + 4], 0x0e);
    assert.equal(mbr.readUInt32LE(446 + 8) * 512, disk.bootPartition.offset);
    assert.equal(mbr[462 + 4], 0x83);
    assert.equal(mbr.readUInt32LE(462 + 8) * 512, disk.rootPartition.offset);
    assert.equal((mbr.readUInt32LE(462 + 8) + mbr.readUInt32LE(462 + 12)) * 512, disk.sizeBytes);

    const fat = `${disk.path}@@${disk.bootPartition.offset}`;
    const env = { ...process.env, MTOOLS_SKIP_CHECK: "1" };
    const { stdout: listing } = await run("mdir", ["-i", fat, "-/", "-a", "-b", "::"], { env });
    for (const file of [
      "::/vmlinuz",
      "::/initrd.img",
      "::/syslinux.cfg",
      "::/ldlinux.sys",
      "::/EFI/BOOT/BOOTX64.EFI",
    ])
      assert.ok(listing.toLowerCase().includes(file.toLowerCase()), `${file} in ${listing}`);
    const { stdout: cfg } = await run("mtype", ["-i", fat, "::/syslinux.cfg"], { env });
    assert.match(cfg, /APPEND console=ttyS0/);

    assert.equal(await readMarker(disk), "before the PIT");
    await rewriteMarker(disk, "after the PIT");
    assert.equal(await readMarker(disk), "after the PIT");
    const { stdout: fsck } = await run("e2fsck", [
      "-fn",
      `${disk.path}?offset=${disk.rootPartition.offset}`,
    ]).catch((err: { stdout: string; stderr: string }) => ({ stdout: `${err.stdout}${err.stderr}` }));
    assert.match(fsck, /lifeboat-root: \d+\/\d+ files/, fsck);

    await assert.rejects(
      buildBootableDisk(disk.path, { marker: "x" }),
      (err: unknown) => err instanceof UserError && err.status === 409,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("buildBootableDisk() refuses a dynamically linked busybox, naming busybox-static, and bad markers", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-disk-test-"));
  try {
    await assert.rejects(
      buildBootableDisk(join(dir, "a.img"), { marker: "m", busybox: process.execPath }),
      /dynamically linked: install the Debian package busybox-static/,
    );
    await assert.rejects(buildBootableDisk(join(dir, "b.img"), { marker: "two\nlines" }), /printable ASCII/);
    await assert.rejects(readFile(join(dir, "a.img")), /ENOENT/, "a failed build leaves no image");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("moduleLoadOrder() puts every dependency before the module that needs it", () => {
  const dep = [
    "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko",
    "kernel/fs/jbd2/jbd2.ko:",
    "kernel/fs/mbcache.ko:",
    "kernel/lib/crc16.ko:",
    "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio_ring.ko:",
    "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
  ].join("\n");
  const order = moduleLoadOrder(dep, ["virtio_blk", "ext4"]).map((p) => p.split("/").at(-1));
  assert.deepEqual(order, [
    "virtio_ring.ko",
    "virtio.ko",
    "virtio_blk.ko",
    "crc16.ko",
    "mbcache.ko",
    "jbd2.ko",
    "ext4.ko",
  ]);
  assert.throws(() => moduleLoadOrder(dep, ["nope"]), /nope is not in modules.dep/);
  assert.throws(() => moduleLoadOrder("kernel/x.ko.xz:\n", ["x"]), /compressed/);
});

test("cpioNewc() writes an archive cpio itself reads back", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-cpio-test-"));
  try {
    const archive = cpioNewc([
      cpioDir("etc"),
      cpioFile("etc/hello", "hello\n"),
      cpioFile("init", "#!/bin/sh\n", true),
    ]);
    assert.equal(archive.length % 4, 0);
    const path = join(dir, "a.cpio");
    await writeFile(path, archive);
    const listed = await run("sh", ["-c", `cpio -it --quiet < ${path}`]).catch(() => null);
    if (listed === null) return t.skip("no cpio here to read the archive back");
    assert.deepEqual(listed.stdout.trim().split("\n"), ["etc", "etc/hello", "init"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("parseGuestReport() reads the guest's lines once it is ready", () => {
  const log = [
    "SYSLINUX 6.04",
    "lifeboat-guest: marker hello world\r",
    "lifeboat-guest: boots 1",
    "lifeboat-guest: cpus 2",
    "lifeboat-guest: memtotal-kib 81660",
    "lifeboat-guest: ram-kib 130552",
    "lifeboat-guest: root /dev/vda2",
    "lifeboat-guest: firmware bios",
    "lifeboat-guest: mac 52:54:00:12:34:56",
    "lifeboat-guest: ip 10.0.2.15/24",
  ].join("\n");
  assert.equal(parseGuestReport(log), undefined);
  assert.deepEqual(parseGuestReport(`${log}\nlifeboat-guest: ready\n`), {
    marker: "hello world",
    boots: 1,
    cpus: 2,
    memTotalKiB: 81660,
    ramKiB: 130552,
    rootDevice: "/dev/vda2",
    firmware: "bios",
    mac: "52:54:00:12:34:56",
    ip: "10.0.2.15/24",
  });
});
