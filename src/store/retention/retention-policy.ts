/**
 * A project's point-in-time retention policy: every PIT is kept for a window, then
 * thinning tiers keep one PIT per interval up to an age. `selectPits` applies it; this file
 * holds the type, the default and the validation every policy passes before it is stored
 * or applied. The rules below are what make thinning stable over time (see select-pits.ts):
 * each tier's interval is a multiple of the one before it, so buckets nest, and each tier's
 * window spans at least one of its intervals, so a bucket never skips a tier as it ages.
 */
import { UserError } from "../../common/errors.js";

export interface RetentionTier {
  /** Keep one PIT per this many seconds: the oldest in each epoch-aligned bucket. */
  readonly everySeconds: number;
  /**
   * ...for PITs younger than this many seconds, measured from now (not from the end of the
   * tier before). The tier covers ages from the previous window's end up to this one.
   */
  readonly forSeconds: number;
}

export interface RetentionPolicy {
  /** Every PIT younger than this is kept (0: none is kept for its own sake). */
  readonly keepAllSeconds: number;
  /** Coarser and longer one after the other; may be empty. */
  readonly tiers: readonly RetentionTier[];
}

const DAY = 86_400;

/** The default: every PIT for 1 h, one per 10 min for 24 h, hourly for 7 days, daily for 30 days. */
export const DEFAULT_RETENTION_POLICY: RetentionPolicy = {
  keepAllSeconds: 3600,
  tiers: [
    { everySeconds: 600, forSeconds: DAY },
    { everySeconds: 3600, forSeconds: 7 * DAY },
    { everySeconds: DAY, forSeconds: 30 * DAY },
  ],
};

/** No PIT outlives this unless pinned (a branch base or a named snapshot). */
export const MAX_RETENTION_SECONDS = 365 * DAY;
/** A policy must keep at least this much history. */
export const MIN_RETENTION_SECONDS = 60;
export const MAX_RETENTION_TIERS = 8;

/** How far back the policy keeps anything: the last tier's window, or the keep-all window. */
export function retentionReachSeconds(policy: RetentionPolicy): number {
  return policy.tiers.at(-1)?.forSeconds ?? policy.keepAllSeconds;
}

/** A field of a policy: ["keepAllSeconds"], ["tiers"] or ["tiers", index, key]. */
export type RetentionField =
  | readonly ["keepAllSeconds"]
  | readonly ["tiers"]
  | readonly ["tiers", number, "everySeconds" | "forSeconds"];

/** How validation messages name a field and print a number of seconds (JSON and text differ). */
export interface RetentionNaming {
  readonly field: (field: RetentionField) => string;
  readonly seconds: (value: number) => string;
}

function pointerNaming(at: string): RetentionNaming {
  return {
    field: (field) => `${at}/${field.join("/")}`,
    seconds: (value) => `${value}`,
  };
}

function fail(message: string): never {
  throw new UserError(`Invalid retention policy: ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function onlyKeys(value: Record<string, unknown>, keys: readonly string[], at: string): void {
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) fail(`${at}/${key} is not a known field`);
  }
}

function wholeSeconds(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    fail(`${name} must be a whole number of seconds: got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

/**
 * Checks a policy whose numbers are whole seconds: each within 0 (1 for tiers) and 365 days,
 * tiers nest and widen, the reach is at least MIN_RETENTION_SECONDS. Throws UserError
 * naming the first bad field. Exported for the text form, which names fields its own way.
 */
export function checkRetentionPolicy(policy: RetentionPolicy, naming: RetentionNaming): void {
  const { field, seconds } = naming;
  const inRange = (value: number, name: string, min: number): void => {
    if (value < min || value > MAX_RETENTION_SECONDS) {
      fail(
        `${name} must be between ${seconds(min)} and ${seconds(MAX_RETENTION_SECONDS)} (365 days): ` +
          `got ${seconds(value)}`,
      );
    }
  };
  inRange(policy.keepAllSeconds, field(["keepAllSeconds"]), 0);
  if (policy.tiers.length > MAX_RETENTION_TIERS) {
    fail(`${field(["tiers"])} must have at most ${MAX_RETENTION_TIERS} tiers: got ${policy.tiers.length}`);
  }
  let previousEvery = 0;
  let previousEnd = policy.keepAllSeconds;
  for (const [i, tier] of policy.tiers.entries()) {
    const every = field(["tiers", i, "everySeconds"]);
    const window = field(["tiers", i, "forSeconds"]);
    inRange(tier.everySeconds, every, 1);
    inRange(tier.forSeconds, window, 1);
    if (i > 0 && tier.everySeconds <= previousEvery) {
      fail(
        `${every} must be longer than ${seconds(previousEvery)}, the interval of the tier before it: ` +
          `got ${seconds(tier.everySeconds)}`,
      );
    }
    if (i > 0 && tier.everySeconds % previousEvery !== 0) {
      fail(
        `${every} must be a multiple of ${seconds(previousEvery)}, the interval of the tier before it, ` +
          `so that buckets nest: got ${seconds(tier.everySeconds)}`,
      );
    }
    if (tier.forSeconds - previousEnd < tier.everySeconds) {
      fail(
        `${window} must be at least ${seconds(previousEnd + tier.everySeconds)}: ` +
          `the window before it ends at ${seconds(previousEnd)} and a tier spans at least one interval ` +
          `(${seconds(tier.everySeconds)}): got ${seconds(tier.forSeconds)}`,
      );
    }
    previousEvery = tier.everySeconds;
    previousEnd = tier.forSeconds;
  }
  if (previousEnd < MIN_RETENTION_SECONDS) {
    const last: RetentionField =
      policy.tiers.length === 0 ? ["keepAllSeconds"] : ["tiers", policy.tiers.length - 1, "forSeconds"];
    fail(
      `${field(last)} must be at least ${seconds(MIN_RETENTION_SECONDS)}, so that the policy keeps ` +
        `a minute of PITs: got ${seconds(previousEnd)}`,
    );
  }
}

/**
 * Validates an untrusted value (a JSON body, a stored record) and returns a fresh policy
 * holding only the known fields. `at` prefixes field names, as a JSON pointer
 * ("/settings/retention"). Throws UserError (400) naming the first bad field and its value.
 */
export function parseRetentionPolicy(value: unknown, at = ""): RetentionPolicy {
  if (!isRecord(value)) fail(`${at || "/"} must be an object {keepAllSeconds, tiers}`);
  onlyKeys(value, ["keepAllSeconds", "tiers"], at);
  const keepAllSeconds = wholeSeconds(value["keepAllSeconds"], `${at}/keepAllSeconds`);
  const rawTiers = value["tiers"];
  if (!Array.isArray(rawTiers)) fail(`${at}/tiers must be an array of {everySeconds, forSeconds}`);
  if (rawTiers.length > MAX_RETENTION_TIERS) {
    fail(`${at}/tiers must have at most ${MAX_RETENTION_TIERS} tiers: got ${rawTiers.length}`);
  }
  const tiers = rawTiers.map((raw: unknown, i): RetentionTier => {
    const name = `${at}/tiers/${i}`;
    if (!isRecord(raw)) fail(`${name} must be an object {everySeconds, forSeconds}`);
    onlyKeys(raw, ["everySeconds", "forSeconds"], name);
    return {
      everySeconds: wholeSeconds(raw["everySeconds"], `${name}/everySeconds`),
      forSeconds: wholeSeconds(raw["forSeconds"], `${name}/forSeconds`),
    };
  });
  const policy: RetentionPolicy = { keepAllSeconds, tiers };
  checkRetentionPolicy(policy, pointerNaming(at));
  return policy;
}
