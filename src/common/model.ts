/**
 * The records the console keeps and its API returns. Plain data: the REST API serialises
 * them as JSON, the state store persists them, the CLI prints them.
 */
import type {
  InitiatingStep,
  JobKind,
  JobStatus,
  LaunchMode,
  Lifecycle,
  ProjectType,
  ReplicationDirection,
  ReplicationState,
} from "./states.js";
import { DEFAULT_RETENTION_POLICY, type RetentionPolicy } from "../store/retention/retention-policy.js";

export interface ProjectSettings {
  /** Replication bandwidth limit per machine in Mbit/s; 0 means unlimited. */
  readonly bandwidthLimitMbps: number;
  /**
   * Which PITs are kept: every PIT for a window, then thinning tiers (src/store/retention/).
   * It replaced `pitRetentionSeconds`; the state store upgrades projects stored with that.
   */
  readonly retention: RetentionPolicy;
  /** Staging location: "local" (the replicator's data directory) for now. */
  readonly stagingLocation: string;
  /** Days a successful test keeps the machine TESTED_RECENTLY. */
  readonly testedRecentlyDays: number;
  /** RPO target in seconds: lag above it is reported as a breach. */
  readonly rpoTargetSeconds: number;
}

export const DEFAULT_PROJECT_SETTINGS: ProjectSettings = {
  bandwidthLimitMbps: 0,
  retention: DEFAULT_RETENTION_POLICY,
  stagingLocation: "local",
  testedRecentlyDays: 30,
  rpoTargetSeconds: 60,
};

export interface Project {
  readonly id: string;
  readonly name: string;
  readonly type: ProjectType;
  readonly settings: ProjectSettings;
  readonly direction: ReplicationDirection;
  readonly createdAt: string;
}

export interface InstallToken {
  readonly id: string;
  readonly projectId: string;
  readonly expiresAt: string;
  readonly revokedAt: string | null;
  readonly createdAt: string;
}

export interface DiskInfo {
  readonly id: string;
  /** Path on the source machine (file or block device). */
  readonly path: string;
  readonly sizeBytes: number;
}

export interface DiskProgress {
  readonly id: string;
  readonly totalBytes: number;
  readonly replicatedBytes: number;
  readonly backlogBytes: number;
  readonly rescannedBytes: number;
  /** Where the machine's I/O reaches this disk (intercept tracker: its NBD URI). Absent from older agents. */
  readonly nbdUri?: string;
}

export interface ReplicationStatus {
  readonly state: ReplicationState;
  readonly step?: InitiatingStep;
  /** Initial-sync percent, 0..100. */
  readonly progressPercent: number;
  /** Seconds since the newest source write known durable at the standby; null before the first. */
  readonly lagSeconds: number | null;
  readonly etaSeconds: number | null;
  readonly reason?: string;
  readonly disks: readonly DiskProgress[];
  /** Total bytes the agent has put on the wire. */
  readonly bytesSent: number;
  /** The agent's change tracker (scan, intercept). Absent from older agents. */
  readonly tracker?: string;
  readonly updatedAt: string;
}

export interface Machine {
  readonly id: string;
  readonly projectId: string;
  readonly name: string;
  readonly hostname: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly disks: readonly DiskInfo[];
  readonly replicatorId: string;
  /** Staging-store timeline the machine currently replicates into. */
  readonly timelineId: string;
  readonly lifecycle: Lifecycle;
  readonly lastTestAt: string | null;
  readonly replication: ReplicationStatus;
  readonly createdAt: string;
}

export const IP_POLICIES = ["copy-source", "new-from-subnet", "fixed"] as const;
export type IpPolicy = (typeof IP_POLICIES)[number];

export const DISK_BUSES = ["virtio", "ide", "scsi"] as const;
export type DiskBus = (typeof DISK_BUSES)[number];
export const BOOT_MODES = ["bios", "uefi"] as const;
export type BootMode = (typeof BOOT_MODES)[number];

export interface Blueprint {
  /** "copy-of-source" or a catalog instance type name. */
  readonly instanceType: string;
  readonly cpus: number | null;
  readonly memoryMiB: number | null;
  readonly network: string;
  readonly subnet: string;
  readonly ipPolicy: IpPolicy;
  readonly fixedIp: string | null;
  readonly securityGroups: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  /** The launched machine's MAC address; null: the provider derives a stable one from the machine id. */
  readonly mac: string | null;
  /** How the launched machine's disks are attached (the source OS must have the driver). */
  readonly diskBus: DiskBus;
  /** Firmware the launched machine boots with: the source's (BIOS/MBR or UEFI). */
  readonly bootMode: BootMode;
}

export const DEFAULT_BLUEPRINT: Blueprint = {
  instanceType: "copy-of-source",
  cpus: null,
  memoryMiB: null,
  network: "default",
  subnet: "default",
  ipPolicy: "new-from-subnet",
  fixedIp: null,
  securityGroups: [],
  tags: {},
  mac: null,
  diskBus: "virtio",
  bootMode: "bios",
};

/** A stored blueprint with the fields added since it was written filled with their defaults. */
export function withBlueprintDefaults(stored: Partial<Blueprint> | undefined): Blueprint {
  return { ...DEFAULT_BLUEPRINT, ...stored };
}

export interface JobMachineResult {
  readonly machineId: string;
  readonly status: JobStatus;
  /** Where the launched disks are (export provider: file paths). */
  readonly disks?: readonly string[];
  readonly pitSeq?: number;
  readonly pitTime?: string;
  readonly requestedAt?: string;
  readonly readyAt?: string;
  /** Launch request to machine ready, seconds. */
  readonly rtoSeconds?: number;
  /** When the launched machine started (local: its VM process runs). */
  readonly startedAt?: string;
  /** When the launched machine's guest said it is up (local: the ready line on its console). */
  readonly guestUpAt?: string;
  /** Where the launched machine's console output goes (local: the serial log file). */
  readonly consoleLog?: string;
  readonly error?: string;
}

export interface Job {
  readonly id: string;
  readonly kind: JobKind;
  readonly projectId: string;
  readonly status: JobStatus;
  readonly params: Readonly<Record<string, unknown>>;
  readonly machines: readonly JobMachineResult[];
  readonly log: readonly { readonly time: string; readonly message: string }[];
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  readonly error: string | null;
}

/** A launched machine the console tracks until it is terminated. */
export interface LaunchedMachine {
  readonly id: string;
  readonly machineId: string;
  readonly jobId: string;
  readonly mode: LaunchMode;
  readonly provider: string;
  /** Store branch the launched machine writes to. */
  readonly branchId: string;
  /** The provider's own handle of the machine (export: its directory); what `terminate` takes. */
  readonly ref: string;
  readonly pitSeq: number;
  readonly disks: readonly string[];
  readonly createdAt: string;
  readonly terminatedAt: string | null;
}

export interface AuditEntry {
  readonly id: number;
  readonly time: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly details: Readonly<Record<string, unknown>>;
}
