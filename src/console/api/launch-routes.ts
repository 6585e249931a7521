/**
 * Launches and the project-wide operations (prepare for failback, return to normal, clean
 * up). Each route checks everything it can before it creates the job, so a refused request
 * leaves nothing behind: unknown providers and machines, mixed projects, a mode the project
 * type does not allow, machines still syncing, PITs that do not exist.
 */
import { UserError } from "../../common/errors.js";
import { providerNames } from "../../providers/registry.js";
import type { Job, JobMachineResult, Project } from "../../common/model.js";
import type { JobKind, Lifecycle, LaunchMode } from "../../common/states.js";
import { DEFAULT_IMAGE_FORMAT } from "../../providers/image-format.js";
import { defineRoute, type Route } from "../http/route.js";
import type { MachineRecord } from "../state/state-store.js";
import { audit, resolveMachine, resolveProject, type ApiContext } from "./api-context.js";
import { submitJob } from "./new-job.js";
import { parsePitRequest, resolvePit } from "./resolve-pit.js";
import { LaunchBody, MachineSelectionBody } from "./schemas.js";

const IN_PROGRESS: readonly Lifecycle[] = [
  "TEST_IN_PROGRESS",
  "RECOVERY_IN_PROGRESS",
  "FAILBACK_IN_PROGRESS",
  "TESTING",
  "CUTTING_OVER",
];

function checkMode(project: Project, mode: LaunchMode): void {
  if (project.type === "migration" && mode !== "cutover" && mode !== "test") {
    throw new UserError(
      `Mode ${mode} is for disaster-recovery projects: ${project.name} is a migration project (use test or cutover)`,
      400,
    );
  }
  if (project.type === "dr" && mode === "cutover") {
    throw new UserError(
      `Mode cutover is for migration projects: ${project.name} is a dr project (use test or recovery)`,
      400,
    );
  }
}

function checkReplicating(machine: MachineRecord): void {
  const r = machine.replication;
  const when = "launch when it reaches CONTINUOUS";
  if (machine.lastSeenAt === null) {
    throw new UserError(`Machine ${machine.name} has not reported replication status yet: ${when}`, 409);
  }
  if (r.state === "INITIATING") {
    const step = r.step === undefined ? "" : ` (step ${r.step})`;
    throw new UserError(`Machine ${machine.name} is still initiating${step}: ${when}`, 409);
  }
  if (r.state === "INITIAL_SYNC") {
    throw new UserError(
      `Machine ${machine.name} is still in initial sync (${Math.floor(r.progressPercent)}%): ${when}`,
      409,
    );
  }
  if (IN_PROGRESS.includes(machine.lifecycle)) {
    throw new UserError(
      `Machine ${machine.name} already has a launch in progress (${machine.lifecycle}): wait for its job`,
      409,
    );
  }
}

/** The project's machines, or the selected ones, each required to be in `lifecycle`. */
async function selectMachines(
  ctx: ApiContext,
  project: Project,
  ids: readonly string[] | undefined,
  lifecycle: Lifecycle,
  hint: string,
): Promise<MachineRecord[]> {
  const machines =
    ids === undefined || ids.length === 0
      ? await ctx.state.listMachines(project.id)
      : await Promise.all(ids.map((id) => resolveMachine(ctx, id, project.id)));
  if (machines.length === 0) throw new UserError(`Project ${project.name} has no machines`, 409);
  const wrong = machines.filter((m) => m.lifecycle !== lifecycle);
  if (wrong.length > 0) {
    const list = wrong.map((m) => `${m.name} is ${m.lifecycle}`).join(", ");
    throw new UserError(`Machines must be ${lifecycle}: ${list}; ${hint}`, 409);
  }
  return machines;
}

/** Records a job over a selection of machines (params.machineIds) and audits it. */
async function submitMachineJob(
  ctx: ApiContext,
  actor: string,
  project: Project,
  kind: JobKind,
  action: string,
  machines: readonly MachineRecord[],
): Promise<Job> {
  const machineIds = machines.map((m) => m.id);
  const job = await submitJob(
    ctx,
    kind,
    project.id,
    { machineIds },
    machineIds.map((machineId) => ({ machineId, status: "PENDING" })),
  );
  await audit(ctx, { actor, action, target: job.id, projectId: project.id, details: { machineIds } });
  return job;
}

export function launchRoutes(ctx: ApiContext): Route[] {
  return [
    defineRoute({
      method: "POST",
      path: "/api/launches",
      summary: "Launch machines from a PIT (test, recovery or cutover): returns the job",
      auth: "admin",
      tag: "launches",
      status: 202,
      body: LaunchBody,
      handle: async ({ body, actor }) => {
        if (body.provider !== undefined && !providerNames().includes(body.provider))
          throw new UserError(
            `Unknown provider ${body.provider}: choose one of ${providerNames().join(", ")}`,
            400,
          );
        const request = parsePitRequest(body.pit);
        const machines: MachineRecord[] = [];
        for (const id of body.machineIds) {
          const machine = await resolveMachine(ctx, id);
          if (!machines.some((m) => m.id === machine.id)) machines.push(machine);
        }
        const first = machines[0];
        if (first === undefined) throw new UserError("Invalid request body: /machineIds is empty", 400);
        const other = machines.find((m) => m.projectId !== first.projectId);
        if (other !== undefined) {
          throw new UserError(
            `Machines ${first.name} and ${other.name} are in different projects: launch each project separately`,
            400,
          );
        }
        const project = await resolveProject(ctx, first.projectId);
        checkMode(project, body.mode);
        for (const machine of machines) checkReplicating(machine);
        const pits: Record<string, number> = {};
        const results: JobMachineResult[] = [];
        for (const machine of machines) {
          const pit = resolvePit(machine.name, await ctx.replicator.pits(machine.timelineId), request);
          pits[machine.id] = pit.seq;
          results.push({
            machineId: machine.id,
            status: "PENDING",
            pitSeq: pit.seq,
            pitTime: new Date(pit.time).toISOString(),
          });
        }
        const params = {
          mode: body.mode,
          provider: body.provider ?? "export",
          ...(body.outDir === undefined ? {} : { outDir: body.outDir }),
          format: body.format ?? DEFAULT_IMAGE_FORMAT,
          pit: body.pit ?? "latest",
          machineIds: machines.map((m) => m.id),
          pits,
        };
        const job = await submitJob(ctx, "LAUNCH", project.id, params, results);
        await audit(ctx, {
          actor,
          action: "launch",
          target: job.id,
          projectId: project.id,
          details: { mode: body.mode, machineIds: params.machineIds, pits },
        });
        return job;
      },
    }),
    defineRoute({
      method: "POST",
      path: "/api/projects/:project/failback/prepare",
      summary: "Prepare for failback: reverse replication of FAILED_OVER machines",
      auth: "admin",
      tag: "operations",
      status: 202,
      body: MachineSelectionBody,
      handle: async ({ params, body, actor }) => {
        const project = await resolveProject(ctx, params["project"] ?? "");
        if (project.type !== "dr") {
          throw new UserError(
            `Failback is for disaster-recovery projects: ${project.name} is a migration project`,
            400,
          );
        }
        const machines = await selectMachines(
          ctx,
          project,
          body.machineIds,
          "FAILED_OVER",
          "launch in recovery mode first",
        );
        return submitMachineJob(ctx, actor, project, "FAILBACK_PREPARE", "failback.prepare", machines);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/api/projects/:project/return-to-normal",
      summary: "Return to normal operation: replicate source to standby again, without a full resync",
      auth: "admin",
      tag: "operations",
      status: 202,
      body: MachineSelectionBody,
      handle: async ({ params, body, actor }) => {
        const project = await resolveProject(ctx, params["project"] ?? "");
        const machines = await selectMachines(
          ctx,
          project,
          body.machineIds,
          "FAILED_BACK",
          "finish the failback launch (recovery mode) first",
        );
        return submitMachineJob(ctx, actor, project, "RETURN_TO_NORMAL", "return-to-normal", machines);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/api/projects/:project/cleanup",
      summary: "Remove launched machines and staging resources the project created",
      auth: "admin",
      tag: "operations",
      status: 202,
      handle: async ({ params, actor }) => {
        const project = await resolveProject(ctx, params["project"] ?? "");
        const launched = await ctx.state.listLaunchedMachines({ projectId: project.id });
        const job = await submitJob(
          ctx,
          "CLEANUP",
          project.id,
          { launchedMachineIds: launched.map((l) => l.id) },
          [],
        );
        await audit(ctx, { actor, action: "cleanup", target: job.id, projectId: project.id });
        return job;
      },
    }),
  ];
}
