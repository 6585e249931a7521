import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError } from "../../common/errors.js";
import { DEFAULT_RETENTION_POLICY } from "./retention-policy.js";
import { formatRetentionDuration, formatRetentionPolicy, parseRetentionText } from "./retention-text.js";
import { Random, randomPolicy } from "./random-retention.js";

function rejects(text: string, message: RegExp): void {
  assert.throws(
    () => parseRetentionText(text),
    (err: unknown) => err instanceof UserError && err.status === 400 && message.test(err.message),
    `${JSON.stringify(text)} should fail with ${String(message)}`,
  );
}

test("formatRetentionPolicy() writes the default policy as all:1h,10m:1d,1h:7d,1d:30d", () => {
  assert.equal(formatRetentionPolicy(DEFAULT_RETENTION_POLICY), "all:1h,10m:1d,1h:7d,1d:30d");
  assert.equal(
    formatRetentionPolicy({ keepAllSeconds: 0, tiers: [{ everySeconds: 90, forSeconds: 5400 }] }),
    "all:0s,90s:90m",
  );
});

test("formatRetentionDuration() picks the largest exact unit", () => {
  assert.deepEqual(
    [0, 1, 59, 60, 61, 3600, 5400, 86_400, 90_000, 365 * 86_400].map(formatRetentionDuration),
    ["0s", "1s", "59s", "1m", "61s", "1h", "90m", "1d", "25h", "365d"],
  );
});

test("parseRetentionText() reads the issue's example and loose spacing", () => {
  assert.deepEqual(parseRetentionText("all:1h,10m:24h,1h:7d,1d:30d"), DEFAULT_RETENTION_POLICY);
  assert.deepEqual(
    parseRetentionText(" all : 3600s , 600s:1440m ,60m:168h, 86400s:30d "),
    DEFAULT_RETENTION_POLICY,
  );
  assert.deepEqual(parseRetentionText("all:2h"), { keepAllSeconds: 7200, tiers: [] });
  assert.deepEqual(parseRetentionText("all:0,1s:1m"), {
    keepAllSeconds: 0,
    tiers: [{ everySeconds: 1, forSeconds: 60 }],
  });
});

test("parseRetentionText() round-trips every generated policy", () => {
  for (let seed = 1; seed <= 500; seed++) {
    const policy = randomPolicy(new Random(seed));
    const text = formatRetentionPolicy(policy);
    assert.deepEqual(parseRetentionText(text), policy, text);
    assert.equal(formatRetentionPolicy(parseRetentionText(text)), text);
  }
});

test("parseRetentionText() rejects bad syntax, naming the item", () => {
  rejects("", /^Invalid retention policy "": "" is not of the form EVERY:FOR .*for example all:1h,10m:24h/);
  rejects("all", /"all" is not of the form EVERY:FOR/);
  rejects("10m:24h,1h:7d", /the first item must be all:WINDOW, got "10m:24h"/);
  rejects("all:1h,all:2h", /all:WINDOW must come first and only once, got "all:2h"/);
  rejects("all:1h,10m", /"10m" is not of the form EVERY:FOR/);
  rejects("all:1h,10m:24h:3", /"10m:24h:3" is not of the form/);
  rejects("all:1h,,1d:30d", /"" is not of the form/);
  rejects("all:1x", /"1x" in "all:1x" is not a duration like 90s, 10m, 24h or 30d/);
  rejects("all:-1h", /"-1h" in "all:-1h" is not a duration/);
  rejects("all:1.5h", /"1.5h" in "all:1.5h" is not a duration/);
  rejects("all:1H", /"1H" in "all:1H" is not a duration/);
  rejects("all:NaN", /"NaN" in "all:NaN" is not a duration/);
  rejects("all:1e3s", /is not a duration/);
  rejects("all:3600", /"3600" in "all:3600" is not a duration/);
  rejects("all:9999999999d", /is not a duration/);
  rejects(
    `all:1h${",1d:30d".repeat(60)}`,
    /^Invalid retention policy "all:1h,1d:30d.*\.\.\.": longer than 256 characters/,
  );
});

test("parseRetentionText() rejects invalid policies in the operator's terms", () => {
  rejects(
    "all:1h,10m:24h,15m:7d",
    /^Invalid retention policy: the interval of tier 2 "15m:7d" must be a multiple of 10m, the interval of the tier before it, so that buckets nest: got 15m$/,
  );
  rejects("all:1h,1h:7d,10m:30d", /the interval of tier 2 "10m:30d" must be longer than 1h/);
  rejects(
    "all:1h,10m:30m",
    /the window of tier 1 "10m:30m" must be at least 70m: the window before it ends at 1h and a tier spans at least one interval \(10m\): got 30m/,
  );
  rejects(
    "all:1h,1d:400d",
    /the window of tier 1 "1d:400d" must be between 1s and 365d \(365 days\): got 400d/,
  );
  rejects("all:400d", /the keep-all window "all:400d" must be between 0s and 365d/);
  rejects("all:30s", /the keep-all window "all:30s" must be at least 1m/);
  rejects(
    `all:0${[1, 2, 4, 8, 16, 32, 64, 128, 256].map((s) => `,${s}s:${s * 2}m`).join("")}`,
    /the tier list must have at most 8 tiers: got 9/,
  );
});
