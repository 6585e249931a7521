/**
 * The change trackers an agent can run (`lifeboat agent --tracker NAME`). This file is the
 * one place that names the implementations; the agent asks for a tracker by name.
 */
import { UserError } from "../../common/errors.js";
import type { Logger } from "../../common/log.js";
import type { ChangeTracker } from "./change-tracker.js";
import { InterceptTracker } from "./intercept/intercept-tracker.js";
import type { NbdListen } from "./intercept/nbd-endpoint.js";
import { ScanTracker } from "./scan/scan-tracker.js";

export interface TrackerDisk {
  readonly id: string;
  readonly path: string;
  readonly sizeBytes: number;
}

/** What every tracker gets, and each tracker's own settings (ignored by the others). */
export interface TrackerOptions {
  readonly disks: readonly TrackerDisk[];
  readonly stateDir: string;
  readonly log: Logger;
  /** scan: pause between passes. */
  readonly scanIntervalMs?: number;
  /** intercept: where the disks are served over NBD. */
  readonly nbdListen?: NbdListen;
  /** intercept: acknowledge writes only once the standby holds them durably. */
  readonly sync?: boolean;
  /** intercept, synchronous: stop waiting for the standby after this long. */
  readonly syncTimeoutMs?: number;
}

type OpenTracker = (o: TrackerOptions) => Promise<ChangeTracker>;

const TRACKERS: Readonly<Record<string, OpenTracker>> = {
  scan: (o) =>
    ScanTracker.open({
      disks: o.disks,
      stateDir: o.stateDir,
      intervalMs: o.scanIntervalMs ?? 1000,
    }),
  intercept: (o) => {
    if (!o.nbdListen) throw new UserError("The intercept tracker needs --nbd-dir or --nbd-listen");
    return InterceptTracker.open({
      disks: o.disks,
      stateDir: o.stateDir,
      listen: o.nbdListen,
      log: o.log,
      ...(o.sync === undefined ? {} : { sync: o.sync }),
      ...(o.syncTimeoutMs === undefined ? {} : { syncTimeoutMs: o.syncTimeoutMs }),
    });
  },
};

export const TRACKER_NAMES = Object.keys(TRACKERS);

export function openTracker(name: string, options: TrackerOptions): Promise<ChangeTracker> {
  const open = TRACKERS[name];
  if (!open) throw new UserError(`Unknown tracker ${name}: use one of ${TRACKER_NAMES.join(", ")}`);
  return open(options);
}
