/**
 * What the replicator does with a project's PIT policy: drop the PITs the policy no longer
 * keeps (the store then compacts their data away), and name or un-name snapshots. Named
 * snapshots (`keep`) and the newest PIT are always kept, so an idle machine still has a
 * launchable PIT; branch bases stay readable through the store's own pins.
 */
import { UserError } from "../common/errors.js";
import type { RetentionPolicy } from "../store/retention/retention-policy.js";
import { selectPits } from "../store/retention/select-pits.js";
import type { Pit, Timeline } from "../store/staging-store.js";

export interface RetentionOutcome {
  readonly kept: number;
  readonly dropped: number;
}

export async function applyRetention(
  timeline: Timeline,
  policy: RetentionPolicy,
  now: number,
): Promise<RetentionOutcome> {
  const pits = timeline.pits();
  const pinned = new Set(pits.filter((p) => p.keep === true).map((p) => p.seq));
  const newest = pits.at(-1);
  if (newest !== undefined) pinned.add(newest.seq);
  const { keep, drop } = selectPits(pits, policy, now, pinned);
  if (drop.length > 0) await timeline.dropPits(drop.map((p) => p.seq));
  return { kept: keep.length, dropped: drop.length };
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,63}$/;

/** Names the PIT at `seq` (default: the newest) and keeps it until `unnameSnapshot`. */
export async function nameSnapshot(timeline: Timeline, name: string, seq?: number): Promise<Pit> {
  if (!NAME_PATTERN.test(name)) {
    throw new UserError(
      `Invalid snapshot name ${JSON.stringify(name)}: use 1-64 of letters, digits, space . _ : - starting with a letter or digit`,
    );
  }
  const pits = timeline.pits();
  const target = seq === undefined ? pits.at(-1) : pits.find((p) => p.seq === seq);
  if (target === undefined) {
    throw new UserError(
      seq === undefined
        ? `Timeline ${timeline.info.id} has no PIT yet: wait for replication to cut one`
        : `Timeline ${timeline.info.id} has no PIT at seq ${seq}`,
      seq === undefined ? 409 : 404,
    );
  }
  return await timeline.markPit(target.seq, { label: name, keep: true });
}

/** Turns a named snapshot back into an ordinary PIT, which retention may then drop. */
export async function unnameSnapshot(timeline: Timeline, seq: number): Promise<Pit> {
  const pit = timeline.pits().find((p) => p.seq === seq);
  if (pit === undefined || pit.keep !== true) {
    throw new UserError(`Timeline ${timeline.info.id} has no named snapshot at seq ${seq}`, 404);
  }
  return await timeline.markPit(seq, { keep: false });
}
