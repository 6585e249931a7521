/**
 * `npm run bench -- SUITE [options]` (built: `node dist/bench/main.js`). Performance
 * targets live here, not in timed unit tests: every figure is printed with the baseline
 * tool measured in the same run, on the same filesystem, and judged PASS or FAIL. The
 * report is the product, so the exit code is 0 even on FAIL: 2 for usage mistakes and
 * suites not built yet, 1 when the bench could not run.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { UsageError } from "../cli/args.js";
import { errorMessage } from "../common/errors.js";
import { BENCH_USAGE, parseBenchArgs, type BenchCommand } from "./bench-options.js";
import { canDropCaches } from "./page-cache.js";
import { renderReport, reportJson } from "./report-table.js";
import { SUITES, findSuite } from "./suites.js";

async function main(argv: readonly string[]): Promise<number> {
  let command: BenchCommand;
  try {
    command = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  const list = SUITES.map((s) => `  ${s.name.padEnd(8)} ${s.description}${s.run ? "" : ` (${s.plannedIn})`}`);
  if (command.help || command.suite === undefined) {
    process.stderr.write(`${BENCH_USAGE}\n\nSuites:\n${list.join("\n")}\n`);
    return command.help ? 0 : 2;
  }
  const suite = findSuite(command.suite);
  if (suite === undefined) {
    process.stderr.write(`Unknown suite ${command.suite}; suites:\n${list.join("\n")}\n`);
    return 2;
  }
  if (suite.run === undefined) {
    process.stderr.write(`Suite ${suite.name}: not built yet (${suite.plannedIn ?? "planned"})\n`);
    return 2;
  }
  const { options } = command;
  const cache = options.cache ?? (canDropCaches() ? "cold" : "warm");
  const parent = resolve(options.dir ?? tmpdir());
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, `lifeboat-bench-${suite.name}-`));
  const controller = new AbortController();
  const stop = (sig: NodeJS.Signals): void => controller.abort(new Error(`Bench interrupted by ${sig}`));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const log = (line: string): void => void process.stderr.write(`bench ${suite.name}: ${line}\n`);
  try {
    log(`working directory ${dir}, page cache ${cache}`);
    const report = await suite.run({ options, cache, dir, signal: controller.signal, log });
    process.stdout.write(
      options.json ? `${JSON.stringify(reportJson(report), null, 2)}\n` : renderReport(report),
    );
    return 0;
  } finally {
    if (options.keep) log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : errorMessage(err)}\n`,
    );
    process.exitCode = 1;
  },
);
