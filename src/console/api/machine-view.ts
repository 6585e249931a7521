/**
 * What the API shows for a machine: the stored record with the states that depend on the
 * clock derived at read time. A machine whose agent has not reported for 15 s, or that the
 * replicator sees disconnected, reads DISCONNECTED (unless the agent's own report already
 * says why it is not streaming: STALLED, PAUSED); TESTED_RECENTLY reverts to NOT_TESTED
 * after the project's testedRecentlyDays; lag above the RPO target is flagged.
 */
import type { Project } from "../../common/model.js";
import type { MachineRecord } from "../state/state-store.js";

export const DISCONNECTED_AFTER_MS = 15_000;

export interface MachineView extends MachineRecord {
  readonly rpoBreached: boolean;
}

export function machineView(
  machine: MachineRecord,
  project: Project | undefined,
  nowMs: number,
): MachineView {
  let replication = machine.replication;
  if (replication.state !== "STOPPED") {
    const seen = Date.parse(machine.lastSeenAt ?? machine.createdAt);
    let reason: string | undefined;
    const agentExplains = replication.state === "STALLED" || replication.state === "PAUSED";
    if (machine.replicatorConnected === false && !agentExplains)
      reason = "The replicator lost the agent's connection";
    else if (nowMs - seen > DISCONNECTED_AFTER_MS) {
      reason =
        machine.lastSeenAt === null
          ? `The agent has not reported since it registered at ${machine.createdAt}`
          : `The agent has not reported since ${machine.lastSeenAt}`;
    }
    if (reason !== undefined) replication = { ...replication, state: "DISCONNECTED", reason };
  }
  let lifecycle = machine.lifecycle;
  if (lifecycle === "TESTED_RECENTLY" && project !== undefined) {
    const testedAt = machine.lastTestAt === null ? Number.NaN : Date.parse(machine.lastTestAt);
    if (!(nowMs - testedAt <= project.settings.testedRecentlyDays * 86_400_000)) lifecycle = "NOT_TESTED";
  }
  const rpo = project?.settings.rpoTargetSeconds;
  const rpoBreached = rpo !== undefined && replication.lagSeconds !== null && replication.lagSeconds > rpo;
  return { ...machine, replication, lifecycle, rpoBreached };
}
