/**
 * Builds a small, real, bootable Linux disk for tests: what a source machine's disk looks
 * like, so a launched copy must boot through its firmware and boot loader, never through a
 * QEMU -kernel shortcut. Nothing is mounted; every tool works on the image file.
 *
 * Layout (MBR):
 *   sector 0       syslinux's MBR boot code, the partition table
 *   partition 1    FAT16, bootable: syslinux (BIOS) and systemd-boot (UEFI, EFI/BOOT/BOOTX64.EFI),
 *                  both starting the Debian kernel (vmlinuz) with our initramfs (initrd.img)
 *   partition 2    ext4 root: busybox-static as /sbin/init, the report script, the marker file
 *
 * Host packages: linux-image-amd64, busybox-static, syslinux, syslinux-common, mtools,
 * e2fsprogs, systemd-boot-efi. A missing one fails with a UserError that names it.
 */
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, open, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { UserError } from "../common/errors.js";
import { findTool, requireFile, type HostTool } from "../providers/local/host-tools.js";
import {
  INITTAB,
  LOADER_CONF,
  LOADER_ENTRY,
  MARKER_PATH,
  RC_S,
  SYSLINUX_CFG,
  UDHCPC_SCRIPT,
} from "./bootable-disk-guest.js";
import { makeInitramfs } from "./bootable-disk-initramfs.js";

export * from "./bootable-disk-guest.js";

const run = promisify(execFile);
const MiB = 1024 * 1024;
const SECTOR = 512;

export interface BootableDiskOptions {
  /** Content of /etc/lifeboat-marker on the root file system: one line of printable text. */
  readonly marker: string;
  /** Whole disk, MiB; default 64 (a 32 MiB boot partition, the rest root). */
  readonly sizeMiB?: number;
  /** Kernel version: /boot/vmlinuz-VERSION and /lib/modules/VERSION; default the newest in /boot. */
  readonly kernelVersion?: string;
  /** A statically linked busybox; default /bin/busybox (Debian's busybox-static). */
  readonly busybox?: string;
  readonly signal?: AbortSignal;
}

export interface BootableDisk {
  readonly path: string;
  readonly sizeBytes: number;
  readonly kernelVersion: string;
  /** Byte offsets of the two partitions in the image. */
  readonly bootPartition: { readonly offset: number; readonly size: number };
  readonly rootPartition: { readonly offset: number; readonly size: number };
}

const TOOLS = {
  mformat: { command: "mformat", debianPackage: "mtools" },
  mcopy: { command: "mcopy", debianPackage: "mtools" },
  mmd: { command: "mmd", debianPackage: "mtools" },
  syslinux: { command: "syslinux", debianPackage: "syslinux" },
  mke2fs: { command: "mke2fs", debianPackage: "e2fsprogs" },
} satisfies Record<string, HostTool>;
const SYSLINUX_MBR = "/usr/lib/syslinux/mbr/mbr.bin";
const SYSTEMD_BOOT = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";

/** The newest Debian kernel in /boot and its version, or a UserError naming the package. */
export async function findKernel(): Promise<{ readonly path: string; readonly version: string }> {
  const names = (await readdir("/boot").catch(() => [] as string[])).filter((n) => n.startsWith("vmlinuz-"));
  const newest = names.sort((a, b) => a.localeCompare(b, "en", { numeric: true })).at(-1);
  if (newest === undefined)
    throw new UserError(
      "No kernel in /boot: install the Debian package linux-image-amd64 (apt-get install linux-image-amd64)",
      422,
    );
  return { path: join("/boot", newest), version: newest.slice("vmlinuz-".length) };
}

/** Throws unless `elf` is a statically linked executable (no PT_INTERP program header). */
function checkStatic(elf: Buffer, path: string): void {
  const is64 = elf.readUInt32BE(0) === 0x7f454c46 && elf[4] === 2;
  if (!is64) throw new UserError(`${path} is not a 64-bit ELF executable`);
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === 3)
      throw new UserError(
        `${path} is dynamically linked: install the Debian package busybox-static (apt-get install busybox-static)`,
        422,
      );
  }
}

/** The MBR: boot code, a disk signature, and up to four (type, start, size, bootable) entries. */
export function masterBootRecord(
  bootCode: Buffer,
  partitions: readonly { type: number; startSector: number; sectors: number; bootable: boolean }[],
  signature = 0x4c424f54,
): Buffer {
  if (partitions.length > 4) throw new Error(`An MBR holds 4 partitions, not ${partitions.length}`);
  const mbr = Buffer.alloc(SECTOR);
  bootCode.copy(mbr, 0, 0, Math.min(440, bootCode.length));
  mbr.writeUInt32LE(signature, 440);
  partitions.forEach((p, i) => {
    const at = 446 + i * 16;
    mbr[at] = p.bootable ? 0x80 : 0;
    // CHS fields say "use LBA" (1023/254/63), as for any partition beyond 8 GB.
    mbr.set([0xfe, 0xff, 0xff], at + 1);
    mbr[at + 4] = p.type;
    mbr.set([0xfe, 0xff, 0xff], at + 5);
    mbr.writeUInt32LE(p.startSector, at + 8);
    mbr.writeUInt32LE(p.sectors, at + 12);
  });
  mbr.writeUInt16LE(0xaa55, 510);
  return mbr;
}

/** The root file system's tree: busybox and its applet links, init scripts, the marker. */
async function makeRootTree(
  dir: string,
  busybox: Buffer,
  busyboxPath: string,
  marker: string,
): Promise<void> {
  for (const d of ["bin", "sbin", "etc/init.d", "dev", "proc", "sys", "run", "tmp", "var/lib/lifeboat"])
    await mkdir(join(dir, d), { recursive: true });
  await writeFile(join(dir, "bin/busybox"), busybox, { mode: 0o755 });
  const { stdout } = await run(busyboxPath, ["--list"]);
  for (const applet of stdout.split("\n").filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== "busybox"))
    await symlink("busybox", join(dir, "bin", applet));
  await symlink("../bin/busybox", join(dir, "sbin/init"));
  await symlink("../bin/busybox", join(dir, "sbin/poweroff"));
  await writeFile(join(dir, "etc/inittab"), INITTAB);
  await writeFile(join(dir, "etc/init.d/rcS"), RC_S, { mode: 0o755 });
  await writeFile(join(dir, "etc/udhcpc.script"), UDHCPC_SCRIPT, { mode: 0o755 });
  await writeFile(join(dir, MARKER_PATH), `${marker}\n`);
  await chmod(join(dir, "tmp"), 0o1777);
}

/**
 * Writes a bootable disk image to `path` (it must not exist): BIOS and UEFI both boot it,
 * and its init prints the marker, CPU count, memory, MAC, IP, root device and firmware on
 * the serial console, then `lifeboat-guest: ready`.
 */
export async function buildBootableDisk(path: string, options: BootableDiskOptions): Promise<BootableDisk> {
  if (!/^[\x20-\x7e]{1,200}$/.test(options.marker))
    throw new UserError(
      `Marker must be 1 to 200 printable ASCII characters: ${JSON.stringify(options.marker)}`,
    );
  const sizeMiB = options.sizeMiB ?? 64;
  if (!Number.isInteger(sizeMiB) || sizeMiB < 48)
    throw new UserError(`Disk size ${sizeMiB} MiB: need at least 48`);
  const tools = {
    mformat: await findTool(TOOLS.mformat),
    mcopy: await findTool(TOOLS.mcopy),
    mmd: await findTool(TOOLS.mmd),
    syslinux: await findTool(TOOLS.syslinux),
    mke2fs: await findTool(TOOLS.mke2fs),
  };
  const mbrCode = await readFile(await requireFile(SYSLINUX_MBR, "syslinux-common"));
  const systemdBoot = await requireFile(SYSTEMD_BOOT, "systemd-boot-efi");
  const version = options.kernelVersion ?? (await findKernel()).version;
  const kernel = await requireFile(join("/boot", `vmlinuz-${version}`), `linux-image-${version}`);
  const moduleDir = join("/lib/modules", version);
  await requireFile(join(moduleDir, "modules.dep"), `linux-image-${version}`);
  const busyboxPath = options.busybox ?? "/bin/busybox";
  const busybox = await readFile(busyboxPath).catch((err: unknown) => {
    throw new UserError(
      `${busyboxPath} is missing: install the Debian package busybox-static (apt-get install busybox-static)`,
      422,
      { cause: err },
    );
  });
  checkStatic(busybox, busyboxPath);

  const boot = { offset: MiB, size: 32 * MiB };
  const root = { offset: boot.offset + boot.size, size: sizeMiB * MiB - boot.offset - boot.size };
  const signal = options.signal;
  const exec = (file: string, args: readonly string[]) =>
    run(file, args, { env: { ...process.env, MTOOLS_SKIP_CHECK: "1" }, ...(signal ? { signal } : {}) });
  const fh = await open(path, "wx").catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === "EEXIST")
      throw new UserError(`${path} already exists: choose a new path for the disk image`, 409, {
        cause: err,
      });
    throw err;
  });
  const work = await mkdtemp(join(tmpdir(), "lifeboat-disk-"));
  try {
    try {
      await fh.truncate(sizeMiB * MiB);
      const mbr = masterBootRecord(mbrCode, [
        { type: 0x0e, startSector: boot.offset / SECTOR, sectors: boot.size / SECTOR, bootable: true },
        { type: 0x83, startSector: root.offset / SECTOR, sectors: root.size / SECTOR, bootable: false },
      ]);
      await fh.write(mbr, 0, SECTOR, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }

    // Boot partition: FAT16 that knows its offset (hidden sectors), files, then syslinux.
    const fat = `${path}@@${boot.offset}`;
    // prettier-ignore
    await exec(tools.mformat, ["-i", fat, "-T", String(boot.size / SECTOR), "-h", "64", "-s", "32",
      "-H", String(boot.offset / SECTOR), "-v", "LBBOOT", "::"]);
    const files: [string, string | Buffer][] = [
      ["initrd.img", await makeInitramfs(moduleDir, busybox)],
      ["syslinux.cfg", SYSLINUX_CFG],
      ["loader.conf", LOADER_CONF],
      ["lifeboat.conf", LOADER_ENTRY],
    ];
    for (const [name, data] of files) await writeFile(join(work, name), data);
    await exec(tools.mmd, ["-i", fat, "::EFI", "::EFI/BOOT", "::loader", "::loader/entries"]);
    const copies: [string, string][] = [
      [kernel, "::vmlinuz"],
      [join(work, "initrd.img"), "::initrd.img"],
      [join(work, "syslinux.cfg"), "::syslinux.cfg"],
      [systemdBoot, "::EFI/BOOT/BOOTX64.EFI"],
      [join(work, "loader.conf"), "::loader/loader.conf"],
      [join(work, "lifeboat.conf"), "::loader/entries/lifeboat.conf"],
    ];
    for (const [from, to] of copies) await exec(tools.mcopy, ["-i", fat, from, to]);
    await exec(tools.syslinux, ["--install", "--offset", String(boot.offset), path]);

    // Root partition: ext4 made from a directory, written in place at its offset.
    const tree = join(work, "root");
    await makeRootTree(tree, busybox, busyboxPath, options.marker);
    // prettier-ignore
    await exec(tools.mke2fs, ["-q", "-F", "-t", "ext4", "-L", "lifeboat-root", "-d", tree,
      "-E", `offset=${root.offset}`, path, `${root.size / 1024}k`]);
    return {
      path,
      sizeBytes: sizeMiB * MiB,
      kernelVersion: version,
      bootPartition: boot,
      rootPartition: root,
    };
  } catch (err) {
    await rm(path, { force: true }).catch(() => undefined);
    throw err;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Replaces the marker file's content in an existing image (debugfs, no mounting). */
export async function rewriteMarker(disk: BootableDisk, marker: string): Promise<void> {
  if (!/^[\x20-\x7e]{1,200}$/.test(marker))
    throw new UserError(`Marker must be 1 to 200 printable ASCII characters: ${JSON.stringify(marker)}`);
  const debugfs = await findTool({ command: "debugfs", debianPackage: "e2fsprogs" });
  const work = await mkdtemp(join(tmpdir(), "lifeboat-marker-"));
  try {
    const file = join(work, "marker");
    await writeFile(file, `${marker}\n`);
    const image = `${disk.path}?offset=${disk.rootPartition.offset}`;
    await run(debugfs, ["-w", "-R", `rm ${MARKER_PATH}`, image]);
    await run(debugfs, ["-w", "-R", `write ${file} ${MARKER_PATH}`, image]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The marker file's content as stored in the image (debugfs, no mounting). */
export async function readMarker(disk: BootableDisk): Promise<string> {
  const debugfs = await findTool({ command: "debugfs", debianPackage: "e2fsprogs" });
  const { stdout } = await run(debugfs, [
    "-R",
    `cat ${MARKER_PATH}`,
    `${disk.path}?offset=${disk.rootPartition.offset}`,
  ]);
  return stdout.replace(/\n$/, "");
}
