/**
 * Runs PENDING jobs in the background. One loop, owned by the runner and stopped by
 * `close()`, picks pending jobs from the state store (oldest first, a few at a time) when
 * woken or every second, so a job recorded by another console instance is found too. Jobs
 * a previous process left STARTED are failed on start: their handler died with it.
 */
import { errorMessage } from "../../common/errors.js";
import type { Job, JobMachineResult } from "../../common/model.js";
import type { ReplicatorControl } from "../replicator-control.js";
import type { StateStore } from "../state/state-store.js";
import type { JobContext, JobHandlers } from "./job-handlers.js";

export interface JobRunnerOptions {
  readonly state: StateStore;
  readonly replicator: ReplicatorControl;
  readonly handlers: JobHandlers;
  readonly now?: () => number;
  readonly logError?: (message: string, err: unknown) => void;
  /** Jobs run at the same time (default 4). */
  readonly concurrency?: number;
  /** Poll interval when nobody wakes the loop (default 1000 ms). */
  readonly pollMs?: number;
}

export class JobRunner {
  readonly #options: JobRunnerOptions;
  readonly #abort = new AbortController();
  readonly #running = new Map<string, Promise<void>>();
  #wake: (() => void) | undefined;
  #woken = false;
  #loop: Promise<void> | undefined;

  constructor(options: JobRunnerOptions) {
    this.#options = options;
  }

  #iso(): string {
    return new Date((this.#options.now ?? Date.now)()).toISOString();
  }

  /** Fails jobs a previous process left STARTED, then starts the loop. */
  async start(): Promise<void> {
    if (this.#loop !== undefined) return;
    for (const job of await this.#options.state.listJobs({ status: "STARTED" })) {
      await this.#options.state.appendJobLog(job.id, this.#iso(), "The console stopped while this job ran");
      await this.#options.state.updateJob(job.id, {
        status: "FAILED",
        endedAt: this.#iso(),
        error: "The console stopped while this job ran: start it again",
      });
    }
    this.#loop = this.#run();
  }

  /** A job was recorded: look now rather than at the next poll. */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /** Resolves when no job is pending or running (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      await Promise.all(this.#running.values());
      const pending = await this.#options.state.listJobs({ status: "PENDING" });
      if (pending.length === 0 && this.#running.size === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Stops the loop, aborts running handlers and waits for them. Idempotent. */
  async close(): Promise<void> {
    this.#abort.abort(new Error("The console is shutting down"));
    this.#wake?.();
    await this.#loop;
    await Promise.allSettled(this.#running.values());
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    const concurrency = this.#options.concurrency ?? 4;
    while (!signal.aborted) {
      this.#woken = false;
      try {
        const pending = (await this.#options.state.listJobs({ status: "PENDING" })).reverse();
        for (const job of pending) {
          if (this.#running.size >= concurrency || signal.aborted) break;
          if (this.#running.has(job.id)) continue;
          const run = this.#execute(job).finally(() => {
            this.#running.delete(job.id);
            this.wake();
          });
          this.#running.set(job.id, run);
        }
      } catch (err) {
        this.#options.logError?.("Job runner could not read pending jobs", err);
      }
      if (this.#woken || signal.aborted) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#options.pollMs ?? 1000);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async #execute(job: Job): Promise<void> {
    const { state } = this.#options;
    try {
      const started = await state.updateJob(job.id, { status: "STARTED", startedAt: this.#iso() });
      const handler = this.#options.handlers[job.kind];
      // Serialized so that concurrent updates of one machine's result merge, never race.
      let results = Promise.resolve();
      if (handler === undefined) {
        throw new Error(`No handler for job kind ${job.kind}: this console was started without one`);
      }
      const ctx: JobContext = {
        job: started,
        state,
        replicator: this.#options.replicator,
        signal: this.#abort.signal,
        log: (message: string) => state.appendJobLog(job.id, this.#iso(), message),
        setMachine: (result: JobMachineResult) => {
          const next = results.then(async () => {
            const current = (await state.getJob(job.id))?.machines.find(
              (m) => m.machineId === result.machineId,
            );
            await state.setJobMachine(job.id, { ...current, ...result });
          });
          results = next.catch(() => undefined);
          return next;
        },
      };
      await handler(ctx);
      await state.updateJob(job.id, { status: "COMPLETED", endedAt: this.#iso() });
    } catch (err) {
      const message = errorMessage(err);
      try {
        await state.appendJobLog(job.id, this.#iso(), `Failed: ${message}`);
        await state.updateJob(job.id, { status: "FAILED", endedAt: this.#iso(), error: message });
      } catch (inner) {
        this.#options.logError?.(`Could not record the failure of job ${job.id}`, inner);
      }
    }
  }
}
