/**
 * A provider launches target machines from a PIT (or from the branch a launch writes to).
 * Implementations live in one folder each and are listed in `registry.ts`; the console's
 * job handlers only see this interface.
 *
 * Contract: `launch` resolves once the machine is ready (for `export`: every disk written
 * and fsync'd); it is not idempotent: each call makes a new machine. `terminate` removes
 * what `launch` made and is idempotent (a missing machine is not an error).
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
  /** Provider-specific target, e.g. the export directory. */
  readonly outDir: string;
  /** Image format, for providers that write image files (export); default raw. Others ignore it. */
  readonly format?: ImageFormat;
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
  readonly signal?: AbortSignal;
}

export interface LaunchedTarget {
  /** Provider handle of the machine (export: its directory). */
  readonly ref: string;
  /** The machine's disks as the provider presents them (export: image file paths). */
  readonly disks: readonly string[];
}

export interface Provider {
  readonly name: string;
  launch(request: LaunchRequest): Promise<LaunchedTarget>;
  terminate(target: LaunchedTarget): Promise<void>;
}
