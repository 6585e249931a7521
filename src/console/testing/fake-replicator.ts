/**
 * A ReplicatorControl for console tests: it remembers assigned machines and serves PITs
 * that a test sets per timeline. The real replicator is built elsewhere; this stands in so
 * the console's routes and jobs can be tested alone.
 */
import type { ReplicatorControl, ReplicatorEndpoint } from "../replicator-control.js";
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
