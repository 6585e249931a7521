/**
 * A ReplicatorControl for console tests: it remembers assigned machines and serves PITs
 * that a test sets per timeline. The real replicator is built elsewhere; this stands in so
 * the console's routes and jobs can be tested alone.
 */
import type { ReplicatorControl, ReplicatorEndpoint } from "../replicator-control.js";
import { UserError } from "../../common/errors.js";
import type { RetentionOutcome } from "../../replicator/pit-retention.js";
import type { RetentionPolicy } from "../../store/retention/retention-policy.js";
import type { DiskSpec, Pit, Timeline } from "../../store/staging-store.js";

export class FakeReplicator implements ReplicatorControl {
  readonly endpoint: ReplicatorEndpoint = { id: "r-test", host: "127.0.0.1", port: 1500 };
  readonly assigned = new Map<string, { timelineId: string; disks: readonly DiskSpec[] }>();
  readonly pitsByTimeline = new Map<string, Pit[]>();
  readonly calls: string[] = [];

  assignMachine(machineId: string, timelineId: string, disks: readonly DiskSpec[]): Promise<void> {
    this.calls.push(`assignMachine ${machineId}`);
    this.assigned.set(machineId, { timelineId, disks });
    return Promise.resolve();
  }

  pits(timelineId: string): Promise<readonly Pit[]> {
    return Promise.resolve(this.pitsByTimeline.get(timelineId) ?? []);
  }

  nameSnapshot(timelineId: string, name: string, seq?: number): Promise<Pit> {
    this.calls.push(`nameSnapshot ${timelineId} ${name} ${seq ?? "newest"}`);
    return this.mark(timelineId, seq, (p) => ({ ...p, label: name, keep: true }));
  }

  deleteSnapshot(timelineId: string, seq: number): Promise<Pit> {
    this.calls.push(`deleteSnapshot ${timelineId} ${seq}`);
    return this.mark(timelineId, seq, (p) => ({ seq: p.seq, time: p.time }));
  }

  applyRetention(timelineId: string, policy: RetentionPolicy, now: number): Promise<RetentionOutcome> {
    this.calls.push(`applyRetention ${timelineId} ${policy.keepAllSeconds} ${now}`);
    const kept = this.pitsByTimeline.get(timelineId)?.length ?? 0;
    return Promise.resolve({ kept, dropped: 0 });
  }

  private mark(timelineId: string, seq: number | undefined, change: (p: Pit) => Pit): Promise<Pit> {
    const pits = this.pitsByTimeline.get(timelineId) ?? [];
    const i = seq === undefined ? pits.length - 1 : pits.findIndex((p) => p.seq === seq);
    const pit = pits[i];
    if (pit === undefined) return Promise.reject(new UserError(`No PIT at seq ${seq ?? "newest"}`, 404));
    const next = change(pit);
    pits[i] = next;
    return Promise.resolve(next);
  }

  createBranch(branchId: string, timelineId: string, seq: number): Promise<void> {
    this.calls.push(`createBranch ${branchId} ${timelineId} ${seq}`);
    return Promise.resolve();
  }

  dropTimeline(timelineId: string): Promise<void> {
    this.calls.push(`dropTimeline ${timelineId}`);
    return Promise.resolve();
  }

  openTimeline(timelineId: string): Timeline {
    throw new Error(`FakeReplicator cannot open timeline ${timelineId}`);
  }

  startFailback(machineId: string, branchId: string): Promise<void> {
    this.calls.push(`startFailback ${machineId} ${branchId}`);
    return Promise.resolve();
  }

  finishFailback(machineId: string): Promise<{ seq: number }> {
    this.calls.push(`finishFailback ${machineId}`);
    return Promise.resolve({ seq: 0 });
  }

  returnToNormal(machineId: string, fromTimelineId: string, newTimelineId: string): Promise<void> {
    this.calls.push(`returnToNormal ${machineId} ${fromTimelineId} ${newTimelineId}`);
    return Promise.resolve();
  }
}
