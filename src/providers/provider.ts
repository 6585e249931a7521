/**
 * A provider launches target machines from a PIT (or from the branch a launch writes to).
 * Implementations live in one folder each and are listed in `registry.ts`; the console's
 * job handlers only see this interface.
 *
 * Contract: `launch` resolves once the machine is ready (for `export`: every disk written
 * and fsync'd; for `local`: its guest said it is up); it is not idempotent: each call makes
 * a new machine. A launch that fails leaves nothing running. `terminate` stops and removes
 * what `launch` made and is idempotent (a missing machine is not an error); it works from
 * the target alone, in any process (the console may have restarted since the launch).
 */
import type { Blueprint } from "../common/model.js";
import type { LaunchMode } from "../common/states.js";
import type { Timeline } from "../store/staging-store.js";
import type { ImageFormat } from "./image-format.js";

export interface LaunchRequest {
  readonly machineName: string;
  readonly machineId: string;
  readonly mode: LaunchMode;
  /** The branch the launched machine writes to, read at `seq`. */
  readonly timeline: Timeline;
  readonly seq: number;
  readonly blueprint: Blueprint;
  /** The source machine as its agent reported it: "copy-of-source" sizes from it. */
  readonly source?: { readonly cpus: number; readonly memoryMiB: number };
  /** Provider-specific target, e.g. the export directory. */
  readonly outDir: string;
  /** Image format, for providers that write image files (export); default raw. Others ignore it. */
  readonly format?: ImageFormat;
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Progress worth a line in the job's log (the accelerator chosen, the machine started). */
  readonly onLog?: (message: string) => void;
  readonly signal?: AbortSignal;
}

export interface LaunchedTarget {
  /** Provider handle of the machine (export: its directory). */
  readonly ref: string;
  /** The machine's disks as the provider presents them (export: image file paths). */
  readonly disks: readonly string[];
  /** When the machine started running (providers that run machines). */
  readonly startedAt?: Date;
  /** When its guest said it is up (providers that watch the guest). */
  readonly guestUpAt?: Date;
  /** Where its console output goes (local: the serial log file). */
  readonly consoleLog?: string;
}

export interface Provider {
  readonly name: string;
  launch(request: LaunchRequest): Promise<LaunchedTarget>;
  terminate(target: LaunchedTarget): Promise<void>;
}
