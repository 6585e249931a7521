/**
 * The console's persistence contract. Every method is async so that a networked engine
 * (PostgreSQL, when several consoles share state) can implement it; the SQLite store
 * beside it is the embedded default. One conformance suite (`state-store.case.ts`) runs
 * against every implementation.
 *
 * Contract, for every implementation:
 * - "Not found" is `undefined` from a getter and a UserError 404 from an update of a
 *   missing record; it is never an exception from a getter.
 * - Creating a record whose id (or unique name) exists rejects with UserError 409 and
 *   changes nothing. Updates are read-modify-write under the store's own atomicity:
 *   concurrent `updateMachine` calls never lose each other's fields.
 * - Revoking a token, terminating a launched machine and closing the store are idempotent.
 * - A promise that resolved means the change is durable (SQLite: WAL with synchronous=FULL).
 * - Secrets are never stored: install tokens and API keys are kept as sha256 hex digests.
 */
import type {
  AuditEntry,
  Blueprint,
  InstallToken,
  Job,
  JobMachineResult,
  LaunchedMachine,
  Machine,
  Project,
  ProjectSettings,
} from "../../common/model.js";
import type { JobStatus, ReplicationDirection } from "../../common/states.js";

/** Failback stream progress, as the replicator or the failback client reports it. */
export interface FailbackProgress {
  readonly sentBytes: number;
  readonly totalBytes: number;
  readonly caughtUp: boolean;
  readonly updatedAt: string;
}

/**
 * A machine as the console stores it: the public record plus what the console needs to
 * derive its view (connection, last report, newest PIT, failback state).
 */
export interface MachineRecord extends Machine {
  /** sha256 hex of the agent's public key (SPKI DER): the identity is the key, not the hardware. */
  readonly publicKeyFingerprint: string;
  /** Last agent status report; null until the first one. */
  readonly lastSeenAt: string | null;
  /** Highest lag the agent ever reported, seconds. */
  readonly maxLagSeconds: number | null;
  /** Whether the replicator sees the agent connected; null until it says anything. */
  readonly replicatorConnected: boolean | null;
  /** Wall-clock time of the newest PIT of the current timeline (ISO). */
  readonly newestPitTime: string | null;
  /** Store branch the failback client receives from; set by the failback-prepare job. */
  readonly failbackBranchId: string | null;
  readonly failbackConnected: boolean | null;
  readonly failback: FailbackProgress | null;
}

/** The fields of a machine that can change after registration. */
export type MachinePatch = Partial<
  Pick<
    MachineRecord,
    | "lifecycle"
    | "lastTestAt"
    | "replication"
    | "timelineId"
    | "replicatorId"
    | "lastSeenAt"
    | "maxLagSeconds"
    | "replicatorConnected"
    | "newestPitTime"
    | "failbackBranchId"
    | "failbackConnected"
    | "failback"
    | "hostname"
    | "cpus"
    | "memoryMiB"
  >
>;

export interface ApiKeyRecord {
  readonly id: string;
  readonly name: string;
  /** sha256 hex of the key. */
  readonly hash: string;
  readonly createdAt: string;
}

export interface JobPatch {
  readonly status?: JobStatus;
  readonly startedAt?: string | null;
  readonly endedAt?: string | null;
  readonly error?: string | null;
}

export interface AuditRecord extends AuditEntry {
  readonly projectId: string | null;
}

export type NewAuditEntry = Omit<AuditRecord, "id">;

export interface ProjectPatch {
  readonly settings?: ProjectSettings;
  readonly direction?: ReplicationDirection;
}

export interface StateStore {
  // Projects. Names are unique; `getProject` accepts an id or a name.
  createProject(project: Project): Promise<void>;
  getProject(idOrName: string): Promise<Project | undefined>;
  listProjects(): Promise<Project[]>;
  updateProject(id: string, patch: ProjectPatch): Promise<Project>;

  // Install tokens: only the sha256 of the secret is kept.
  createInstallToken(token: InstallToken, secretHash: string): Promise<void>;
  getInstallToken(id: string): Promise<InstallToken | undefined>;
  findInstallTokenByHash(secretHash: string): Promise<InstallToken | undefined>;
  listInstallTokens(projectId: string): Promise<InstallToken[]>;
  /** Sets revokedAt once; revoking again keeps the first time. 404 for an unknown id. */
  revokeInstallToken(id: string, at: string): Promise<InstallToken>;

  // API keys (admin). The caller compares hashes in constant time.
  createApiKey(key: ApiKeyRecord): Promise<void>;
  listApiKeys(): Promise<ApiKeyRecord[]>;

  // Machines. Names are unique within a project.
  createMachine(machine: MachineRecord): Promise<void>;
  getMachine(id: string): Promise<MachineRecord | undefined>;
  /** Machines with this name, in any project (or in one project when given). */
  findMachinesByName(name: string, projectId?: string): Promise<MachineRecord[]>;
  /** Oldest first; every machine when projectId is undefined. */
  listMachines(projectId?: string): Promise<MachineRecord[]>;
  updateMachine(id: string, patch: MachinePatch): Promise<MachineRecord>;

  // Blueprints: undefined until one is stored (the caller applies DEFAULT_BLUEPRINT).
  getBlueprint(machineId: string): Promise<Blueprint | undefined>;
  putBlueprint(machineId: string, blueprint: Blueprint): Promise<void>;

  // Jobs. Results are kept per machine (upsert by machineId); log lines are appended in order.
  createJob(job: Job): Promise<void>;
  getJob(id: string): Promise<Job | undefined>;
  /** Newest first. */
  listJobs(filter?: { readonly projectId?: string; readonly status?: JobStatus }): Promise<Job[]>;
  updateJob(id: string, patch: JobPatch): Promise<Job>;
  setJobMachine(jobId: string, result: JobMachineResult): Promise<void>;
  appendJobLog(jobId: string, time: string, message: string): Promise<void>;

  // Launched machines, tracked until terminated.
  createLaunchedMachine(launched: LaunchedMachine): Promise<void>;
  getLaunchedMachine(id: string): Promise<LaunchedMachine | undefined>;
  listLaunchedMachines(filter?: {
    readonly machineId?: string;
    readonly projectId?: string;
    readonly includeTerminated?: boolean;
  }): Promise<LaunchedMachine[]>;
  /** Sets terminatedAt once; idempotent. 404 for an unknown id. */
  terminateLaunchedMachine(id: string, at: string): Promise<LaunchedMachine>;

  // Audit log: append-only; ids increase.
  appendAudit(entry: NewAuditEntry): Promise<AuditRecord>;
  /** Newest first. */
  listAudit(filter?: { readonly projectId?: string; readonly limit?: number }): Promise<AuditRecord[]>;

  /** Idempotent. */
  close(): Promise<void>;
}
