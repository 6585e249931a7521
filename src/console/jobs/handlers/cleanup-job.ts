/**
 * CLEANUP: removes what drills and recoveries left behind: every launched test machine,
 * and recovery machines of machines that are back to NORMAL (their data now lives on in
 * the forward timeline). A branch another timeline still builds on is kept.
 */
import { basename } from "node:path";
import { errorMessage } from "../../../common/errors.js";
import type { Provider } from "../../../providers/provider.js";
import type { JobContext } from "../job-handlers.js";

export function cleanupJob(providerFor: (name: string) => Provider) {
  return async (ctx: JobContext): Promise<void> => {
    const ids = ctx.job.params["launchedMachineIds"];
    const wanted = new Set(Array.isArray(ids) ? ids.map(String) : []);
    const launched = (await ctx.state.listLaunchedMachines({ projectId: ctx.job.projectId })).filter((l) =>
      wanted.has(l.id),
    );
    for (const l of launched) {
      const machine = await ctx.state.getMachine(l.machineId);
      const removable = l.mode === "test" || machine?.lifecycle === "NORMAL";
      if (!removable) continue;
      await providerFor(l.provider).terminate({ ref: l.ref, disks: l.disks });
      try {
        await ctx.replicator.dropTimeline(l.branchId);
      } catch (err) {
        await ctx.log(`${l.id}: kept branch ${l.branchId}: ${errorMessage(err)}`);
      }
      await ctx.state.terminateLaunchedMachine(l.id, new Date().toISOString());
      await ctx.log(`${machine?.name ?? l.machineId}: removed ${l.mode} machine ${basename(l.ref)}`);
    }
  };
}
