/**
 * FAILBACK_PREPARE and RETURN_TO_NORMAL. Prepare turns replication around: the project's
 * direction becomes FAILBACK and the replicator captures each failed-over machine's
 * recovered disks into its recovery branch, which the failback client then receives.
 * Return to normal turns it around again: each failed-back machine replicates forward into
 * a new timeline that is a copy-on-write branch of the recovered data, so the agent
 * compares hashes and sends only what differs, never the whole disk.
 */
import { UserError, errorMessage } from "../../../common/errors.js";
import type { JobContext } from "../job-handlers.js";

export async function failbackPrepareJob(ctx: JobContext): Promise<void> {
  const machines = (await ctx.state.listMachines(ctx.job.projectId)).filter(
    (m) => m.lifecycle === "FAILED_OVER",
  );
  if (machines.length === 0)
    throw new UserError("No machine of this project is failed over: nothing to fail back", 409);
  await ctx.state.updateProject(ctx.job.projectId, { direction: "FAILBACK" });
  for (const m of machines) {
    const recovery = (await ctx.state.listLaunchedMachines({ machineId: m.id }))
      .filter((l) => l.mode === "recovery" && l.terminatedAt === null)
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
  const machines = (await ctx.state.listMachines(ctx.job.projectId)).filter(
    (m) => m.lifecycle === "FAILED_BACK",
  );
  if (machines.length === 0)
    throw new UserError("No machine of this project is failed back: nothing to return", 409);
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
