/**
 * FAILBACK_PREPARE and RETURN_TO_NORMAL. Prepare turns replication around: the project's
 * direction becomes FAILBACK and the replicator captures each failed-over machine's
 * recovered disks into its recovery branch, which the failback client then receives.
 * Return to normal turns it around again: each failed-back machine replicates forward into
 * a new timeline that is a copy-on-write branch of the recovered data, so the agent
 * compares hashes and sends only what differs, never the whole disk.
 */
import { UserError, errorMessage } from "../../../common/errors.js";
import type { Lifecycle } from "../../../common/states.js";
import type { MachineRecord } from "../../state/state-store.js";
import type { JobContext } from "../job-handlers.js";

/**
 * The machines the route selected (params.machineIds), each still in `lifecycle`: the
 * route checked that when it accepted the job, but state may have moved since.
 */
async function selected(ctx: JobContext, lifecycle: Lifecycle): Promise<MachineRecord[]> {
  const ids = ctx.job.params["machineIds"];
  if (!Array.isArray(ids) || ids.length === 0) throw new Error(`Job ${ctx.job.id} names no machines`);
  const machines: MachineRecord[] = [];
  for (const id of ids) {
    const m = await ctx.state.getMachine(String(id));
    if (!m) throw new UserError(`Machine ${String(id)} no longer exists`, 404);
    if (m.lifecycle !== lifecycle)
      throw new UserError(`Machine ${m.name} is ${m.lifecycle}, not ${lifecycle}`, 409);
    machines.push(m);
  }
  return machines;
}

export async function failbackPrepareJob(ctx: JobContext): Promise<void> {
  const machines = await selected(ctx, "FAILED_OVER");
  await ctx.state.updateProject(ctx.job.projectId, { direction: "FAILBACK" });
  for (const m of machines) {
    const recovery = (await ctx.state.listLaunchedMachines({ machineId: m.id }))
      .filter((l) => l.mode === "recovery")
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .at(-1);
    if (!recovery) {
      await ctx.setMachine({ machineId: m.id, status: "FAILED", error: "No running recovery machine" });
      throw new UserError(`Machine ${m.name} has no running recovery machine to fail back from`, 409);
    }
    await ctx.replicator.startFailback(m.id, recovery.branchId, recovery.disks);
    await ctx.state.updateMachine(m.id, {
      lifecycle: "PREPARING_FOR_FAILBACK",
      failbackBranchId: recovery.branchId,
    });
    await ctx.setMachine({ machineId: m.id, status: "COMPLETED", disks: recovery.disks });
    await ctx.log(
      `${m.name}: replication reversed; run \`lifeboat failback-client --token T --machine ${m.id} --disk ...\` on the original machine`,
    );
  }
}

export async function returnToNormalJob(ctx: JobContext): Promise<void> {
  const machines = await selected(ctx, "FAILED_BACK");
  for (const m of machines) {
    try {
      if (!m.failbackBranchId) throw new Error("its failback branch is unknown");
      const n = Number(/-(\d+)$/.exec(m.timelineId)?.[1] ?? "1");
      const newTimeline = `tl-${m.id}-${n + 1}`;
      await ctx.replicator.returnToNormal(m.id, m.failbackBranchId, newTimeline);
      await ctx.state.updateMachine(m.id, {
        timelineId: newTimeline,
        lifecycle: "NORMAL",
        failbackBranchId: null,
        failback: null,
      });
      await ctx.setMachine({ machineId: m.id, status: "COMPLETED" });
      await ctx.log(
        `${m.name}: replicating forward again into ${newTimeline} (branch of the recovered data)`,
      );
    } catch (err) {
      await ctx.setMachine({ machineId: m.id, status: "FAILED", error: errorMessage(err) });
      throw new Error(`Return to normal failed for ${m.name}: ${errorMessage(err)}`, { cause: err });
    }
  }
  await ctx.state.updateProject(ctx.job.projectId, { direction: "FAILOVER" });
}
