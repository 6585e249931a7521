/**
 * Which lifecycle a launch puts a machine in while it runs and after it succeeds, by
 * project type, replication direction and mode. Launch handlers use it so that the
 * states they set are the ones the console's routes check (failback prepare wants
 * FAILED_OVER, return to normal wants FAILED_BACK). A failed launch returns the machine
 * to the lifecycle it had before.
 */
import type { Project } from "../../common/model.js";
import type { LaunchMode, Lifecycle } from "../../common/states.js";

export interface LaunchLifecycle {
  readonly during: Lifecycle;
  readonly after: Lifecycle;
  /** Whether a successful launch sets lastTestAt (TESTED_RECENTLY expires from it). */
  readonly setsLastTestAt: boolean;
}

export function launchLifecycle(
  project: Pick<Project, "type" | "direction">,
  mode: LaunchMode,
): LaunchLifecycle {
  if (project.type === "migration") {
    return mode === "cutover"
      ? { during: "CUTTING_OVER", after: "CUTOVER_COMPLETE", setsLastTestAt: false }
      : { during: "TESTING", after: "READY_FOR_CUTOVER", setsLastTestAt: true };
  }
  if (project.direction === "FAILBACK") {
    // Launching back on the original site: a test keeps the failback going.
    return mode === "recovery"
      ? { during: "FAILBACK_IN_PROGRESS", after: "FAILED_BACK", setsLastTestAt: false }
      : { during: "FAILBACK_IN_PROGRESS", after: "READY_FOR_FAILBACK_LAUNCH", setsLastTestAt: false };
  }
  return mode === "recovery"
    ? { during: "RECOVERY_IN_PROGRESS", after: "FAILED_OVER", setsLastTestAt: false }
    : { during: "TEST_IN_PROGRESS", after: "TESTED_RECENTLY", setsLastTestAt: true };
}
