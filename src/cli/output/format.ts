/** Human formats for the CLI: bytes (binary units), durations, percentages, and duration parsing for flags. */
import { UsageError } from "../args.js";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit] ?? ""}`;
}

/** 0 → "0s", 75 → "1m 15s", 3700 → "1h 1m", 90000 → "1d 1h"; null → "-". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "-";
  if (seconds < 10 && seconds % 1 !== 0) return `${seconds.toFixed(1)}s`;
  let s = Math.round(seconds);
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
  if (m > 0) return s > 0 ? `${m}m ${s}s` : `${m}m`;
  return `${s}s`;
}

export function formatPercent(percent: number): string {
  return `${Math.floor(percent)}%`;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** "90s", "30m", "24h", "7d", "2w" or plain seconds → seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhdw]?)$/.exec(text.trim());
  if (match === null)
    throw new UsageError(`Invalid duration ${text}: use a number with s, m, h, d or w, e.g. 24h`);
  return Number(match[1]) * (DURATION_UNITS[match[2] || "s"] ?? 1);
}
