/**
 * The test guest's initramfs: busybox-static, the Debian kernel's modules for the disk
 * buses and file system a launched machine may use (virtio, IDE, SCSI; ext4), and an
 * /init that loads them, mounts the root partition and hands over to its init. Written
 * as a gzip'd cpio "newc" archive by our own code, so building one needs no cpio tool.
 */
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { gzipSync } from "node:zlib";
import { UserError } from "../common/errors.js";

/** Modules the guest loads, by name; their dependencies come from modules.dep. */
export const GUEST_MODULES = [
  "virtio_pci",
  "virtio_blk",
  "virtio_scsi",
  "ata_piix",
  "ahci",
  "sd_mod",
  "crc32c_generic",
  "ext4",
  "virtio_net",
] as const;

export interface CpioEntry {
  readonly name: string;
  /** File type and permission bits, e.g. 0o100755 for an executable file. */
  readonly mode: number;
  readonly data?: Buffer;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

export const cpioDir = (name: string): CpioEntry => ({ name, mode: S_IFDIR | 0o755 });
export const cpioFile = (name: string, data: Buffer | string, executable = false): CpioEntry => ({
  name,
  mode: S_IFREG | (executable ? 0o755 : 0o644),
  data: typeof data === "string" ? Buffer.from(data) : data,
});
export const cpioSymlink = (name: string, target: string): CpioEntry => ({
  name,
  mode: S_IFLNK | 0o777,
  data: Buffer.from(target),
});

const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

/** A cpio archive in the "newc" format the kernel unpacks as an initramfs. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const add = (name: string, mode: number, data: Buffer, ino: number): void => {
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [ino, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`);
    parts.push(header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length));
  };
  entries.forEach((e, i) => add(e.name, e.mode, e.data ?? Buffer.alloc(0), i + 1));
  add("TRAILER!!!", 0, Buffer.alloc(0), 0);
  return Buffer.concat(parts);
}

/**
 * Module files (paths relative to `moduleDir`) for `names` and everything they depend on,
 * dependencies first: the order insmod needs.
 */
export function moduleLoadOrder(modulesDep: string, names: readonly string[]): string[] {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const path = line.slice(0, colon);
    deps.set(
      path,
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    );
    byName.set(basename(path).replace(/\.ko(\.[a-z]+)?$/, ""), path);
  }
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (path: string): void => {
    if (seen.has(path)) return;
    seen.add(path);
    if (!path.endsWith(".ko"))
      throw new UserError(`Kernel module ${path} is compressed: busybox insmod loads only plain .ko files`);
    for (const dep of deps.get(path) ?? []) visit(dep);
    order.push(path);
  };
  for (const name of names) {
    const path = byName.get(name) ?? byName.get(name.replace(/_/g, "-"));
    if (path === undefined) throw new UserError(`Kernel module ${name} is not in modules.dep`);
    visit(path);
  }
  return order;
}

/** The initramfs's /init: drivers, root partition (virtio or SCSI/IDE), switch_root. */
export const INITRAMFS_INIT = `#!/bin/busybox sh
# lifeboat test guest, first stage: load drivers, mount the root partition, run its init.
bb=/bin/busybox
$bb mount -t devtmpfs dev /dev
$bb mount -t proc proc /proc
for m in $($bb cat /lib/modules/load-order); do $bb insmod "/lib/modules/$m" 2>/dev/null; done
root=""
i=0
while [ -z "$root" ] && [ $i -lt 300 ]; do
  for d in /dev/vda2 /dev/sda2; do [ -b "$d" ] && root="$d"; done
  [ -z "$root" ] && $bb sleep 0.1
  i=$((i + 1))
done
if [ -z "$root" ] || ! $bb mount -t ext4 "$root" /newroot; then
  echo "lifeboat-guest: failed: no root file system (tried /dev/vda2, /dev/sda2)"
  $bb poweroff -f
fi
$bb umount /proc
$bb mount --move /dev /newroot/dev
exec $bb switch_root /newroot /sbin/init
`;

/** Builds the gzip'd initramfs from the kernel's module tree and a static busybox. */
export async function makeInitramfs(moduleDir: string, busybox: Buffer): Promise<Buffer> {
  const order = moduleLoadOrder(await readFile(join(moduleDir, "modules.dep"), "utf8"), GUEST_MODULES);
  const entries: CpioEntry[] = [
    ...["bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"].map(cpioDir),
    cpioFile("bin/busybox", busybox, true),
    cpioFile("init", INITRAMFS_INIT, true),
    cpioFile("lib/modules/load-order", order.map((p) => basename(p)).join("\n") + "\n"),
  ];
  for (const path of order)
    entries.push(cpioFile(`lib/modules/${basename(path)}`, await readFile(join(moduleDir, path))));
  return gzipSync(cpioNewc(entries), { level: 6 });
}
