/**
 * Prints a suite report for people: one table (figure, value, unit, baseline, ratio,
 * target, result), then the baselines that ran and the notes on how it was measured.
 * `reportJson` gives machines the same report with ratio and verdict filled in.
 */
import { renderTable } from "../cli/output/table.js";
import { formatNumber, formatTarget, ratioOf, verdictOf } from "./figure.js";
import type { SuiteReport } from "./suite.js";

export function renderReport(report: SuiteReport): string {
  const rows = report.figures.map((f) => {
    const ratio = ratioOf(f);
    return [
      f.label,
      formatNumber(f.value),
      f.unit,
      f.baseline === undefined ? "-" : formatNumber(f.baseline.value),
      ratio === undefined ? "-" : `${formatNumber(ratio)}x`,
      f.target === undefined ? "-" : formatTarget(f.target, f.unit),
      verdictOf(f) ?? "-",
    ];
  });
  const table = renderTable(["figure", "value", "unit", "baseline", "ratio", "target", "result"], rows, {
    rightAlign: [1, 3, 4],
  });
  const verdicts = report.figures.map(verdictOf).filter((v) => v !== undefined);
  const failed = verdicts.filter((v) => v === "FAIL").length;
  const lines = [`suite ${report.suite}: ${verdicts.length - failed} PASS, ${failed} FAIL`, "", table];
  if (report.baselines.length > 0) {
    lines.push("baselines (same run, same filesystem):");
    for (const b of report.baselines) {
      const rss =
        b.peakRssBytes > 0
          ? `peak RSS ≥ ${formatNumber(b.peakRssBytes / 1e6)} MB (sampled)`
          : "too short to sample RSS";
      lines.push(
        `  ${b.command}: ${b.seconds.toFixed(3)} s, wrote ${formatNumber(b.writeBytes / 1e6)} MB, ${rss}`,
      );
    }
    lines.push("");
  }
  if (report.phases.length > 0) {
    lines.push("phases (each a child process, measuring itself):");
    for (const p of report.phases) {
      lines.push(
        `  ${p.phase}: ${p.seconds.toFixed(3)} s, wrote ${formatNumber(p.writeBytes / 1e6)} MB, ` +
          `peak RSS ${formatNumber(p.peakRssBytes / 1e6)} MB (sampled peaks: JS heap ` +
          `${formatNumber(p.peakHeapUsedBytes / 1e6)} MB, buffers ${formatNumber(p.peakArrayBuffersBytes / 1e6)} MB)`,
      );
    }
    lines.push("");
  }
  if (report.notes.length > 0) {
    lines.push("notes:");
    for (const note of report.notes) lines.push(`  - ${note}`);
    lines.push("");
  }
  return lines.join("\n");
}

export function reportJson(report: SuiteReport): unknown {
  return {
    ...report,
    figures: report.figures.map((f) => ({
      ...f,
      ratio: ratioOf(f) ?? null,
      verdict: verdictOf(f) ?? null,
    })),
  };
}
