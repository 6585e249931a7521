import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_PROJECT_SETTINGS } from "../../common/model.js";
import { DEFAULT_RETENTION_POLICY } from "../../store/retention/retention-policy.js";
import { formatRetentionPolicy } from "../../store/retention/retention-text.js";
import { retentionFromPitRetentionSeconds, upgradeProjectSettings } from "./upgrade-project-settings.js";

test("retentionFromPitRetentionSeconds() keeps the old window whole and adds the default tiers that fit", () => {
  const text = (seconds: unknown): string => formatRetentionPolicy(retentionFromPitRetentionSeconds(seconds));
  assert.deepEqual(retentionFromPitRetentionSeconds(3600), DEFAULT_RETENTION_POLICY);
  assert.equal(text(60), "all:1m,10m:1d,1h:7d,1d:30d");
  assert.equal(text(7200), "all:2h,10m:1d,1h:7d,1d:30d");
  assert.equal(text(86_400 - 300), "all:1435m,1h:7d,1d:30d");
  assert.equal(text(2 * 86_400), "all:2d,1h:7d,1d:30d");
  assert.equal(text(29 * 86_400), "all:29d,1d:30d");
  assert.equal(text(40 * 86_400), "all:40d");
  assert.equal(text(10 * 365 * 86_400), "all:365d");
  assert.equal(text(0), "all:1m,10m:1d,1h:7d,1d:30d");
  for (const junk of [undefined, null, "3600", Number.NaN, 1.5, {}]) {
    assert.deepEqual(retentionFromPitRetentionSeconds(junk), DEFAULT_RETENTION_POLICY);
  }
});

test("upgradeProjectSettings() turns pitRetentionSeconds into retention and keeps the rest", () => {
  const old = {
    bandwidthLimitMbps: 200,
    pitRetentionSeconds: 7200,
    stagingLocation: "local",
    testedRecentlyDays: 7,
    rpoTargetSeconds: 30,
  };
  assert.deepEqual(upgradeProjectSettings(old), {
    bandwidthLimitMbps: 200,
    retention: retentionFromPitRetentionSeconds(7200),
    stagingLocation: "local",
    testedRecentlyDays: 7,
    rpoTargetSeconds: 30,
  });
  assert.deepEqual(upgradeProjectSettings({ rpoTargetSeconds: 5, gone: true }), {
    ...DEFAULT_PROJECT_SETTINGS,
    rpoTargetSeconds: 5,
  });
  assert.deepEqual(upgradeProjectSettings(undefined), DEFAULT_PROJECT_SETTINGS);
  const current = { ...DEFAULT_PROJECT_SETTINGS, retention: { keepAllSeconds: 600, tiers: [] } };
  assert.deepEqual(upgradeProjectSettings(current), current);
});
