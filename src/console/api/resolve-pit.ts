/**
 * Resolves a launch's PIT request for one machine: "latest" is the newest PIT; an ISO-8601
 * time is the newest PIT at or before it; "snapshot:NAME" is the machine's named snapshot.
 * Errors name the machine and what exists.
 */
import { UserError } from "../../common/errors.js";
import type { Pit } from "../../store/staging-store.js";

export type PitRequest =
  | { readonly kind: "latest" }
  | { readonly kind: "time"; readonly at: number }
  | { readonly kind: "snapshot"; readonly name: string };

const SNAPSHOT_PREFIX = "snapshot:";

/** Parses "latest", "snapshot:NAME" or an ISO-8601 time with a date; throws UserError 400. */
export function parsePitRequest(pit: string | undefined): PitRequest {
  if (pit === undefined || pit === "latest") return { kind: "latest" };
  if (pit.startsWith(SNAPSHOT_PREFIX) && pit.length > SNAPSHOT_PREFIX.length) {
    return { kind: "snapshot", name: pit.slice(SNAPSHOT_PREFIX.length) };
  }
  const ms = /^\d{4}-\d{2}-\d{2}/.test(pit) ? Date.parse(pit) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new UserError(
      `Invalid PIT ${pit}: use "latest", "snapshot:NAME" or an ISO-8601 time such as 2026-01-31T12:00:00Z`,
      400,
    );
  }
  return { kind: "time", at: ms };
}

export function resolvePit(machineName: string, pits: readonly Pit[], request: PitRequest): Pit {
  if (pits.length === 0) {
    throw new UserError(`Machine ${machineName} has no PIT yet: wait for the first snapshot`, 404);
  }
  if (request.kind === "snapshot") {
    const named = pits.filter((p) => p.label === request.name && p.keep === true).at(-1);
    if (named === undefined) {
      const names = [...new Set(pits.filter((p) => p.keep === true).map((p) => p.label))];
      throw new UserError(
        `Machine ${machineName} has no snapshot named ${JSON.stringify(request.name)}` +
          (names.length > 0 ? `: it has ${names.map((n) => JSON.stringify(n)).join(", ")}` : ""),
        404,
      );
    }
    return named;
  }
  const at = request.kind === "time" ? request.at : undefined;
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
