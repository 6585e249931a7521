/**
 * Resolves a launch's PIT request for one machine: "latest" is the newest PIT; an ISO-8601
 * time is the newest PIT at or before it. Errors name the machine and what exists.
 */
import { UserError } from "../../common/errors.js";
import type { Pit } from "../../store/staging-store.js";

/** Parses "latest" (undefined) or an ISO-8601 time with a date; throws UserError 400. */
export function parsePitRequest(pit: string | undefined): number | undefined {
  if (pit === undefined || pit === "latest") return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(pit) ? Date.parse(pit) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new UserError(
      `Invalid PIT ${pit}: use "latest" or an ISO-8601 time such as 2026-01-31T12:00:00Z`,
      400,
    );
  }
  return ms;
}

export function resolvePit(machineName: string, pits: readonly Pit[], at: number | undefined): Pit {
  if (pits.length === 0) {
    throw new UserError(`Machine ${machineName} has no PIT yet: wait for the first snapshot`, 404);
  }
  let chosen: Pit | undefined;
  for (const pit of pits) {
    if ((at === undefined || pit.time <= at) && (chosen === undefined || pit.time >= chosen.time))
      chosen = pit;
  }
  if (chosen === undefined) {
    const oldest = pits.reduce((a, b) => (b.time < a.time ? b : a));
    throw new UserError(
      `No PIT at or before ${new Date(at ?? 0).toISOString()}: the oldest PIT of ${machineName} is ${new Date(oldest.time).toISOString()}`,
      404,
    );
  }
  return chosen;
}
