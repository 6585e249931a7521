/**
 * Command line of `npm run bench -- SUITE [options]`: a suite name and --size, --dir,
 * --json, --quick, --cache, --keep, --seed. Usage mistakes throw UsageError (exit 2).
 */
import { UsageError } from "../cli/args.js";
import type { BenchOptions } from "./suite.js";

export const BENCH_USAGE = `Usage: npm run bench -- SUITE [options]
       node dist/bench/main.js SUITE [options]

Options:
  --size SIZE     main size of the suite (store: the test image, default 4G); K, M, G, T are powers of 1024
  --dir DIR       make the working directory inside DIR (default: the system temporary directory);
                  baselines and the system under test use the same filesystem
  --json          print the report as JSON on stdout (progress stays on stderr)
  --quick         tiny sizes for a smoke run (the numbers mean nothing)
  --cache MODE    cold: drop the page cache before each timed read (needs root; default when allowed)
                  warm: read the files once before each timed read (default otherwise)
  --keep          keep the working directory
  --seed N        seed of the test image and the writes (default 1)
  --help          this text

Prints a table per suite: figure, value, unit, baseline, ratio, target, PASS/FAIL. The exit
code is 0 even when a figure fails its target; it is non-zero only when the bench could not run.`;

export interface BenchCommand {
  readonly suite: string | undefined;
  readonly help: boolean;
  readonly options: BenchOptions;
}

const UNITS: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** "4G", "256M", "64GiB", "1048576" → bytes (binary units). */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  const unit = UNITS[(match?.[2] ?? "").toUpperCase()];
  if (match === null || unit === undefined) {
    throw new UsageError(`Invalid size ${JSON.stringify(text)}: use a number with K, M, G or T, e.g. 4G`);
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`Invalid size ${text}: out of range`);
  return bytes;
}

const VALUE_FLAGS = new Set(["size", "dir", "cache", "seed"]);
const BOOLEAN_FLAGS = new Set(["json", "quick", "keep", "help"]);

export function parseBenchArgs(argv: readonly string[]): BenchCommand {
  const values = new Map<string, string>();
  const booleans = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "-h") {
      booleans.add("help");
      continue;
    }
    if (!arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (BOOLEAN_FLAGS.has(name) && eq < 0) {
      booleans.add(name);
    } else if (VALUE_FLAGS.has(name)) {
      const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined || value === "") throw new UsageError(`Flag --${name} needs a value`);
      values.set(name, value);
    } else {
      throw new UsageError(`Unknown flag ${arg}: see npm run bench -- --help`);
    }
  }
  if (positionals.length > 1) throw new UsageError(`One suite at a time, got: ${positionals.join(" ")}`);
  const cache = values.get("cache");
  if (cache !== undefined && cache !== "cold" && cache !== "warm") {
    throw new UsageError(`Invalid --cache ${cache}: use cold or warm`);
  }
  const seedText = values.get("seed") ?? "1";
  const seed = Number(seedText);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new UsageError(`Invalid --seed ${seedText}: use a whole number`);
  const size = values.get("size");
  return {
    suite: positionals[0],
    help: booleans.has("help"),
    options: {
      sizeBytes: size === undefined ? undefined : parseSize(size),
      dir: values.get("dir"),
      json: booleans.has("json"),
      quick: booleans.has("quick"),
      cache,
      keep: booleans.has("keep"),
      seed,
    },
  };
}
