import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

/** Every figure the store suite must report; their values are not checked here (benches judge those). */
const STORE_FIGURES = [
  "idle.peakRss",
  "ingest.throughput",
  "ingest.diskWritten",
  "ingest.peakRss",
  "random.throughput",
  "random.writeAmplification",
  "random.writeAmplificationAtAck",
  "random.ackP50",
  "random.ackP99",
  "random.peakRss",
  "pits.count",
  "pits.writeThroughput",
  "pits.cutP50",
  "pits.cutP99",
  "pits.compactSeconds",
  "pits.compactWrites",
  "pits.writeAmplification",
  "pits.peakRss",
  "pitRead.throughput",
  "pitRead.peakRss",
  "changedRanges.seconds",
  "changedRanges.peakRss",
  "bigDisk.peakRss",
  "bigDisk.peakRssAfterWrites",
  "bigDisk.writeThroughput",
  "bigDisk.readThroughput",
];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function bench(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

interface JsonFigure {
  readonly id: string;
  readonly value: number;
  readonly ratio: number | null;
  readonly verdict: string | null;
  readonly target?: unknown;
  readonly baseline?: { readonly value: number };
}

test("npm run bench -- store --quick reports every figure as JSON and cleans up after itself", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-bench-smoke-"));
  try {
    const run = await bench(["store", "--quick", "--json", "--cache", "warm", "--dir", dir]);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { suite: string; figures: JsonFigure[]; phases: unknown[] };
    assert.equal(report.suite, "store");
    const ids = report.figures.map((f) => f.id);
    assert.deepEqual([...ids].sort(), [...STORE_FIGURES].sort());
    for (const f of report.figures) {
      assert.ok(Number.isFinite(f.value), `${f.id} = ${f.value}`);
      if (f.target !== undefined) assert.match(f.verdict ?? "", /^(PASS|FAIL)$/, f.id);
      if (f.baseline !== undefined) assert.ok(f.ratio !== null && Number.isFinite(f.ratio), f.id);
    }
    assert.equal(report.phases.length, 7);
    assert.match(run.stderr, /phase: ingest/);
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("npm run bench names the suites not built yet and exits 2", async () => {
  for (const [suite, issue] of [
    ["cdp", "issue 4"],
    ["launch", "issue 5"],
  ] as const) {
    const run = await bench([suite]);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, new RegExp(`${suite}: not built yet \\(${issue}\\)`));
  }
  const unknown = await bench(["nosuch"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown suite nosuch/);
});
