import { test } from "node:test";
import assert from "node:assert/strict";
import { UsageError } from "../cli/args.js";
import { parseBenchArgs, parseSize } from "./bench-options.js";

test("parseSize() reads binary units", () => {
  assert.equal(parseSize("4G"), 4 * 1024 ** 3);
  assert.equal(parseSize("256M"), 256 * 1024 ** 2);
  assert.equal(parseSize("64GiB"), 64 * 1024 ** 3);
  assert.equal(parseSize("1.5k"), 1536);
  assert.equal(parseSize("4096"), 4096);
  assert.throws(() => parseSize("4 parsecs"), UsageError);
  assert.throws(() => parseSize("0"), UsageError);
});

test("parseBenchArgs() takes a suite and its options, with defaults", () => {
  const cmd = parseBenchArgs(["store", "--size", "256M", "--json", "--dir=/var/tmp", "--cache", "warm"]);
  assert.equal(cmd.suite, "store");
  assert.equal(cmd.help, false);
  assert.deepEqual(cmd.options, {
    sizeBytes: 256 * 1024 ** 2,
    dir: "/var/tmp",
    json: true,
    quick: false,
    cache: "warm",
    keep: false,
    seed: 1,
  });
  const quick = parseBenchArgs(["--quick", "store", "--keep", "--seed", "9"]).options;
  assert.equal(quick.quick, true);
  assert.equal(quick.keep, true);
  assert.equal(quick.seed, 9);
  assert.equal(quick.sizeBytes, undefined);
  assert.equal(parseBenchArgs(["--help"]).help, true);
});

test("parseBenchArgs() rejects unknown flags, missing values and two suites", () => {
  assert.throws(() => parseBenchArgs(["store", "--fast"]), /Unknown flag --fast/);
  assert.throws(() => parseBenchArgs(["store", "--size"]), /--size needs a value/);
  assert.throws(() => parseBenchArgs(["store", "cdp"]), /One suite at a time/);
  assert.throws(() => parseBenchArgs(["store", "--cache", "hot"]), /use cold or warm/);
  assert.throws(() => parseBenchArgs(["store", "--seed", "-1"]), UsageError);
});
