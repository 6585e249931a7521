import { test } from "node:test";
import assert from "node:assert/strict";
import { formatNumber, formatTarget, verdictOf, type Figure } from "./figure.js";
import { renderReport, reportJson } from "./report-table.js";
import type { SuiteReport } from "./suite.js";

const INGEST: Figure = {
  id: "ingest.throughput",
  label: "sequential ingest",
  value: 700,
  unit: "MB/s",
  baseline: { label: "dd", value: 1000 },
  target: { of: "ratio", op: ">=", threshold: 0.7 },
};
const WA: Figure = {
  id: "random.writeAmplification",
  label: "write amplification",
  value: 2.04,
  unit: "x",
  target: { of: "value", op: "<=", threshold: 1.5 },
};
const RSS: Figure = { id: "ingest.peakRss", label: "  peak RSS", value: 61.2, unit: "MB" };

test("verdictOf() judges the ratio or the value, and nothing without a target", () => {
  assert.equal(verdictOf(INGEST), "PASS");
  assert.equal(verdictOf({ ...INGEST, value: 699 }), "FAIL");
  assert.equal(verdictOf(WA), "FAIL");
  assert.equal(verdictOf(RSS), undefined);
  assert.equal(verdictOf({ ...INGEST, baseline: { label: "dd", value: 0 } }), "FAIL");
});

test("formatNumber() and formatTarget() keep about three significant digits", () => {
  assert.equal(formatNumber(1234.5), "1235");
  assert.equal(formatNumber(61.25), "61.3");
  assert.equal(formatNumber(2.0449), "2.04");
  assert.equal(formatNumber(0.00012345), "0.000123");
  assert.equal(formatNumber(3600), "3600");
  assert.equal(formatTarget({ of: "ratio", op: ">=", threshold: 0.7 }, "MB/s"), "≥ 0.7x");
  assert.equal(formatTarget({ of: "value", op: "<", threshold: 300 }, "MB"), "< 300 MB");
  assert.equal(formatTarget({ of: "value", op: "<=", threshold: 1.5 }, "x"), "≤ 1.5");
});

test("renderReport() prints one row per figure with ratio and verdict, then baselines and notes", () => {
  const report: SuiteReport = {
    suite: "store",
    figures: [INGEST, WA, RSS],
    phases: [
      {
        phase: "ingest",
        seconds: 5.5,
        peakRssBytes: 61.2e6,
        peakHeapUsedBytes: 20e6,
        peakArrayBuffersBytes: 16.8e6,
        writeBytes: 3e9,
      },
    ],
    baselines: [{ command: "dd if=a of=b", seconds: 4, writeBytes: 4.3e9, peakRssBytes: 6e6 }],
    notes: ["cache cold"],
  };
  const text = renderReport(report);
  const lines = text.split("\n");
  assert.equal(lines[0], "suite store: 1 PASS, 1 FAIL");
  assert.match(lines[2] ?? "", /^figure\s+value\s+unit\s+baseline\s+ratio\s+target\s+result$/);
  assert.match(lines[3] ?? "", /^sequential ingest\s+700\s+MB\/s\s+1000\s+0\.7x\s+≥ 0\.7x\s+PASS$/);
  assert.match(lines[4] ?? "", /^write amplification\s+2\.04\s+x\s+-\s+-\s+≤ 1\.5\s+FAIL$/);
  assert.match(lines[5] ?? "", /^ {2}peak RSS\s+61\.2\s+MB\s+-\s+-\s+-\s+-$/);
  assert.match(text, /dd if=a of=b: 4\.000 s, wrote 4300 MB/);
  assert.match(
    text,
    /ingest: 5\.500 s, wrote 3000 MB, peak RSS 61\.2 MB \(sampled peaks: JS heap 20 MB, buffers 16\.8 MB\)/,
  );
  assert.match(text, /- cache cold/);
  const json = reportJson(report) as { figures: Array<{ ratio: number | null; verdict: string | null }> };
  assert.deepEqual(
    json.figures.map((f) => [f.ratio, f.verdict]),
    [
      [0.7, "PASS"],
      [null, "FAIL"],
      [null, null],
    ],
  );
});
