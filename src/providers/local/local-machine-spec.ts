/**
 * How the local provider turns a blueprint into a QEMU machine: size (copy of the source,
 * at least its CPUs and memory, or a named instance type from the catalog below), network
 * (test mode: always an isolated network; recovery: the blueprint's), IP policy, MAC, disk
 * bus, firmware and tags. Every check happens here, before anything is written or started,
 * and fails with a UserError that says what to change.
 */
import { createHash } from "node:crypto";
import { isIPv4 } from "node:net";
import { availableParallelism, totalmem } from "node:os";
import { UserError } from "../../common/errors.js";
import type { Blueprint, BootMode } from "../../common/model.js";
import type { LaunchMode } from "../../common/states.js";
import type { QemuNetwork, QemuNic } from "./qemu-machine.js";

export interface InstanceType {
  readonly name: string;
  readonly cpus: number;
  readonly memoryMiB: number;
}

/** Named sizes a blueprint's instanceType may use with the local provider. */
export const LOCAL_INSTANCE_TYPES: readonly InstanceType[] = [
  { name: "local.micro", cpus: 1, memoryMiB: 256 },
  { name: "local.small", cpus: 1, memoryMiB: 1024 },
  { name: "local.medium", cpus: 2, memoryMiB: 4096 },
  { name: "local.large", cpus: 4, memoryMiB: 8192 },
  { name: "local.xlarge", cpus: 8, memoryMiB: 16384 },
];

export interface SizeLimits {
  /** Most vCPUs one machine may have; default the host's CPU count. */
  readonly maxCpus: number;
  /** Most memory one machine may have; default three quarters of the host's. */
  readonly maxMemoryMiB: number;
  /** Least memory a machine boots with, per firmware (OVMF itself needs about 128 MiB). */
  readonly minMemoryMiB: Readonly<Record<BootMode, number>>;
}

export function defaultSizeLimits(): SizeLimits {
  return {
    maxCpus: availableParallelism(),
    maxMemoryMiB: Math.floor((totalmem() / (1024 * 1024)) * 0.75),
    minMemoryMiB: { bios: 128, uefi: 256 },
  };
}

export interface MachineSize {
  readonly cpus: number;
  readonly memoryMiB: number;
  /** How the size was chosen, for the job log. */
  readonly basis: string;
}

/**
 * CPUs and memory: "copy-of-source" takes at least the source's (more when the blueprint
 * asks for more); a catalog type takes its own, and the blueprint's cpus/memoryMiB, when
 * set, override it. Then the limits apply.
 */
export function machineSize(
  blueprint: Pick<Blueprint, "instanceType" | "cpus" | "memoryMiB" | "bootMode">,
  source: { readonly cpus: number; readonly memoryMiB: number } | undefined,
  limits: SizeLimits,
): MachineSize {
  let size: MachineSize;
  if (blueprint.instanceType === "copy-of-source") {
    if (source === undefined && (blueprint.cpus === null || blueprint.memoryMiB === null))
      throw new UserError(
        "Blueprint says copy-of-source but the source's size is unknown: set cpus and memoryMiB, or a named instanceType",
      );
    size = {
      cpus: Math.max(source?.cpus ?? 0, blueprint.cpus ?? 0),
      memoryMiB: Math.max(source?.memoryMiB ?? 0, blueprint.memoryMiB ?? 0),
      basis: `copy of source (${source ? `${source.cpus} CPUs, ${source.memoryMiB} MiB` : "size unknown"})`,
    };
  } else {
    const type = LOCAL_INSTANCE_TYPES.find((t) => t.name === blueprint.instanceType);
    if (type === undefined)
      throw new UserError(
        `Unknown instance type ${blueprint.instanceType} for the local provider: use copy-of-source or one of ${LOCAL_INSTANCE_TYPES.map((t) => t.name).join(", ")}`,
      );
    size = {
      cpus: blueprint.cpus ?? type.cpus,
      memoryMiB: blueprint.memoryMiB ?? type.memoryMiB,
      basis: `instance type ${type.name}`,
    };
  }
  if (size.cpus > limits.maxCpus)
    throw new UserError(
      `Blueprint asks for ${size.cpus} CPUs (${size.basis}): this host allows at most ${limits.maxCpus} per machine; choose a smaller instance type or set cpus`,
    );
  if (size.cpus < 1) throw new UserError(`Blueprint asks for ${size.cpus} CPUs: a machine needs at least 1`);
  const min = limits.minMemoryMiB[blueprint.bootMode];
  if (size.memoryMiB < min)
    throw new UserError(
      `Blueprint asks for ${size.memoryMiB} MiB of memory (${size.basis}): a ${blueprint.bootMode.toUpperCase()} machine needs at least ${min} MiB; set memoryMiB`,
    );
  if (size.memoryMiB > limits.maxMemoryMiB)
    throw new UserError(
      `Blueprint asks for ${size.memoryMiB} MiB of memory (${size.basis}): this host allows at most ${limits.maxMemoryMiB} MiB per machine; choose a smaller instance type or set memoryMiB`,
    );
  return size;
}

const DEFAULT_SUBNET = "10.0.2.0/24";

function ipToInt(ip: string): number {
  return ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** The blueprint's subnet as a CIDR QEMU's DHCP can serve ("default": 10.0.2.0/24). */
function subnetOf(blueprint: Pick<Blueprint, "subnet">): { cidr: string; base: number; size: number } {
  const cidr = blueprint.subnet === "default" ? DEFAULT_SUBNET : blueprint.subnet;
  const match = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(cidr);
  const prefix = Number(match?.[2]);
  if (!match?.[1] || !isIPv4(match[1]) || !(prefix >= 8 && prefix <= 28))
    throw new UserError(
      `Subnet ${blueprint.subnet} is not an IPv4 network the local provider can serve: use default or a CIDR from /8 to /28 such as 192.168.50.0/24`,
    );
  const size = 2 ** (32 - prefix);
  const base = ipToInt(match[1]) - (ipToInt(match[1]) % size);
  return { cidr, base, size };
}

/**
 * The machine's network. Test mode always gets an isolated network (a drill must not talk
 * to production); recovery and cutover get the blueprint's: "default" or "user" (NAT
 * through the host), "isolated", "none", or the name of a host bridge.
 */
export function machineNetwork(
  blueprint: Pick<Blueprint, "network" | "subnet" | "ipPolicy" | "fixedIp">,
  mode: LaunchMode,
): QemuNetwork | null {
  const network = mode === "test" ? "isolated" : blueprint.network;
  if (network === "none") return null;
  if (network !== "default" && network !== "user" && network !== "isolated") {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(network))
      throw new UserError(`Network ${network} is not a host bridge name (1 to 15 of A-Z a-z 0-9 _ . -)`);
    if (blueprint.ipPolicy !== "new-from-subnet")
      throw new UserError(
        `IP policy ${blueprint.ipPolicy} on bridge ${network}: the bridge's own DHCP assigns addresses; use new-from-subnet, or the user network`,
      );
    return { kind: "bridge", bridge: network };
  }
  const subnet = subnetOf(blueprint);
  let fixedIp: string | null = null;
  if (blueprint.ipPolicy === "fixed") {
    const ip = blueprint.fixedIp ?? "";
    if (!isIPv4(ip)) throw new UserError(`Blueprint's fixedIp ${ip || "(none)"} is not an IPv4 address`);
    const host = ipToInt(ip) - subnet.base;
    // QEMU keeps .2 (gateway) and .3 (DNS) of the subnet for itself.
    if (host < 4 || host >= subnet.size - 1)
      throw new UserError(
        `Fixed IP ${ip} is not a usable host address of subnet ${subnet.cidr} (the first four and the last are reserved)`,
      );
    fixedIp = ip;
  } else if (blueprint.ipPolicy === "copy-source") {
    throw new UserError(
      "IP policy copy-source needs the source's address, which agents do not report yet: use new-from-subnet or fixed",
    );
  }
  return { kind: network === "isolated" ? "isolated" : "user", subnet: subnet.cidr, fixedIp };
}

/** The blueprint's MAC, or a stable one derived from the machine id (QEMU's 52:54:00 prefix). */
export function machineMac(blueprint: Pick<Blueprint, "mac">, machineId: string): string {
  if (blueprint.mac !== null) {
    if (
      !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(blueprint.mac) ||
      (parseInt(blueprint.mac.slice(0, 2), 16) & 1) === 1
    )
      throw new UserError(`Blueprint's MAC ${blueprint.mac} is not a unicast MAC address`);
    return blueprint.mac.toLowerCase();
  }
  const h = createHash("sha256").update(machineId).digest();
  return ["52", "54", "00", ...[...h.subarray(0, 3)].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}

export function machineNic(
  blueprint: Pick<Blueprint, "network" | "subnet" | "ipPolicy" | "fixedIp" | "mac">,
  mode: LaunchMode,
  machineId: string,
): QemuNic | null {
  const network = machineNetwork(blueprint, mode);
  return network === null ? null : { mac: machineMac(blueprint, machineId), network };
}

/** The blueprint's tags as SMBIOS OEM strings (`lifeboat.tag.KEY=VALUE`), with the machine and mode. */
export function machineOemStrings(
  blueprint: Pick<Blueprint, "tags">,
  machineId: string,
  mode: LaunchMode,
): string[] {
  return [
    `lifeboat.machine=${machineId}`,
    `lifeboat.mode=${mode}`,
    ...Object.entries(blueprint.tags).map(([k, v]) => `lifeboat.tag.${k}=${v}`),
  ];
}
