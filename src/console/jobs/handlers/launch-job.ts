/**
 * LAUNCH: for each machine, a copy-on-write branch of the chosen PIT, handed to the
 * provider; the launched machine writes to what the provider made. Records the launched
 * machine, its RTO (launch request to machine ready) and the lifecycle (`launchLifecycle`).
 * While the project is in failback (direction FAILBACK), a launch is the launch back on
 * the source: a test checks the failback client holds everything the recovered machine
 * has; a recovery finishes the failback stream and the machine becomes FAILED_BACK.
 */
import { UserError, errorMessage } from "../../../common/errors.js";
import { withBlueprintDefaults } from "../../../common/model.js";
import type { LaunchMode } from "../../../common/states.js";
import { DEFAULT_IMAGE_FORMAT, isImageFormat, type ImageFormat } from "../../../providers/image-format.js";
import type { Provider } from "../../../providers/provider.js";
import type { JobContext } from "../job-handlers.js";
import { launchLifecycle } from "../launch-lifecycle.js";

export interface LaunchParams {
  readonly mode: LaunchMode;
  readonly provider: string;
  readonly outDir: string;
  readonly format: ImageFormat;
  readonly pits: Readonly<Record<string, number>>;
}

export function launchParams(params: Readonly<Record<string, unknown>>, defaultOutDir: string): LaunchParams {
  const { mode, provider, outDir, format, pits } = params;
  if (mode !== "test" && mode !== "recovery" && mode !== "cutover")
    throw new Error(`Launch job has bad mode ${String(mode)}`);
  // Jobs recorded before formats existed carry none: they were raw.
  if (format !== undefined && !isImageFormat(format))
    throw new Error(`Launch job has bad format ${JSON.stringify(format)}`);
  if (typeof pits !== "object" || pits === null) throw new Error("Launch job has no resolved PITs");
  return {
    mode,
    provider: typeof provider === "string" ? provider : "export",
    outDir: typeof outDir === "string" ? outDir : defaultOutDir,
    format: format ?? DEFAULT_IMAGE_FORMAT,
    pits: pits as Record<string, number>,
  };
}

/** `defaultOutDir`: where launched machines go when the request names no directory. */
export function launchJob(providerFor: (name: string) => Provider, defaultOutDir: string) {
  return async (ctx: JobContext): Promise<void> => {
    const p = launchParams(ctx.job.params, defaultOutDir);
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
      const lifecycle = launchLifecycle(project, p.mode);
      try {
        await ctx.state.updateMachine(machineId, { lifecycle: lifecycle.during });
        if (project.direction === "FAILBACK") {
          let seq: number;
          if (p.mode === "recovery") {
            await ctx.log(`${machine.name}: finishing the failback stream (launch back on the source)`);
            seq = (await ctx.replicator.finishFailback(machineId, ctx.signal)).seq;
          } else {
            if (previous !== "READY_FOR_FAILBACK_LAUNCH")
              throw new UserError(
                `The failback client of ${machine.name} has not caught up yet: wait for READY_FOR_FAILBACK_LAUNCH`,
                409,
              );
            seq = -1;
          }
          const readyAt = new Date().toISOString();
          await ctx.state.updateMachine(machineId, { lifecycle: lifecycle.after });
          await ctx.setMachine({
            machineId,
            status: "COMPLETED",
            ...(seq >= 0 ? { pitSeq: seq } : {}),
            requestedAt,
            readyAt,
            rtoSeconds: (Date.parse(readyAt) - Date.parse(requestedAt)) / 1000,
          });
          await ctx.log(
            p.mode === "recovery"
              ? `${machine.name}: failed back at seq ${seq}; the source disks hold the recovered data`
              : `${machine.name}: failback client is caught up; ready for the failback launch`,
          );
          continue;
        }

        const pit = (await ctx.replicator.pits(machine.timelineId)).find((x) => x.seq === seq);
        const branchId = `br-${ctx.job.id}-${machineId}`;
        await ctx.replicator.createBranch(branchId, machine.timelineId, seq);
        await ctx.log(
          `${machine.name}: branch ${branchId} of PIT ${seq}${pit ? ` (${new Date(pit.time).toISOString()})` : ""}`,
        );
        const target = await providerFor(p.provider).launch({
          machineName: machine.name,
          machineId,
          mode: p.mode,
          timeline: ctx.replicator.openTimeline(branchId),
          seq,
          blueprint: withBlueprintDefaults(await ctx.state.getBlueprint(machineId)),
          source: { cpus: machine.cpus, memoryMiB: machine.memoryMiB },
          outDir: p.outDir,
          onLog: (message) => void ctx.log(`${machine.name}: ${message}`).catch(() => undefined),
          format: p.format,
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
          ref: target.ref,
          pitSeq: seq,
          disks: target.disks,
          createdAt: readyAt,
          terminatedAt: null,
        });
        await ctx.state.updateMachine(machineId, {
          lifecycle: lifecycle.after,
          ...(lifecycle.setsLastTestAt ? { lastTestAt: readyAt } : {}),
        });
        await ctx.setMachine({
          machineId,
          status: "COMPLETED",
          disks: target.disks,
          pitSeq: seq,
          ...(pit ? { pitTime: new Date(pit.time).toISOString() } : {}),
          requestedAt,
          ...(target.startedAt ? { startedAt: target.startedAt.toISOString() } : {}),
          ...(target.guestUpAt ? { guestUpAt: target.guestUpAt.toISOString() } : {}),
          ...(target.consoleLog ? { consoleLog: target.consoleLog } : {}),
          readyAt,
          rtoSeconds: (Date.parse(readyAt) - Date.parse(requestedAt)) / 1000,
        });
        await ctx.log(`${machine.name}: ready (${p.provider}): ${target.disks.join(", ")}`);
        if (target.consoleLog) await ctx.log(`${machine.name}: console log ${target.consoleLog}`);
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
