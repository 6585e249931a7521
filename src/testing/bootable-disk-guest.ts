/**
 * What the test guest runs once its root file system is up, and how to read what it
 * reports. The guest prints `lifeboat-guest: KEY VALUE` lines on its serial console (the
 * marker file, its CPU count, memory, MAC, IP, root device and firmware), then the ready
 * line; a test compares them with what the blueprint asked for.
 */

export const GUEST_PREFIX = "lifeboat-guest:";
export const GUEST_READY_LINE = `${GUEST_PREFIX} ready`;
/** Printed instead of the ready line when the guest cannot come up. */
export const GUEST_FAILED_PATTERN = /lifeboat-guest: failed: .*|Kernel panic - not syncing: .*/;
/** Where the root file system keeps the caller's marker. */
export const MARKER_PATH = "/etc/lifeboat-marker";

export const INITTAB = `::sysinit:/etc/init.d/rcS
::ctrlaltdel:/sbin/poweroff -f
::shutdown:/bin/umount -a -r
`;

/** The root file system's boot script: report, configure eth0 by DHCP, report, ready. */
export const RC_S = `#!/bin/sh
# lifeboat test guest: report what this machine sees, then say it is ready.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs run /run
hostname lifeboat-guest
say() { echo "${GUEST_PREFIX} $1 $2"; }
mkdir -p /var/lib/lifeboat
echo boot >> /var/lib/lifeboat/boots
sync
say marker "$(cat ${MARKER_PATH})"
say boots "$(wc -l < /var/lib/lifeboat/boots)"
say cpus "$(nproc)"
say memtotal-kib "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
say ram-kib "$(dmesg | sed -n 's|.*Memory: [0-9]*K/\\([0-9]*\\)K available.*|\\1|p')"
say root "$(awk '$2 == "/" { print $1 }' /proc/mounts)"
if [ -d /sys/firmware/efi ]; then say firmware uefi; else say firmware bios; fi
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  say mac "$(cat /sys/class/net/eth0/address)"
  ip link set eth0 up
  udhcpc -i eth0 -n -q -t 8 -T 1 -s /etc/udhcpc.script > /dev/null 2>&1
  say ip "$(ip -4 -o addr show dev eth0 | awk '{ print $4 }')"
else
  say ip none
fi
echo "${GUEST_READY_LINE}"
`;

/** busybox udhcpc calls this with the lease in its environment. */
export const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "\${router%% *}" dev "$interface"
    ;;
esac
exit 0
`;

const KERNEL_ARGS = "console=ttyS0,115200 quiet";

/** syslinux (BIOS): boot the kernel at once, talking on the first serial port. */
export const SYSLINUX_CFG = `SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT lifeboat
LABEL lifeboat
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND ${KERNEL_ARGS}
`;

/** systemd-boot (UEFI): the same kernel and arguments. */
export const LOADER_CONF = "default lifeboat.conf\ntimeout 0\n";
export const LOADER_ENTRY = `title lifeboat test guest
linux /vmlinuz
initrd /initrd.img
options ${KERNEL_ARGS}
`;

export interface GuestReport {
  readonly marker: string;
  /** Lines in /var/lib/lifeboat/boots: how many times this disk has booted. */
  readonly boots: number;
  readonly cpus: number;
  /** MemTotal from /proc/meminfo: RAM less what the kernel keeps. */
  readonly memTotalKiB: number;
  /** RAM the kernel found (its "Memory: .../NK available" line): about what QEMU gave it. */
  readonly ramKiB: number;
  /** The root file system's device: /dev/vda2 (virtio) or /dev/sda2 (IDE, SCSI). */
  readonly rootDevice: string;
  readonly firmware: "bios" | "uefi";
  readonly mac: string | null;
  /** eth0's address with its prefix (10.0.2.15/24), or null when it has none. */
  readonly ip: string | null;
}

/** The report in a serial log, once the ready line is there; undefined before. */
export function parseGuestReport(serialLog: string): GuestReport | undefined {
  const values = new Map<string, string>();
  let ready = false;
  for (const raw of serialLog.split(/\r?\n/)) {
    const line = raw.replace(/\r/g, "");
    const at = line.indexOf(GUEST_PREFIX);
    if (at < 0) continue;
    const rest = line.slice(at + GUEST_PREFIX.length).trim();
    if (rest === "ready") ready = true;
    const space = rest.indexOf(" ");
    if (space > 0) values.set(rest.slice(0, space), rest.slice(space + 1));
  }
  if (!ready) return undefined;
  const text = (key: string): string => values.get(key) ?? "";
  const num = (key: string): number => Number.parseInt(text(key), 10);
  const optional = (key: string): string | null =>
    text(key) === "" || text(key) === "none" ? null : text(key);
  return {
    marker: text("marker"),
    boots: num("boots"),
    cpus: num("cpus"),
    memTotalKiB: num("memtotal-kib"),
    ramKiB: num("ram-kib"),
    rootDevice: text("root"),
    firmware: text("firmware") === "uefi" ? "uefi" : "bios",
    mac: optional("mac"),
    ip: optional("ip"),
  };
}
