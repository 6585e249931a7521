/**
 * The console's side of ConsoleLink: what a replicator reports becomes machine state.
 * ConsoleLink methods return void (the replicator must not wait on the console), so each
 * report is queued and applied in order; failures are logged, never thrown back.
 */
import type { Lifecycle } from "../common/states.js";
import type { Pit } from "../store/staging-store.js";
import type { ConsoleLink } from "./replicator-control.js";
import type { StateStore } from "./state/state-store.js";

const FAILBACK_STREAMING: ReadonlySet<Lifecycle> = new Set<Lifecycle>([
  "PREPARING_FOR_FAILBACK",
  "FAILBACK_REPLICATING",
  "READY_FOR_FAILBACK_LAUNCH",
]);

export class StateConsoleLink implements ConsoleLink {
  readonly #state: StateStore;
  readonly #now: () => number;
  readonly #logError: (message: string, err: unknown) => void;
  #queue: Promise<void> = Promise.resolve();

  constructor(state: StateStore, now: () => number, logError: (message: string, err: unknown) => void) {
    this.#state = state;
    this.#now = now;
    this.#logError = logError;
  }

  #enqueue(what: string, work: () => Promise<void>): void {
    this.#queue = this.#queue
      .then(work)
      .catch((err: unknown) => this.#logError(`ConsoleLink ${what} failed`, err));
  }

  /** Resolves when every report so far is applied. */
  idle(): Promise<void> {
    return this.#queue;
  }

  connectionChanged(machineId: string, role: "source" | "failback", connected: boolean): void {
    this.#enqueue("connectionChanged", async () => {
      if ((await this.#state.getMachine(machineId)) === undefined) return;
      await this.#state.updateMachine(
        machineId,
        role === "source" ? { replicatorConnected: connected } : { failbackConnected: connected },
      );
    });
  }

  pitCut(machineId: string, timelineId: string, pit: Pit): void {
    this.#enqueue("pitCut", async () => {
      const machine = await this.#state.getMachine(machineId);
      if (machine === undefined || machine.timelineId !== timelineId) return;
      const time = new Date(pit.time).toISOString();
      if (machine.newestPitTime !== null && machine.newestPitTime >= time) return;
      await this.#state.updateMachine(machineId, { newestPitTime: time });
    });
  }

  failbackProgress(
    machineId: string,
    progress: { sentBytes: number; totalBytes: number; caughtUp: boolean },
  ): void {
    this.#enqueue("failbackProgress", async () => {
      const machine = await this.#state.getMachine(machineId);
      if (machine === undefined) return;
      // The replicator knows whether the client holds everything the branch has: that
      // moves the lifecycle between FAILBACK_REPLICATING and READY_FOR_FAILBACK_LAUNCH.
      const streaming = FAILBACK_STREAMING.has(machine.lifecycle);
      await this.#state.updateMachine(machineId, {
        failback: { ...progress, updatedAt: new Date(this.#now()).toISOString() },
        ...(streaming
          ? { lifecycle: progress.caughtUp ? "READY_FOR_FAILBACK_LAUNCH" : "FAILBACK_REPLICATING" }
          : {}),
      });
    });
  }
}
