/**
 * LAUNCH: for each machine, a copy-on-write branch of the chosen PIT, handed to the
 * provider; the launched machine writes to what the provider made. Records the launched
 * machine, its RTO (launch request to machine ready) and the lifecycle: test ->
 * TESTED_RECENTLY, recovery -> FAILED_OVER, cutover -> CUTOVER_COMPLETE. While the project
 * is failed back (direction FAILBACK), a launch is the launch back on the source: it
 * finishes the failback stream and the machine becomes FAILED_BACK.
 */
import { UserError, errorMessage } from "../../../common/errors.js";
import { DEFAULT_BLUEPRINT } from "../../../common/model.js";
import type { Lifecycle, LaunchMode } from "../../../common/states.js";
import type { Provider } from "../../../providers/provider.js";
import type { JobContext } from "../job-handlers.js";

const BEFORE: Record<LaunchMode, Lifecycle> = {
  test: "TEST_IN_PROGRESS",
  recovery: "RECOVERY_IN_PROGRESS",
  cutover: "CUTTING_OVER",
};
const AFTER: Record<LaunchMode, Lifecycle> = {
  test: "TESTED_RECENTLY",
  recovery: "FAILED_OVER",
  cutover: "CUTOVER_COMPLETE",
};

export interface LaunchParams {
  readonly mode: LaunchMode;
  readonly provider: string;
  readonly outDir: string;
  readonly pits: Readonly<Record<string, number>>;
}

export function launchParams(params: Readonly<Record<string, unknown>>): LaunchParams {
  const { mode, provider, outDir, pits } = params;
  if (mode !== "test" && mode !== "recovery" && mode !== "cutover") throw new Error(`Launch job has bad mode ${String(mode)}`);
  if (typeof pits !== "object" || pits === null) throw new Error("Launch job has no resolved PITs");
  return {
    mode,
    provider: typeof provider === "string" ? provider : "export",
    outDir: typeof outDir === "string" ? outDir : "launched",
    pits: pits as Record<string, number>,
  };
}

export function launchJob(providerFor: (name: string) => Provider) {
  return async (ctx: JobContext): Promise<void> => {
    const p = launchParams(ctx.job.params);
    const project = await ctx.state.getProject(ctx.job.projectId);
    if (!project) throw new UserError(`Project ${ctx.job.projectId} no longer exists`, 404);
    const requestedAt = ctx.job.createdAt;
    const failures: string[] = [];
    for (const [machineId, seq] of Object.entries(p.pits)) {
      const machine = await ctx.state.getMachine(machineId);
      if (!machine) {
        failures.push(`${machineId}: no such machine`);
        continue;
      }
      const previous = machine.lifecycle;
      try {
        if (project.direction === "FAILBACK") {
          await ctx.state.updateMachine(machineId, { lifecycle: "FAILBACK_IN_PROGRESS" });
          await ctx.log(`${machine.name}: finishing the failback stream (launch back on the source)`);
          const done = await ctx.replicator.finishFailback(machineId, ctx.signal);
          const readyAt = new Date().toISOString();
          await ctx.state.updateMachine(machineId, { lifecycle: "FAILED_BACK" });
          await ctx.setMachine({
            machineId,
            status: "COMPLETED",
            pitSeq: done.seq,
            requestedAt,
            readyAt,
            rtoSeconds: (Date.parse(readyAt) - Date.parse(requestedAt)) / 1000,
          });
          await ctx.log(`${machine.name}: failed back at seq ${done.seq}; the source disks hold the recovered data`);
          continue;
        }
        await ctx.state.updateMachine(machineId, { lifecycle: BEFORE[p.mode] });
        const pit = (await ctx.replicator.pits(machine.timelineId)).find((x) => x.seq === seq);
        const branchId = `br-${ctx.job.id}-${machineId}`;
        await ctx.replicator.createBranch(branchId, machine.timelineId, seq);
        await ctx.log(`${machine.name}: branch ${branchId} of PIT ${seq}${pit ? ` (${new Date(pit.time).toISOString()})` : ""}`);
        const target = await providerFor(p.provider).launch({
          machineName: machine.name,
          machineId,
          mode: p.mode,
          timeline: ctx.replicator.openTimeline(branchId),
          seq,
          blueprint: (await ctx.state.getBlueprint(machineId)) ?? DEFAULT_BLUEPRINT,
          outDir: p.outDir,
          signal: ctx.signal,
        });
        const readyAt = new Date().toISOString();
        await ctx.state.createLaunchedMachine({
          id: `lm-${ctx.job.id}-${machineId}`,
          machineId,
          jobId: ctx.job.id,
          mode: p.mode,
          provider: p.provider,
          branchId,
          pitSeq: seq,
          disks: target.disks,
          createdAt: readyAt,
          terminatedAt: null,
        });
        await ctx.state.updateMachine(machineId, {
          lifecycle: AFTER[p.mode],
          ...(p.mode === "test" ? { lastTestAt: readyAt } : {}),
        });
        await ctx.setMachine({
          machineId,
          status: "COMPLETED",
          disks: target.disks,
          pitSeq: seq,
          ...(pit ? { pitTime: new Date(pit.time).toISOString() } : {}),
          requestedAt,
          readyAt,
          rtoSeconds: (Date.parse(readyAt) - Date.parse(requestedAt)) / 1000,
        });
        await ctx.log(`${machine.name}: ready (${p.provider}): ${target.disks.join(", ")}`);
      } catch (err) {
        failures.push(`${machine.name}: ${errorMessage(err)}`);
        await ctx.state.updateMachine(machineId, { lifecycle: previous });
        await ctx.setMachine({ machineId, status: "FAILED", requestedAt, error: errorMessage(err) });
        await ctx.log(`${machine.name}: launch failed: ${errorMessage(err)}`);
      }
    }
    if (failures.length > 0) throw new Error(`Launch failed for ${failures.join("; ")}`);
  };
}
