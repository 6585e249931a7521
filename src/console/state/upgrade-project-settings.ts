/**
 * Reads project settings written by an older console into today's shape, for state store
 * migrations. The one change so far: `pitRetentionSeconds` ("keep every PIT this long";
 * never enforced) became `retention`, a policy with thinning tiers. An old value becomes
 * the keep-all window and the default tiers that still fit beyond it follow, so the
 * default 3600 maps to exactly DEFAULT_RETENTION_POLICY and no project keeps less than it
 * asked for (up to the 365-day limit).
 */
import { DEFAULT_PROJECT_SETTINGS, type ProjectSettings } from "../../common/model.js";
import {
  DEFAULT_RETENTION_POLICY,
  MAX_RETENTION_SECONDS,
  MIN_RETENTION_SECONDS,
  parseRetentionPolicy,
  type RetentionPolicy,
  type RetentionTier,
} from "../../store/retention/retention-policy.js";

/** The policy for a project that had `pitRetentionSeconds: seconds`. */
export function retentionFromPitRetentionSeconds(seconds: unknown): RetentionPolicy {
  if (typeof seconds !== "number" || !Number.isSafeInteger(seconds)) return DEFAULT_RETENTION_POLICY;
  const keepAllSeconds = Math.min(Math.max(seconds, MIN_RETENTION_SECONDS), MAX_RETENTION_SECONDS);
  const tiers: RetentionTier[] = [];
  let end = keepAllSeconds;
  for (const tier of DEFAULT_RETENTION_POLICY.tiers) {
    if (tier.forSeconds - end < tier.everySeconds) continue;
    tiers.push(tier);
    end = tier.forSeconds;
  }
  return parseRetentionPolicy({ keepAllSeconds, tiers });
}

/**
 * Today's settings from a stored settings object of any version: known fields are kept,
 * missing ones take their defaults, `pitRetentionSeconds` becomes `retention`. A stored
 * `retention` that no longer validates falls back to the default rather than making the
 * project unreadable.
 */
export function upgradeProjectSettings(stored: unknown): ProjectSettings {
  const old = typeof stored === "object" && stored !== null ? (stored as Record<string, unknown>) : {};
  const { pitRetentionSeconds, retention, ...rest } = old;
  let policy: RetentionPolicy;
  if (retention !== undefined) {
    try {
      policy = parseRetentionPolicy(retention);
    } catch {
      policy = DEFAULT_RETENTION_POLICY;
    }
  } else {
    policy = retentionFromPitRetentionSeconds(pitRetentionSeconds);
  }
  const settings: Record<string, unknown> = { ...DEFAULT_PROJECT_SETTINGS };
  for (const key of Object.keys(DEFAULT_PROJECT_SETTINGS)) {
    if (key in rest) settings[key] = rest[key];
  }
  settings["retention"] = policy;
  return settings as unknown as ProjectSettings;
}
