/**
 * Applies each project's PIT retention policy to its machines' timelines, once at start
 * and then every `intervalMs` (default one minute). The replicator does the dropping
 * (named snapshots and the newest PIT always stay) and its store compacts the data away.
 * A failure for one machine is logged and the others go on.
 */
import type { StateStore } from "./state/state-store.js";
import type { ReplicatorControl } from "./replicator-control.js";

export const DEFAULT_RETENTION_INTERVAL_MS = 60_000;

export interface RetentionSweeperOptions {
  readonly state: StateStore;
  readonly replicator: ReplicatorControl;
  readonly now: () => number;
  readonly logError: (message: string, err: unknown) => void;
  readonly intervalMs?: number;
}

export class RetentionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: RetentionSweeperOptions) {}

  start(): void {
    this.schedule(0);
  }

  /** One pass over every machine; resolves with the PITs dropped. */
  async sweep(): Promise<number> {
    let dropped = 0;
    const projects = new Map((await this.options.state.listProjects()).map((p) => [p.id, p]));
    for (const machine of await this.options.state.listMachines()) {
      if (this.stopped) break;
      const project = projects.get(machine.projectId);
      if (project === undefined) continue;
      try {
        const outcome = await this.options.replicator.applyRetention(
          machine.timelineId,
          project.settings.retention,
          this.options.now(),
        );
        dropped += outcome.dropped;
      } catch (err) {
        this.options.logError(`Retention for machine ${machine.name} (${machine.id}) failed`, err);
      }
    }
    return dropped;
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweep()
        .then(
          () => undefined,
          (err: unknown) => this.options.logError("Retention sweep failed", err),
        )
        .finally(() => {
          this.running = undefined;
          this.schedule(this.options.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS);
        });
    }, delay);
    this.timer.unref();
  }
}
