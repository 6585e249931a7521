/**
 * A bench figure: one measured value with its unit, optionally the baseline tool's value
 * measured in the same run and their ratio, and the target it is judged against. A figure
 * without a target is information (peak RSS of a phase, a latency) and is never judged.
 */

export type Comparison = ">=" | ">" | "<=" | "<";

export interface Target {
  /** Judge the value itself or the ratio value / baseline. */
  readonly of: "value" | "ratio";
  readonly op: Comparison;
  readonly threshold: number;
}

export interface Baseline {
  /** What the baseline is, e.g. "dd bs=4M conv=fsync". */
  readonly label: string;
  /** In the figure's unit. */
  readonly value: number;
}

export interface Figure {
  /** Stable identifier for machines and tests, e.g. "ingest.throughput". */
  readonly id: string;
  /** What was measured, for people. */
  readonly label: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline?: Baseline;
  readonly target?: Target;
}

export type Verdict = "PASS" | "FAIL";

/** value / baseline, or undefined without a usable baseline. */
export function ratioOf(figure: Figure): number | undefined {
  const base = figure.baseline?.value;
  return base === undefined || !(base > 0) ? undefined : figure.value / base;
}

export function verdictOf(figure: Figure): Verdict | undefined {
  const target = figure.target;
  if (target === undefined) return undefined;
  const subject = target.of === "ratio" ? ratioOf(figure) : figure.value;
  if (subject === undefined || !Number.isFinite(subject)) return "FAIL";
  return compare(subject, target.op, target.threshold) ? "PASS" : "FAIL";
}

function compare(a: number, op: Comparison, b: number): boolean {
  switch (op) {
    case ">=":
      return a >= b;
    case ">":
      return a > b;
    case "<=":
      return a <= b;
    case "<":
      return a < b;
  }
}

const SYMBOL: Readonly<Record<Comparison, string>> = { ">=": "≥", ">": ">", "<=": "≤", "<": "<" };

export function formatTarget(target: Target, unit: string): string {
  const value = formatNumber(target.threshold);
  return target.of === "ratio"
    ? `${SYMBOL[target.op]} ${value}x`
    : `${SYMBOL[target.op]} ${value}${unit === "" || unit === "x" ? "" : ` ${unit}`}`;
}

/** About three significant digits (whole numbers from 100 up), no trailing zeros past the point. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 100 || Number.isInteger(value)) return String(Math.round(value));
  if (magnitude < 1) return String(Number(value.toPrecision(3)));
  return String(Number(value.toFixed(magnitude >= 10 ? 1 : 2)));
}
