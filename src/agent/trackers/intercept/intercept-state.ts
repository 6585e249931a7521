/**
 * What the intercept tracker keeps across restarts, in `intercept.json` beside the scan
 * tracker's hash maps (replaced atomically and durably):
 * - `clean`: false while the agent runs. A start that finds false knows writes may have been
 *   acknowledged to NBD clients and never spooled, and compares every disk with the standby.
 * - `syncedTimeline`: the timeline whose initial copy (or compare) finished, after which the
 *   queue of writes was the whole story: a clean restart continues it without reading the disks.
 * - `dirty`: regions written but never queued (the backlog went past the spool), per disk,
 *   which a clean restart re-sends (RESCAN of the dirty regions only).
 * - `diskStamps`: for disks that are regular files, mtime, ctime and size at the clean stop.
 *   A file written while the agent was not serving it has another stamp: it is compared.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileDurably } from "../../../common/durable-file.js";
import type { ByteRegion } from "./dirty-regions.js";

export interface InterceptState {
  readonly clean: boolean;
  readonly syncedTimeline: string;
  /** dirty[i]: regions of disk i, in order. */
  readonly dirty: readonly (readonly ByteRegion[])[];
  /** Per disk; null for a block device (no reliable stamp). Absent before the first clean stop. */
  readonly diskStamps?: readonly (string | null)[];
}

/** What changes when a regular file is written; null for a block device. */
export async function diskStamp(path: string): Promise<string | null> {
  const st = await stat(path, { bigint: true });
  return st.isFile() ? `${st.mtimeNs}/${st.ctimeNs}/${st.size}` : null;
}

const FILE = "intercept.json";

/** The saved state, or null when there is none (a first start). A file that does not parse counts as unclean. */
export async function loadInterceptState(dir: string): Promise<InterceptState | null> {
  let text: string;
  try {
    text = await readFile(join(dir, FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<InterceptState>;
    if (typeof v.clean !== "boolean" || typeof v.syncedTimeline !== "string" || !Array.isArray(v.dirty))
      throw new Error("missing fields");
    const dirty = v.dirty.map((regions) =>
      (regions as unknown[]).map((r) => {
        const { offset, length } = r as ByteRegion;
        if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) throw new Error("bad region");
        return { offset, length };
      }),
    );
    const stamps = Array.isArray(v.diskStamps)
      ? v.diskStamps.map((x) => (typeof x === "string" ? x : null))
      : undefined;
    return {
      clean: v.clean,
      syncedTimeline: v.syncedTimeline,
      dirty,
      ...(stamps === undefined ? {} : { diskStamps: stamps }),
    };
  } catch {
    return { clean: false, syncedTimeline: "", dirty: [] };
  }
}

export async function saveInterceptState(dir: string, state: InterceptState): Promise<void> {
  await writeFileDurably(join(dir, FILE), JSON.stringify(state));
}
