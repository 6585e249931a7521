/**
 * The embedded StateStore: one SQLite file under the console's data directory, opened in
 * WAL mode with synchronous=FULL so that a resolved promise is durable. Records are kept
 * as JSON documents next to the few columns that are indexed or unique; the schema is
 * versioned by a `schema_version` table and migrated forward on open. better-sqlite3 is
 * synchronous, so each method body runs atomically with respect to the others.
 */
import Database from "better-sqlite3";
import { UserError } from "../../../common/errors.js";
import type {
  Blueprint,
  InstallToken,
  Job,
  JobMachineResult,
  LaunchedMachine,
  Project,
} from "../../../common/model.js";
import { withBlueprintDefaults } from "../../../common/model.js";
import type { JobStatus } from "../../../common/states.js";
import type {
  ApiKeyRecord,
  AuditRecord,
  JobPatch,
  MachinePatch,
  MachineRecord,
  NewAuditEntry,
  ProjectPatch,
  StateStore,
} from "../state-store.js";
import { upgradeProjectSettings } from "../upgrade-project-settings.js";

/** SQL, or a function for what SQL cannot say; runs inside the migration's transaction. */
type Migration = string | ((db: Database.Database) => void);

/** Version 2: project settings trade `pitRetentionSeconds` for a `retention` policy. */
function upgradeProjects(db: Database.Database): void {
  const rows = db.prepare("SELECT id, data FROM projects").all() as { id: string; data: string }[];
  const update = db.prepare("UPDATE projects SET data = ? WHERE id = ?");
  for (const row of rows) {
    const project = JSON.parse(row.data) as Project;
    const next: Project = { ...project, settings: upgradeProjectSettings(project.settings) };
    update.run(JSON.stringify(next), row.id);
  }
}

/** Each entry moves the schema one version forward; never edit a released one. */
export const MIGRATIONS: readonly Migration[] = [
  `CREATE TABLE projects (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
   CREATE TABLE install_tokens (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE,
     data TEXT NOT NULL);
   CREATE INDEX install_tokens_project ON install_tokens(project_id);
   CREATE TABLE api_keys (id TEXT PRIMARY KEY, data TEXT NOT NULL);
   CREATE TABLE machines (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL,
     UNIQUE (project_id, name));
   CREATE TABLE blueprints (machine_id TEXT PRIMARY KEY, data TEXT NOT NULL);
   CREATE TABLE jobs (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, status TEXT NOT NULL, data TEXT NOT NULL);
   CREATE INDEX jobs_project ON jobs(project_id);
   CREATE TABLE job_log (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, time TEXT NOT NULL,
     message TEXT NOT NULL);
   CREATE INDEX job_log_job ON job_log(job_id);
   CREATE TABLE launched_machines (id TEXT PRIMARY KEY, machine_id TEXT NOT NULL, data TEXT NOT NULL);
   CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, project_id TEXT, actor TEXT NOT NULL,
     action TEXT NOT NULL, target TEXT, details TEXT NOT NULL);
   CREATE INDEX audit_project ON audit(project_id);`,
  upgradeProjects,
];

interface DataRow {
  readonly data: string;
}

interface AuditRow {
  readonly id: number;
  readonly time: string;
  readonly project_id: string | null;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly details: string;
}

function parse<T>(row: DataRow | undefined): T | undefined {
  return row === undefined ? undefined : (JSON.parse(row.data) as T);
}

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && "code" in err && String(err.code).startsWith("SQLITE_CONSTRAINT");
}

export class SqliteStateStore implements StateStore {
  readonly #db: Database.Database;
  #closed = false;

  /** Opens (creating if needed) the database at `file`; ":memory:" works for tests. */
  constructor(file: string) {
    this.#db = new Database(file);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = FULL");
    this.#db.pragma("foreign_keys = ON");
    this.#migrate();
  }

  /** Schema version after migrations. */
  get schemaVersion(): number {
    const row = this.#db.prepare("SELECT version FROM schema_version").get() as
      { version: number } | undefined;
    return row?.version ?? 0;
  }

  #migrate(): void {
    this.#db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    const migrate = this.#db.transaction(() => {
      let version = this.schemaVersion;
      if (version === 0 && this.#db.prepare("SELECT COUNT(*) AS n FROM schema_version").pluck().get() === 0) {
        this.#db.prepare("INSERT INTO schema_version (version) VALUES (0)").run();
      }
      if (version > MIGRATIONS.length) {
        throw new Error(
          `State database schema version ${version} is newer than this console (${MIGRATIONS.length}): upgrade lifeboat`,
        );
      }
      for (; version < MIGRATIONS.length; version++) {
        const migration = MIGRATIONS[version] ?? "";
        if (typeof migration === "string") this.#db.exec(migration);
        else migration(this.#db);
        this.#db.prepare("UPDATE schema_version SET version = ?").run(version + 1);
      }
    });
    migrate.immediate();
  }

  #insert(what: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      if (isUniqueViolation(err)) throw new UserError(`${what} already exists`, 409, { cause: err });
      throw err;
    }
  }

  // Projects

  async createProject(project: Project): Promise<void> {
    this.#insert(`Project ${project.name}`, () =>
      this.#db
        .prepare("INSERT INTO projects (id, name, data) VALUES (?, ?, ?)")
        .run(project.id, project.name, JSON.stringify(project)),
    );
    return Promise.resolve();
  }

  async getProject(idOrName: string): Promise<Project | undefined> {
    const row = this.#db
      .prepare(
        "SELECT data FROM projects WHERE id = ? UNION ALL SELECT data FROM projects WHERE name = ? LIMIT 1",
      )
      .get(idOrName, idOrName) as DataRow | undefined;
    return Promise.resolve(parse<Project>(row));
  }

  async listProjects(): Promise<Project[]> {
    const rows = this.#db.prepare("SELECT data FROM projects ORDER BY rowid").all() as DataRow[];
    return Promise.resolve(rows.map((r) => JSON.parse(r.data) as Project));
  }

  async updateProject(id: string, patch: ProjectPatch): Promise<Project> {
    return Promise.resolve(
      this.#db.transaction(() => {
        const current = parse<Project>(
          this.#db.prepare("SELECT data FROM projects WHERE id = ?").get(id) as DataRow | undefined,
        );
        if (current === undefined) throw new UserError(`Project not found: ${id}`, 404);
        const next: Project = { ...current, ...patch };
        this.#db.prepare("UPDATE projects SET data = ? WHERE id = ?").run(JSON.stringify(next), id);
        return next;
      })(),
    );
  }

  // Install tokens

  async createInstallToken(token: InstallToken, secretHash: string): Promise<void> {
    this.#insert(`Install token ${token.id}`, () =>
      this.#db
        .prepare("INSERT INTO install_tokens (id, project_id, secret_hash, data) VALUES (?, ?, ?, ?)")
        .run(token.id, token.projectId, secretHash, JSON.stringify(token)),
    );
    return Promise.resolve();
  }

  async getInstallToken(id: string): Promise<InstallToken | undefined> {
    const row = this.#db.prepare("SELECT data FROM install_tokens WHERE id = ?").get(id) as
      DataRow | undefined;
    return Promise.resolve(parse<InstallToken>(row));
  }

  async findInstallTokenByHash(secretHash: string): Promise<InstallToken | undefined> {
    const row = this.#db.prepare("SELECT data FROM install_tokens WHERE secret_hash = ?").get(secretHash) as
      DataRow | undefined;
    return Promise.resolve(parse<InstallToken>(row));
  }

  async listInstallTokens(projectId: string): Promise<InstallToken[]> {
    const rows = this.#db
      .prepare("SELECT data FROM install_tokens WHERE project_id = ? ORDER BY rowid")
      .all(projectId) as DataRow[];
    return Promise.resolve(rows.map((r) => JSON.parse(r.data) as InstallToken));
  }

  async revokeInstallToken(id: string, at: string): Promise<InstallToken> {
    return Promise.resolve(
      this.#db.transaction(() => {
        const current = parse<InstallToken>(
          this.#db.prepare("SELECT data FROM install_tokens WHERE id = ?").get(id) as DataRow | undefined,
        );
        if (current === undefined) throw new UserError(`Install token not found: ${id}`, 404);
        if (current.revokedAt !== null) return current;
        const next: InstallToken = { ...current, revokedAt: at };
        this.#db.prepare("UPDATE install_tokens SET data = ? WHERE id = ?").run(JSON.stringify(next), id);
        return next;
      })(),
    );
  }

  // API keys

  async createApiKey(key: ApiKeyRecord): Promise<void> {
    this.#insert(`API key ${key.id}`, () =>
      this.#db.prepare("INSERT INTO api_keys (id, data) VALUES (?, ?)").run(key.id, JSON.stringify(key)),
    );
    return Promise.resolve();
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = this.#db.prepare("SELECT data FROM api_keys ORDER BY rowid").all() as DataRow[];
    return Promise.resolve(rows.map((r) => JSON.parse(r.data) as ApiKeyRecord));
  }

  // Machines

  async createMachine(machine: MachineRecord): Promise<void> {
    this.#insert(`Machine ${machine.name} in project ${machine.projectId}`, () =>
      this.#db
        .prepare("INSERT INTO machines (id, project_id, name, data) VALUES (?, ?, ?, ?)")
        .run(machine.id, machine.projectId, machine.name, JSON.stringify(machine)),
    );
    return Promise.resolve();
  }

  async getMachine(id: string): Promise<MachineRecord | undefined> {
    const row = this.#db.prepare("SELECT data FROM machines WHERE id = ?").get(id) as DataRow | undefined;
    return Promise.resolve(parse<MachineRecord>(row));
  }

  async findMachinesByName(name: string, projectId?: string): Promise<MachineRecord[]> {
    const rows = (
      projectId === undefined
        ? this.#db.prepare("SELECT data FROM machines WHERE name = ? ORDER BY rowid").all(name)
        : this.#db
            .prepare("SELECT data FROM machines WHERE name = ? AND project_id = ? ORDER BY rowid")
            .all(name, projectId)
    ) as DataRow[];
    return Promise.resolve(rows.map((r) => JSON.parse(r.data) as MachineRecord));
  }

  async listMachines(projectId?: string): Promise<MachineRecord[]> {
    const rows = (
      projectId === undefined
        ? this.#db.prepare("SELECT data FROM machines ORDER BY rowid").all()
        : this.#db.prepare("SELECT data FROM machines WHERE project_id = ? ORDER BY rowid").all(projectId)
    ) as DataRow[];
    return Promise.resolve(rows.map((r) => JSON.parse(r.data) as MachineRecord));
  }

  async updateMachine(id: string, patch: MachinePatch): Promise<MachineRecord> {
    return Promise.resolve(
      this.#db.transaction(() => {
        const current = parse<MachineRecord>(
          this.#db.prepare("SELECT data FROM machines WHERE id = ?").get(id) as DataRow | undefined,
        );
        if (current === undefined) throw new UserError(`Machine not found: ${id}`, 404);
        const next: MachineRecord = { ...current, ...patch };
        this.#db.prepare("UPDATE machines SET data = ? WHERE id = ?").run(JSON.stringify(next), id);
        return next;
      })(),
    );
  }

  // Blueprints

  async getBlueprint(machineId: string): Promise<Blueprint | undefined> {
    const row = this.#db.prepare("SELECT data FROM blueprints WHERE machine_id = ?").get(machineId) as
      DataRow | undefined;
    const stored = parse<Blueprint>(row);
    return Promise.resolve(stored === undefined ? undefined : withBlueprintDefaults(stored));
  }

  async putBlueprint(machineId: string, blueprint: Blueprint): Promise<void> {
    this.#db
      .prepare(
        "INSERT INTO blueprints (machine_id, data) VALUES (?, ?) ON CONFLICT(machine_id) DO UPDATE SET data = excluded.data",
      )
      .run(machineId, JSON.stringify(blueprint));
    return Promise.resolve();
  }

  // Jobs

  #readJob(id: string): Job | undefined {
    const job = parse<Job>(
      this.#db.prepare("SELECT data FROM jobs WHERE id = ?").get(id) as DataRow | undefined,
    );
    if (job === undefined) return undefined;
    const log = this.#db
      .prepare("SELECT time, message FROM job_log WHERE job_id = ? ORDER BY id")
      .all(id) as Job["log"][number][];
    return { ...job, log };
  }

  async createJob(job: Job): Promise<void> {
    this.#db.transaction(() => {
      this.#insert(`Job ${job.id}`, () =>
        this.#db
          .prepare("INSERT INTO jobs (id, project_id, status, data) VALUES (?, ?, ?, ?)")
          .run(job.id, job.projectId, job.status, JSON.stringify({ ...job, log: [] })),
      );
      for (const line of job.log) {
        this.#db
          .prepare("INSERT INTO job_log (job_id, time, message) VALUES (?, ?, ?)")
          .run(job.id, line.time, line.message);
      }
    })();
    return Promise.resolve();
  }

  async getJob(id: string): Promise<Job | undefined> {
    return Promise.resolve(this.#readJob(id));
  }

  async listJobs(filter: { readonly projectId?: string; readonly status?: JobStatus } = {}): Promise<Job[]> {
    const where: string[] = [];
    const args: string[] = [];
    if (filter.projectId !== undefined) {
      where.push("project_id = ?");
      args.push(filter.projectId);
    }
    if (filter.status !== undefined) {
      where.push("status = ?");
      args.push(filter.status);
    }
    const sql = `SELECT id FROM jobs ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY rowid DESC`;
    const ids = this.#db
      .prepare(sql)
      .pluck()
      .all(...args) as string[];
    return Promise.resolve(ids.map((id) => this.#readJob(id)).filter((j): j is Job => j !== undefined));
  }

  async updateJob(id: string, patch: JobPatch): Promise<Job> {
    return Promise.resolve(
      this.#db.transaction(() => {
        const current = parse<Job>(
          this.#db.prepare("SELECT data FROM jobs WHERE id = ?").get(id) as DataRow | undefined,
        );
        if (current === undefined) throw new UserError(`Job not found: ${id}`, 404);
        const next: Job = { ...current, ...patch };
        this.#db
          .prepare("UPDATE jobs SET data = ?, status = ? WHERE id = ?")
          .run(JSON.stringify(next), next.status, id);
        return this.#readJob(id) as Job;
      })(),
    );
  }

  async setJobMachine(jobId: string, result: JobMachineResult): Promise<void> {
    this.#db.transaction(() => {
      const current = parse<Job>(
        this.#db.prepare("SELECT data FROM jobs WHERE id = ?").get(jobId) as DataRow | undefined,
      );
      if (current === undefined) throw new UserError(`Job not found: ${jobId}`, 404);
      const others = current.machines.filter((m) => m.machineId !== result.machineId);
      const index = current.machines.findIndex((m) => m.machineId === result.machineId);
      const machines =
        index < 0 ? [...others, result] : current.machines.map((m, i) => (i === index ? result : m));
      this.#db
        .prepare("UPDATE jobs SET data = ? WHERE id = ?")
        .run(JSON.stringify({ ...current, machines }), jobId);
    })();
    return Promise.resolve();
  }

  async appendJobLog(jobId: string, time: string, message: string): Promise<void> {
    if (this.#db.prepare("SELECT 1 FROM jobs WHERE id = ?").get(jobId) === undefined) {
      throw new UserError(`Job not found: ${jobId}`, 404);
    }
    this.#db
      .prepare("INSERT INTO job_log (job_id, time, message) VALUES (?, ?, ?)")
      .run(jobId, time, message);
    return Promise.resolve();
  }

  // Launched machines

  async createLaunchedMachine(launched: LaunchedMachine): Promise<void> {
    this.#insert(`Launched machine ${launched.id}`, () =>
      this.#db
        .prepare("INSERT INTO launched_machines (id, machine_id, data) VALUES (?, ?, ?)")
        .run(launched.id, launched.machineId, JSON.stringify(launched)),
    );
    return Promise.resolve();
  }

  async getLaunchedMachine(id: string): Promise<LaunchedMachine | undefined> {
    const row = this.#db.prepare("SELECT data FROM launched_machines WHERE id = ?").get(id) as
      DataRow | undefined;
    return Promise.resolve(parse<LaunchedMachine>(row));
  }

  async listLaunchedMachines(
    filter: {
      readonly machineId?: string;
      readonly projectId?: string;
      readonly includeTerminated?: boolean;
    } = {},
  ): Promise<LaunchedMachine[]> {
    const rows = this.#db
      .prepare(
        `SELECT l.data FROM launched_machines l LEFT JOIN machines m ON m.id = l.machine_id
         WHERE (? IS NULL OR l.machine_id = ?) AND (? IS NULL OR m.project_id = ?) ORDER BY l.rowid`,
      )
      .all(
        filter.machineId ?? null,
        filter.machineId ?? null,
        filter.projectId ?? null,
        filter.projectId ?? null,
      ) as DataRow[];
    const all = rows.map((r) => JSON.parse(r.data) as LaunchedMachine);
    return Promise.resolve(
      filter.includeTerminated === true ? all : all.filter((l) => l.terminatedAt === null),
    );
  }

  async terminateLaunchedMachine(id: string, at: string): Promise<LaunchedMachine> {
    return Promise.resolve(
      this.#db.transaction(() => {
        const current = parse<LaunchedMachine>(
          this.#db.prepare("SELECT data FROM launched_machines WHERE id = ?").get(id) as DataRow | undefined,
        );
        if (current === undefined) throw new UserError(`Launched machine not found: ${id}`, 404);
        if (current.terminatedAt !== null) return current;
        const next: LaunchedMachine = { ...current, terminatedAt: at };
        this.#db.prepare("UPDATE launched_machines SET data = ? WHERE id = ?").run(JSON.stringify(next), id);
        return next;
      })(),
    );
  }

  // Audit

  async appendAudit(entry: NewAuditEntry): Promise<AuditRecord> {
    const info = this.#db
      .prepare(
        "INSERT INTO audit (time, project_id, actor, action, target, details) VALUES (?, ?, ?, ?, ?, ?)",
      )
      .run(
        entry.time,
        entry.projectId,
        entry.actor,
        entry.action,
        entry.target,
        JSON.stringify(entry.details),
      );
    return Promise.resolve({ ...entry, id: Number(info.lastInsertRowid) });
  }

  async listAudit(
    filter: { readonly projectId?: string; readonly limit?: number } = {},
  ): Promise<AuditRecord[]> {
    const rows = this.#db
      .prepare("SELECT * FROM audit WHERE (? IS NULL OR project_id = ?) ORDER BY id DESC LIMIT ?")
      .all(filter.projectId ?? null, filter.projectId ?? null, filter.limit ?? 1000) as AuditRow[];
    return Promise.resolve(
      rows.map((r) => ({
        id: r.id,
        time: r.time,
        projectId: r.project_id,
        actor: r.actor,
        action: r.action,
        target: r.target,
        details: JSON.parse(r.details) as Record<string, unknown>,
      })),
    );
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#db.close();
    }
    return Promise.resolve();
  }
}
