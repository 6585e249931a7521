/**
 * What every route module is built from: the console's collaborators, the clock, and the
 * shared look-ups (project or machine by id or name, with a 404 that names the value) and
 * the audit helper. Route modules get one of these and return their routes.
 */
import { randomBytes } from "node:crypto";
import { UserError } from "../../common/errors.js";
import type { Project } from "../../common/model.js";
import type { CertificateAuthority } from "../ca/certificate-authority.js";
import type { ReplicatorControl } from "../replicator-control.js";
import type { MachineRecord, StateStore } from "../state/state-store.js";

export interface ApiContext {
  readonly state: StateStore;
  readonly ca: CertificateAuthority;
  readonly replicator: ReplicatorControl;
  /** The URL agents reach the console at (goes into install tokens). */
  readonly consoleUrl: () => string;
  readonly now: () => number;
  /** Tells the job runner a new job is waiting. */
  readonly wakeJobs: () => void;
}

export function newId(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}

export function isoNow(ctx: ApiContext): string {
  return new Date(ctx.now()).toISOString();
}

export async function resolveProject(ctx: ApiContext, idOrName: string): Promise<Project> {
  const project = await ctx.state.getProject(idOrName);
  if (project === undefined) {
    throw new UserError(`Project not found: ${idOrName} (see \`lifeboat project list\`)`, 404);
  }
  return project;
}

/** A machine by id, or by name when the name is unique (within the project, when given). */
export async function resolveMachine(
  ctx: ApiContext,
  idOrName: string,
  projectId?: string,
): Promise<MachineRecord> {
  const byId = await ctx.state.getMachine(idOrName);
  if (byId !== undefined && (projectId === undefined || byId.projectId === projectId)) return byId;
  const byName = await ctx.state.findMachinesByName(idOrName, projectId);
  if (byName.length > 1) {
    throw new UserError(`Machine name ${idOrName} is used in several projects: use the machine id`, 409);
  }
  const machine = byName[0];
  if (machine === undefined) throw new UserError(`Machine not found: ${idOrName}`, 404);
  return machine;
}

export async function audit(
  ctx: ApiContext,
  entry: {
    readonly actor: string;
    readonly action: string;
    readonly target: string | null;
    readonly projectId: string | null;
    readonly details?: Record<string, unknown>;
  },
): Promise<void> {
  await ctx.state.appendAudit({
    time: isoNow(ctx),
    actor: entry.actor,
    action: entry.action,
    target: entry.target,
    projectId: entry.projectId,
    details: entry.details ?? {},
  });
}
