/** Aligned text tables for the CLI: a header row, columns padded to their widest cell, numbers right-aligned. */

export interface TableOptions {
  /** Columns to right-align, by index (default: columns whose every cell looks numeric). */
  readonly rightAlign?: readonly number[];
}

const NUMERIC = /^-?[\d.,]+\s*(%|[KMGTP]?i?B|s|m|h|d)?$/;

export function renderTable(
  headers: readonly string[],
  rows: readonly (readonly (string | number | null | undefined)[])[],
  options: TableOptions = {},
): string {
  const cells = rows.map((row) => headers.map((_h, i) => String(row[i] ?? "-")));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? "").length)));
  const right = new Set(
    options.rightAlign ??
      headers
        .map((_h, i) => i)
        .filter(
          (i) => cells.length > 0 && cells.every((row) => NUMERIC.test(row[i] ?? "") || row[i] === "-"),
        ),
  );
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => (right.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...cells.map(line)].join("\n") + "\n";
}
